"""Chooses a distillation weight of the demo on the ID validation hold-out only (DESIGN §6):
FT and FT + distillation at several weights; no OOD set is evaluated. The rule, the same for
both methods and the benchmark grid's (cfkit_tools.demo.weight_rule): the largest weight whose
best validation top-1 is within --within points of FT's; none when no weight is (the rule's
best-validation fallback is not taken here).

  --method fd   offline masked feature distillation (configs/fashionshift/masked-fd.toml: ObjMaskSingleFill(0.3))
  --method kd   knowledge distillation on clean images, T = 10 (the demo's FT+KD)

Writes <out>/summary.{json,md} (out: runs/tune-<method>-weight).

Run: just tune-fd-weight / just tune-kd-weight  (about 35 minutes each on 2 cores), or
PYTHONPATH=tools .venv/bin/python -m cfkit_tools.demo.tune_distill_weight --method fd ...
"""
import argparse
import json
import pathlib
import subprocess
import tomllib

import cfkit_tools
from cfkit_tools import records
from cfkit_tools.demo.weight_rule import choose_weight

ROOT = pathlib.Path(cfkit_tools.ROOT).resolve()
# The demo's KD temperature (configs/fashionshift/benchmark.toml; T = 10 as in the paper).
KD_T = tomllib.loads((ROOT / "configs/fashionshift/benchmark.toml").read_text())["kd"]["temperature"]
FT_DATA = "data.shards=../../data/fashionshift-cf"


def best_val(run: pathlib.Path) -> float:
    """A finished run's best validation top-1 (%); the runs here all validate."""
    report = records.read_report(run)
    val = report.best_top1_pct
    if val is None:
        raise records.RecordError(f"{run / records.REPORT_FILE}: no best validation top-1")
    return val


def train(cfkit, config, out, sets):
    cmd = [cfkit, "train", "--config", str(config), "--out", str(out), "--resume", "-q",
           "--set", "eval.sets=[]"] + [a for s in sets for a in ("--set", s)]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    return best_val(out)


def distill_run(method, w):
    """(config, --set overrides, label) of one distillation run at weight w."""
    if method == "fd":
        return ROOT / "configs/fashionshift/masked-fd.toml", [f"distill.weight={w}"], "ft-fd masked"
    return (ROOT / "configs/fashionshift/ft.toml",
            [FT_DATA, 'train.method="ft-kd"',
             f'distill={{ images = "clean", weight = {w}, temperature = {KD_T} }}'],
            f"ft-kd clean T={KD_T:g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfkit", default=str(ROOT / "target/release/cfkit"))
    ap.add_argument("--method", choices=["fd", "kd"], default="fd")
    ap.add_argument("--weights", default="0.03,0.1,0.3,1")
    ap.add_argument("--within", type=float, default=3.0)
    ap.add_argument("--out", help="default: runs/tune-<method>-weight")
    ap.add_argument("--ft-run", help="a finished FT run of configs/fashionshift/ft.toml on "
                    "data/fashionshift-cf to compare with (default: <out>/ft, trained if missing)")
    a = ap.parse_args()
    out = pathlib.Path(a.out or ROOT / f"runs/tune-{a.method}-weight")
    if a.ft_run:
        ft_dir = pathlib.Path(a.ft_run)
        if not records.run_finished(ft_dir):
            ap.error(f"--ft-run {ft_dir}: no report.json (not a finished run)")
        ft = best_val(ft_dir)
    else:
        ft_dir = out / "ft"
        ft = train(a.cfkit, ROOT / "configs/fashionshift/ft.toml", ft_dir, [FT_DATA])
    rows = [{"method": "ft", "weight": 0.0, "val_top1": ft, "run": str(ft_dir)}]
    for w in [float(x) for x in a.weights.split(",")]:
        config, sets, label = distill_run(a.method, w)
        run = out / f"{a.method}-w{w:g}"
        v = train(a.cfkit, config, run, sets)
        rows.append({"method": label, "weight": w, "val_top1": v, "run": str(run)})
    vals = {}
    for r in rows[1:]:
        vals.setdefault(r["weight"], []).append(r["val_top1"])
    choice = choose_weight([ft], vals, a.within)
    chosen = choice.weight if choice.within_rule else None
    summary = {"rule": f"largest weight with best val top-1 >= FT - {a.within} points",
               "runs": rows, "chosen_weight": chosen}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = ["| method | weight | best val top-1 (%) |", "|---|---:|---:|"]
    md += [f"| {r['method']} | {r['weight']:g} | {r['val_top1']:.2f} |" for r in rows]
    md.append(f"\nchosen weight: {chosen} ({summary['rule']})")
    (out / "summary.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
