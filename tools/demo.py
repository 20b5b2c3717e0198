#!/usr/bin/env python3
"""`just demo`: the FashionShift benchmark (DESIGN §6) end to end.

The grid — methods, strategies, seeds, sets, weights, WiSE-FT α — is configs/demo/benchmark.toml;
this script runs it and reports it. Besides the trained methods listed there it evaluates the
zero-shot teacher (no training; seed-independent) and sweeps WiSE-FT between the teacher and each
seed's FT run.

Runs live in runs/demo/seed<N>/<method>/; a run with a report.json is done and skipped (after
checking that its config hash is the one asked for now; a mismatch stops the demo), an
unfinished one is resumed, so `just demo` can be stopped and restarted at any time. At the end
(or with --report-only, on whatever has finished) it writes RESULTS.md (mean ± std over seeds per
set, OOD mean, machine and commit), results/fashionshift.json and the ID-vs-OOD scatter plot
results/fashionshift-id-ood.png.
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import string
import subprocess
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The benchmark grid: methods, strategies, sets, seeds, weights (this script only runs and
# reports it).
GRID_FILE = "configs/demo/benchmark.toml"
with open(os.path.join(ROOT, GRID_FILE), "rb") as _f:
    GRID = tomllib.load(_f)
STRATEGIES = GRID["strategies"]
HEADLINE = STRATEGIES[0]
CF = GRID["counterfactuals"]["shards"]
EVAL = GRID["eval"]["shards"]
SETS = GRID["eval"]["sets"]
KD_WEIGHT, KD_T = GRID["kd"]["weight"], GRID["kd"]["temperature"]
WISE_ALPHAS = GRID["wise_ft"]["alphas"]


def slug(name):
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", name).strip("-").lower()


def fd_weight():
    with open(os.path.join(ROOT, GRID["fd_weight_from"]), "rb") as f:
        return float(tomllib.load(f)["distill"]["weight"])


def methods(w):
    """(key, label, base config, --set overrides) of every trained method of the grid."""
    fill = {"fd_weight": w, "kd_weight": KD_WEIGHT, "kd_temperature": KD_T,
            "headline": HEADLINE, "headline_slug": slug(HEADLINE)}
    out = []
    for m in GRID["methods"]:
        for s in (STRATEGIES if m.get("each_strategy") else [None]):
            f = dict(fill, **({"strategy": s, "slug": slug(s)} if s else {}))
            sub = lambda t: string.Template(t).substitute({k: str(v) for k, v in f.items()})
            out.append((sub(m["key"]), sub(m["label"]), m["config"], [sub(x) for x in m["set"]]))
    return out


def sh(cmd, capture=False):
    print("+", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, check=True, cwd=ROOT, capture_output=capture, text=True)
    return r.stdout


def check_finished(cmd, out):
    """A finished run is kept only if it was made with the config the demo asks for now
    (`cfkit train --print-config`); otherwise stop, rather than report stale numbers."""
    want = json.loads(subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True,
                                     text=True).stdout)["config_hash"]
    with open(os.path.join(out, "run.json")) as f:
        have = json.load(f)["config_hash"]
    if have != want:
        sys.exit(f"{out} holds a finished run of another config (hash {have[:12]}…) than the "
                 f"demo now asks for ({want[:12]}…): a hyperparameter changed since it ran. "
                 "Move the directory away to rerun it.")


def run_all(a, seeds):
    cfkit = a.cfkit
    if not os.path.exists(os.path.join(ROOT, CF, "manifest.json")):
        sh([cfkit, "build-counterfactuals", "--config", GRID["counterfactuals"]["config"]])
    zs = os.path.join(ROOT, a.runs, "zeroshot.json")
    if not os.path.exists(zs):
        out = sh([cfkit, "eval", "--checkpoint", GRID["teacher"], "--shards", EVAL,
                  "--split", ",".join(SETS), "--json"], capture=True)
        os.makedirs(os.path.dirname(zs), exist_ok=True)
        with open(zs, "w") as f:
            f.write(out)
    for seed in seeds:
        for key, _, config, sets in methods(fd_weight()):
            if a.only and key not in a.only:
                continue
            out = os.path.join(ROOT, a.runs, f"seed{seed}", key)
            base = [cfkit, "train", "--config", config]
            # The grid's data, relative to the base config (as paths in a config are).
            rel = lambda p: os.path.relpath(os.path.join(ROOT, p), os.path.dirname(os.path.join(ROOT, config)))
            common = [f'data.shards="{rel(CF)}"', f'eval.shards="{rel(EVAL)}"']
            for s in common + [f"train.seed={seed}"] + sets:
                base += ["--set", s]
            if os.path.exists(os.path.join(out, "report.json")):
                check_finished(base + ["--print-config"], out)
                continue
            sh(base + ["--out", out, "--resume", "-q"])
        wise = os.path.join(ROOT, a.runs, f"seed{seed}", "wise-ft")
        ft = os.path.join(ROOT, a.runs, f"seed{seed}", GRID["wise_ft"]["finetuned"])
        if (sweep_alphas(wise) != WISE_ALPHAS
                and os.path.exists(os.path.join(ft, "report.json"))
                and (not a.only or "wise-ft" in a.only)):
            # A sweep over other α (or none) is (re)made; its checkpoints are replaced atomically.
            sh([cfkit, "wise-ft", "--zeroshot", GRID["teacher"], "--finetuned",
                os.path.join(ft, "checkpoints/best"), "--alpha",
                ",".join(f"{al:g}" for al in WISE_ALPHAS), "--out", wise])


def sweep_alphas(wise):
    """The α of a finished WiSE-FT sweep in `wise`, or None."""
    try:
        with open(os.path.join(wise, "wise-ft.json")) as f:
            return [pt["alpha"] for pt in json.load(f)["points"]]
    except FileNotFoundError:
        return None


def top1(eval_report):
    return {s["name"]: 100.0 * s["correct"] / max(s["images"], 1) for s in eval_report["sets"]}


def collect(a, seeds):
    """({label: {"seeds": [...], "sets": {set: [per seed]}, "ood_mean": [...], ...}},
    {α: [accs per seed]}, {seed: [(test-id, OOD mean) per α]})."""
    res = {}

    def add(label, seed, accs, extra=None):
        r = res.setdefault(label, {"seeds": [], "sets": {}, "ood_mean": [], "val": [],
                                   "minutes": []})
        r["seeds"].append(seed)
        for k, v in accs.items():
            r["sets"].setdefault(k, []).append(v)
        r["ood_mean"].append(ood_mean(accs))
        for k, v in (extra or {}).items():
            r[k].append(v)

    zs = os.path.join(ROOT, a.runs, "zeroshot.json")
    if os.path.exists(zs):
        with open(zs) as f:
            add("zero-shot", None, top1(json.load(f)))
    wise_curve, wise_by_seed = {}, {}
    for key, label, _, _ in methods(fd_weight()):
        for seed in seeds:
            p = os.path.join(ROOT, a.runs, f"seed{seed}", key, "report.json")
            if not os.path.exists(p):
                continue
            with open(p) as f:
                rep = json.load(f)
            add(label, seed, top1(rep["eval"]),
                {"val": 100.0 * rep["best"]["top1"] if rep.get("best") else float("nan"),
                 "minutes": rep["train_seconds"] / 60.0})
        if key == GRID["wise_ft"]["finetuned"]:
            for seed in seeds:
                p = os.path.join(ROOT, a.runs, f"seed{seed}", "wise-ft", "wise-ft.json")
                if not os.path.exists(p):
                    continue
                with open(p) as f:
                    for pt in json.load(f)["points"]:
                        accs = top1(pt["eval"])
                        wise_curve.setdefault(pt["alpha"], []).append(accs)
                        wise_by_seed.setdefault(seed, []).append(
                            (accs["test-id"], ood_mean(accs)))
                        if abs(pt["alpha"] - 0.5) < 1e-9:
                            add("WiSE-FT (α = 0.5)", seed, accs)
    return res, wise_curve, wise_by_seed


def run_commits(a, seeds):
    """{commit: number of runs} over the finished runs (run.json's cfkit_commit; runs made
    before it was recorded count as "not recorded")."""
    counts = {}
    for key, _, _, _ in methods(fd_weight()):
        for seed in seeds:
            d = os.path.join(ROOT, a.runs, f"seed{seed}", key)
            if not os.path.exists(os.path.join(d, "report.json")):
                continue
            with open(os.path.join(d, "run.json")) as f:
                c = json.load(f).get("cfkit_commit", "not recorded")
            counts[c] = counts.get(c, 0) + 1
    return counts


def progress(a, seeds):
    """(finished, expected) runs: every trained method and the WiSE-FT sweep, per seed."""
    keys = [m[0] for m in methods(fd_weight())]
    done = sum(os.path.exists(os.path.join(ROOT, a.runs, f"seed{s}", k, "report.json"))
               for s in seeds for k in keys)
    done += sum(os.path.exists(os.path.join(ROOT, a.runs, f"seed{s}", "wise-ft", "wise-ft.json"))
                for s in seeds)
    return done, len(seeds) * (len(keys) + 1)


def ms(values, signed=False):
    """"mean ± sample std" (the value alone for one, – for none); `signed` shows a + sign."""
    if not values:
        return "–"
    mean = f"{statistics.mean(values):+.2f}" if signed else f"{statistics.mean(values):.2f}"
    if len(values) == 1:
        return mean
    return f"{mean} ± {statistics.stdev(values):.2f}"


def of_seeds(values, n):
    """" (k of n seeds)" where a column averages fewer seeds than its row, else ""."""
    return f" ({len(values)} of {n} seeds)" if 0 < len(values) < n else ""


def git(*args):
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ood_mean(accs):
    return statistics.mean(v for k, v in accs.items() if k.startswith("ood"))


def wise_means(wise_curve):
    """[(α, mean test-id, mean OOD mean)] over seeds, by α."""
    return [(al, statistics.mean(p["test-id"] for p in wise_curve[al]),
             statistics.mean(ood_mean(p) for p in wise_curve[al])) for al in sorted(wise_curve)]


def plot(res, wise_curve, path):
    """Left: every method and the WiSE-FT curve. Right: the same, zoomed on the fine-tuned
    methods, which cluster within a few points. Error bars: sample std over seeds (≥ 2 seeds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (full, zoom) = plt.subplots(1, 2, figsize=(14, 6), dpi=120,
                                     gridspec_kw={"width_ratios": [1, 1]})
    # Each method gets its own colour and marker; the names go in one legend beside the axes.
    colors = plt.get_cmap("tab20").colors
    markers = "osD^v<>ph*"
    points = [(label, r) for label, r in res.items()
              if not label.startswith("WiSE-FT") and "test-id" in r["sets"]]
    curve = list(zip(*wise_means(wise_curve)))[1:] if wise_curve else None
    for ax in (full, zoom):
        for i, (label, r) in enumerate(points):
            ids, oods = r["sets"]["test-id"], r["ood_mean"]
            x, y = statistics.mean(ids), statistics.mean(oods)
            style = dict(color=colors[i % len(colors)], marker=markers[i % len(markers)])
            if len(ids) > 1:
                ax.errorbar([x], [y], xerr=[statistics.stdev(ids)], yerr=[statistics.stdev(oods)],
                            fmt="none", ecolor=style["color"], elinewidth=0.8, alpha=0.7, zorder=2)
            ax.scatter([x], [y], s=40, label=label, edgecolors="black", linewidths=0.4, zorder=3,
                       **style)
        if curve:
            ax.plot(*curve, "-o", color="gray", markersize=3, label="WiSE-FT, α = 0 … 1",
                    zorder=1)
        ax.set_xlabel("ID top-1 (test-id, %)")
        ax.grid(alpha=0.3)
    # The zoom: the fine-tuned methods (ID within 5 points of the best), plus their error bars.
    tuned = [(statistics.mean(r["sets"]["test-id"]), statistics.mean(r["ood_mean"]))
             for _, r in points]
    best = max(x for x, _ in tuned)
    near = [(x, y) for x, y in tuned if x >= best - 5]
    xs, ys = [x for x, _ in near], [y for _, y in near]
    zoom.set_xlim(min(xs) - 1, max(xs) + 1)
    zoom.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    zoom.set_title("zoom: the fine-tuned methods", fontsize=10)
    full.set_ylabel("OOD top-1 (mean of five OOD sets, %)")
    full.set_title("all methods", fontsize=10)
    handles, labels = full.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.82, 0.5), fontsize=7,
               frameon=False)
    fig.suptitle("FashionShift: ID vs OOD accuracy (mean over seeds; bars: std over seeds)")
    fig.tight_layout(rect=(0, 0, 0.82, 1))
    fig.savefig(path)


def curve_gap(points, x, y):
    """y minus the piecewise-linear curve through `points` [(id, ood)] at x; None outside its
    ID range."""
    pts = sorted(points)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1 and x1 > x0:
            return y - (y0 + (x - x0) / (x1 - x0) * (y1 - y0))
    return None


def per_seed(r):
    """{seed: (test-id, OOD mean)} of a result row."""
    return dict(zip(r["seeds"], zip(r["sets"]["test-id"], r["ood_mean"])))


def paired(r, ref, f):
    """[f(r's (test-id, OOD mean), ref's)] over the seeds both have."""
    mine, theirs = per_seed(r), per_seed(ref)
    return [f(mine[s], theirs[s]) for s in mine if s in theirs]


def report(a, seeds):
    res, wise_curve, wise_by_seed = collect(a, seeds)
    if not res:
        print("nothing has finished yet", file=sys.stderr)
        return
    w = fd_weight()
    done, expected = progress(a, seeds)
    commits = run_commits(a, seeds)
    lines = [
        "# FashionShift results (`just demo`)",
        "",
    ]
    if done < expected:
        lines += [f"**Partial: {done} of {expected} runs have finished**; `./just demo` resumes "
                  "the rest. The seeds column says how many seeds each row averages.", ""]
    lines += [
        "Produced by `./just demo` (tools/demo.py); every number below comes from the runs it "
        "made. Top-1 (%) on each test set, mean ± sample std over seeds "
        f"{', '.join(map(str, seeds))} (zero-shot is deterministic). OOD mean = mean of the five "
        "OOD sets. Methods, hyperparameters and how they were chosen: tools/demo.py and "
        "README.md; FD weight "
        f"{w:g} (configs/train.toml, chosen on the validation hold-out, runs/tune-fd-weight), KD "
        f"weight {KD_WEIGHT:g} at T = {KD_T:g} (chosen on the validation hold-out by the same rule, "
        "runs/tune-kd-weight). \"train min\" is the run's wall-clock training "
        "time on a machine that other jobs sometimes shared: a rough guide, not a benchmark (the "
        "side-by-side timing of FT, offline and online FD is `just bench-methods`).",
        "",
        "\"vs WiSE-FT\": the row's mean OOD minus the mean WiSE-FT curve's (zero-shot ↔ FT, "
        "linear between α points) at the row's mean ID top-1, in points; positive = more robust "
        "than weight interpolation at equal ID accuracy (– outside the curve's ID range, and for "
        "its end points zero-shot and FT). The same per seed, against each seed's own curve, is "
        "in the paired table below.",
        "",
        "| method | seeds | " + " | ".join(SETS) + " | OOD mean | vs WiSE-FT | best val | train min |",
        "|---|---:|" + "---:|" * (len(SETS) + 4),
    ]
    # The curve's own end points (zero-shot, FT) and points are not compared with it.
    compared = [label for label, r in res.items() if "test-id" in r["sets"]
                and label not in ("zero-shot", "FT") and not label.startswith("WiSE-FT")]
    mean_curve = [(x, y) for _, x, y in wise_means(wise_curve)] if wise_curve else []
    for label, r in res.items():
        n = len(r["seeds"])
        cells = [ms(r["sets"].get(s, [])) for s in SETS]
        val = [v for v in r["val"] if v == v]
        g = (curve_gap(mean_curve, statistics.mean(r["sets"]["test-id"]),
                       statistics.mean(r["ood_mean"])) if label in compared else None)
        lines.append(f"| {label} | {n if r['seeds'][0] is not None else '–'} | "
                     + " | ".join(cells)
                     + f" | {ms(r['ood_mean'])} | {'–' if g is None else f'{g:+.2f}'} | "
                     + f"{ms(val)} | {ms(r['minutes'])} |")
    if "FT" in res:
        lines += ["", "Paired by seed: each run minus the FT run of the same seed, and its OOD "
                  "mean minus that seed's WiSE-FT curve at its ID top-1; mean ± std over the "
                  "seeds, in points. A seed whose run has a higher ID top-1 than that seed's FT "
                  "lies beyond the curve and is left out of the last column (the count says so).",
                  "", "| method | seeds | Δ test-id | Δ OOD mean | vs WiSE-FT, same seed |",
                  "|---|---:|---:|---:|---:|"]
        for label in compared:
            r = res[label]
            d_id = paired(r, res["FT"], lambda m, f: m[0] - f[0])
            d_ood = paired(r, res["FT"], lambda m, f: m[1] - f[1])
            gaps = [curve_gap(wise_by_seed[seed], i, o)
                    for seed, (i, o) in per_seed(r).items() if seed in wise_by_seed]
            gaps = [g for g in gaps if g is not None]
            lines.append(f"| {label} | {len(d_id)} | {ms(d_id, signed=True)} | "
                         f"{ms(d_ood, signed=True)} | "
                         f"{ms(gaps, signed=True)}{of_seeds(gaps, len(r['seeds']))} |")
    if wise_curve:
        lines += ["", "WiSE-FT sweep (zero-shot ↔ FT, mean over seeds):", "",
                  "| α | test-id | OOD mean |", "|---:|---:|---:|"]
        for al in sorted(wise_curve):
            pts = wise_curve[al]
            oods = [ood_mean(p) for p in pts]
            lines.append(f"| {al:g} | {ms([p['test-id'] for p in pts])} | {ms(oods)} |")
    # The demo's own outputs do not count as uncommitted changes.
    dirty = (" (with uncommitted changes)"
             if git("status", "--porcelain", "--", ".", ":!RESULTS.md", ":!results") else "")
    lines += [
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}. "
        f"Report written at commit {git('rev-parse', 'HEAD')}{dirty}, "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. `just demo` "
        "resumes, so its runs may span several commits; the cfkit commit each run was trained "
        "with (run.json): "
        + ", ".join(f"{c[:12]} ({n} runs)" for c, n in sorted(commits.items()))
        + (" (\"not recorded\": trained before run.json carried the commit)"
           if "not recorded" in commits else "")
        + ". Before it reuses a finished run, the demo checks that the current binary resolves "
        "that run's config to the same hash (run.json config_hash).",
        "",
        "Scatter plot: results/fashionshift-id-ood.png; raw numbers: results/fashionshift.json. "
        "This report was written by `"
        + " ".join([os.path.relpath(sys.argv[0], ROOT)] + [os.path.relpath(x, ROOT)
                   if os.path.isabs(x) else x for x in sys.argv[1:]])
        + "` (`./just demo` runs `tools/demo.py --cfkit target/release/cfkit`).",
    ]
    out = os.path.join(ROOT, a.out_dir)
    os.makedirs(os.path.join(out, "results"), exist_ok=True)
    with open(os.path.join(out, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "results/fashionshift.json"), "w") as f:
        json.dump({"methods": res, "wise_ft": {str(k): v for k, v in wise_curve.items()},
                   "wise_ft_seeds": list(wise_by_seed),
                   "fd_weight": w, "kd": {"weight": KD_WEIGHT, "temperature": KD_T},
                   "commit": git("rev-parse", "HEAD"),
                   "run_commits": commits,
                   "finished_runs": done, "expected_runs": expected}, f, indent=1)
        f.write("\n")
    plot(res, wise_curve, os.path.join(out, "results/fashionshift-id-ood.png"))
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfkit", default=os.path.join(ROOT, "target/release/cfkit"))
    ap.add_argument("--seeds", default=",".join(map(str, GRID["seeds"])))
    ap.add_argument("--runs", default="runs/demo")
    ap.add_argument("--out-dir", default=".",
                    help="where RESULTS.md and results/ go (relative to the repo root)")
    ap.add_argument("--only", nargs="*", help="method keys to run (default: all)")
    ap.add_argument("--report-only", action="store_true")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    if not a.report_only:
        run_all(a, seeds)
    report(a, seeds)


if __name__ == "__main__":
    main()
