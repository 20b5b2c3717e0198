#!/usr/bin/env python3
"""Chooses the feature-distillation weight of the demo on the ID validation hold-out only
(DESIGN §6): FT and offline masked FD (configs/train.toml) at several weights, no OOD set is
evaluated. The rule: the largest weight whose best validation top-1 is within --within points of
FT's. Writes runs/tune-fd-weight/summary.{json,md}.

Run: just tune-fd-weight  (about 35 minutes on 2 cores)
"""
import argparse
import json
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent


def best_val(run: pathlib.Path) -> float:
    report = json.loads((run / "report.json").read_text())
    return 100.0 * report["best"]["top1"]


def train(cfkit, config, out, sets):
    cmd = [cfkit, "train", "--config", str(config), "--out", str(out), "--resume", "-q",
           "--set", "eval.sets=[]"] + [a for s in sets for a in ("--set", s)]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    return best_val(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfkit", default=str(ROOT / "target/release/cfkit"))
    ap.add_argument("--weights", default="0.03,0.1,0.3,1")
    ap.add_argument("--within", type=float, default=3.0)
    ap.add_argument("--out", default=str(ROOT / "runs/tune-fd-weight"))
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    ft = train(a.cfkit, ROOT / "configs/ft-demo.toml", out / "ft",
               ["data.shards=../data/fashionshift-cf"])
    rows = [{"method": "ft", "weight": 0.0, "val_top1": ft}]
    for w in [float(x) for x in a.weights.split(",")]:
        v = train(a.cfkit, ROOT / "configs/train.toml", out / f"fd-w{w:g}", [f"distill.weight={w}"])
        rows.append({"method": "ft-fd masked", "weight": w, "val_top1": v})
    ok = [r["weight"] for r in rows[1:] if r["val_top1"] >= ft - a.within]
    chosen = max(ok) if ok else None
    summary = {"rule": f"largest weight with best val top-1 >= FT - {a.within} points",
               "runs": rows, "chosen_weight": chosen}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = ["| method | weight | best val top-1 (%) |", "|---|---:|---:|"]
    md += [f"| {r['method']} | {r['weight']:g} | {r['val_top1']:.2f} |" for r in rows]
    md.append(f"\nchosen weight: {chosen} ({summary['rule']})")
    (out / "summary.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
