"""The report of `just demo` (cfkit_tools.demo.run): RESULTS.md, results/fashionshift.json, the
ID-vs-OOD scatter plot and the frontier plot, from whatever runs have finished.

- Main table: each method at its chosen weight, mean ± sample std over seeds per set. The
  headline OOD number is the mean of the shifted sets (`[eval] shifted`); the near set, which keeps
  the training correlation, has its own column, and the mean of all OOD sets is secondary.
- Frontiers (issue 15, item 4): each swept method's curve over the distillation weights and each
  WiSE-FT curve, read at three ID levels fixed in advance (`[frontier] levels`: fractions of the way
  from the teacher's ID top-1 to the same seed's FT), per seed, then mean ± std over seeds; the
  curve on top at each level; and the weight the validation rule picks for each method.
"""
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

from cfkit_tools import records
from cfkit_tools.demo.commands import INVOCATION, MODULE, commands
from cfkit_tools.demo.frontiers import curve_gap, frontier, plot_frontiers
from cfkit_tools.demo.grid import (KD_T, KD_WEIGHT, NEAR, ROOT, SETS, SHIFTED, chosen_weights,
                                   fd_weight, methods, ood_all, ood_mean, table_runs, wise_sweeps)
from cfkit_tools.demo.progress import compute, expected_runs, progress, run_commits
from cfkit_tools.demo.tables import calibration, cf_stats, ms, of_seeds, per_seed


def sweep_alphas(wise):
    """The α of a finished WiSE-FT sweep in `wise`, or None."""
    sweep = records.finished_wise_ft(wise)
    return None if sweep is None else [pt.alpha for pt in sweep.points]


def collect(a, seeds, weights, strategies, only):
    """Everything the report needs from the runs tree:
    rows {label: {"seeds", "sets": {set: [per seed]}, "ood_mean", "ood_all", "val", "minutes",
    "weight"}} for zero-shot, each method at its chosen weight and WiSE-FT (α = 0.5); curves
    {label: {seed: [(test-id, OOD mean)]}} of the weight sweeps and the WiSE-FT sweeps; sweep
    {label: {weight or α: [(seed, test-id, OOD mean, best val or None)]}}; FT's WiSE-FT sweep
    {α: [accs per seed]}; and the chosen weights {method key: (weight, within the rule)}."""
    rows, curves, sweep, wise_curve = {}, {}, {}, {}

    def add(label, seed, accs, extra=None):
        r = rows.setdefault(label, {"seeds": [], "sets": {}, "ood_mean": [], "ood_all": [],
                                    "val": [], "minutes": [], "weight": None})
        r["seeds"].append(seed)
        for k, v in accs.items():
            r["sets"].setdefault(k, []).append(v)
        r["ood_mean"].append(ood_mean(accs))
        r["ood_all"].append(ood_all(accs))
        for k, v in (extra or {}).items():
            r[k].append(v)

    zs_path = os.path.join(ROOT, a.runs, "zeroshot.json")
    if os.path.exists(zs_path):
        add("zero-shot", None, records.read_evaluation(zs_path).top1_pct())
    runs = methods(fd_weight(), weights, strategies, only)
    runs_dir = os.path.join(ROOT, a.runs)
    chosen = chosen_weights(runs_dir, seeds, runs)
    for label, key, wt in table_runs(runs, chosen):
        for seed in seeds:
            rep = key and records.finished_report(os.path.join(runs_dir, f"seed{seed}", key))
            if not rep:
                continue
            val = rep.best_top1_pct
            add(label, seed, rep.evaluation.top1_pct(),
                {"val": float("nan") if val is None else val,
                 "minutes": rep.train_seconds / 60.0})
            rows[label]["weight"] = wt
    for m in runs:
        if m["curve"] is None:
            continue
        for seed in seeds:
            rep = records.finished_report(os.path.join(runs_dir, f"seed{seed}", m["key"]))
            if rep is None:
                continue
            accs = rep.evaluation.top1_pct()
            val = rep.best_top1_pct
            point = (accs["test-id"], ood_mean(accs))
            curves.setdefault(m["curve"], {}).setdefault(seed, []).append(point)
            sweep.setdefault(m["curve"], {}).setdefault(m["weight"], []).append(
                (seed, *point, val))
    for key, name, label in wise_sweeps(runs, chosen):
        for seed in seeds:
            sw = name and records.finished_wise_ft(os.path.join(runs_dir, f"seed{seed}", name))
            for pt in sw.points if sw else []:
                accs = pt.evaluation.top1_pct()
                curves.setdefault(label, {}).setdefault(seed, []).append(
                    (accs["test-id"], ood_mean(accs)))
                sweep.setdefault(label, {}).setdefault(pt.alpha, []).append(
                    (seed, accs["test-id"], ood_mean(accs), None))
                if key == "ft":
                    wise_curve.setdefault(pt.alpha, []).append(accs)
                    if abs(pt.alpha - 0.5) < 1e-9:
                        add("WiSE-FT (α = 0.5)", seed, accs)
    return rows, curves, sweep, wise_curve, chosen


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
    full.set_ylabel("OOD top-1 (mean of the shifted sets, %)")
    full.set_title("all methods", fontsize=10)
    handles, labels = full.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.82, 0.5), fontsize=7,
               frameon=False)
    fig.suptitle("FashionShift: ID vs OOD accuracy (mean over seeds; bars: std over seeds)")
    fig.tight_layout(rect=(0, 0, 0.82, 1))
    fig.savefig(path)


def paired(r, ref, f):
    """[f(r's (test-id, OOD mean), ref's)] over the seeds both have."""
    mine, theirs = per_seed(r), per_seed(ref)
    return [f(mine[s], theirs[s]) for s in mine if s in theirs]


def report(a, seeds, weights, strategies, only=None):
    res, curves, sweep, wise_curve, chosen = collect(a, seeds, weights, strategies, only)
    wise_by_seed = curves.get("WiSE-FT", {})
    if not res:
        print("nothing has finished yet", file=sys.stderr)
        return
    w = fd_weight()
    expected = expected_runs(seeds, weights, strategies, only, chosen)
    done, n_expected = progress(a, expected)
    commits = run_commits(a, expected)
    train_s, build_s = compute(a, expected)
    curve_of = {m["base"]: m["curve"] for m in methods(w, weights, strategies, only)
                if m["curve"] is not None}
    chosen_by_label = {curve_of[b]: c for b, c in chosen.items()}
    lines = [
        "# FashionShift results (`just demo`)",
        "",
    ]
    if done < n_expected:
        lines += [f"**Partial: {done} of {n_expected} runs have finished**; `./just demo` resumes "
                  "the rest. The seeds column says how many seeds each row averages.", ""]
    lines += [
        f"Produced by `./just demo` ({MODULE}); every number below comes from the runs it "
        "made. Top-1 (%) on each test set, mean ± sample std over seeds "
        f"{', '.join(map(str, seeds))} (zero-shot is deterministic). OOD mean = mean of the "
        f"shifted sets ({', '.join(SHIFTED)}), the headline number; {NEAR} keeps the training "
        "correlation and is its own column; \"OOD, all\" = mean of every OOD set. Methods, "
        "hyperparameters and how they were chosen: configs/fashionshift/benchmark.toml and README.md. "
        "\"weight\" is the run's distillation weight: a swept method is shown at the weight the "
        "validation rule picks from its sweep (see the frontier table), and so are the runs "
        "that follow it (online mode, WiSE-FT on the headline, and the strategies that are not "
        f"swept, as the paper uses one weight for all); KD at T = {KD_T:g}, as in the paper. "
        "\"train min\" is the run's wall-clock training "
        "time on a machine that other jobs sometimes shared: a rough guide, not a benchmark (the "
        "side-by-side timing of FT, offline and online FD is `just bench-methods`).",
        "",
        "\"vs WiSE-FT\": the row's mean OOD minus the mean WiSE-FT curve's (zero-shot ↔ FT, "
        "linear between α points) at the row's mean ID top-1, in points; positive = more robust "
        "than weight interpolation at equal ID accuracy (– outside the curve's ID range, and for "
        "its end points zero-shot and FT). The same per seed, against each seed's own curve, is "
        "in the paired table below.",
        "",
        "| method | seeds | weight | " + " | ".join(SETS)
        + " | OOD mean | OOD, all | vs WiSE-FT | best val | train min |",
        "|---|---:|---:|" + "---:|" * (len(SETS) + 5),
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
        wt = "–" if r["weight"] is None else f"{r['weight']:g}"
        lines.append(f"| {label} | {n if r['seeds'][0] is not None else '–'} | {wt} | "
                     + " | ".join(cells)
                     + f" | {ms(r['ood_mean'])} | {ms(r['ood_all'])} | "
                     + f"{'–' if g is None else f'{g:+.2f}'} | "
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
    cal_md, cal_record = calibration(a, seeds)
    lines += cal_md
    frontier_md, frontier_record = frontier(res, curves, weights, chosen_by_label)
    lines += frontier_md
    cf_md, cf_record = cf_stats(a)
    lines += cf_md
    # The demo's own outputs do not count as uncommitted changes.
    dirty = (" (with uncommitted changes)"
             if git("status", "--porcelain", "--", ".", ":!RESULTS.md", ":!results") else "")
    lines += [""] + commands(methods(w, weights, strategies, only), chosen, seeds,
                             os.path.relpath(os.path.join(ROOT, a.runs), ROOT), weights)
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
        "that run's config to the same hash (run.json config_hash) or, where cfkit's hash "
        "changed, to the same config up to the spelling of its paths (records.same_config). "
        "Compute: training the "
        f"{sum(commits.values())} finished runs took {train_s / 3600:.1f} h (the sum of each "
        "run's training time; evaluations and WiSE-FT sweeps not included; other jobs sometimes "
        "shared the machine)"
        + (f", building the counterfactual shards {build_s / 60:.0f} min" if build_s else "")
        + ".",
        "",
        "Scatter plot: results/fashionshift-id-ood.png; frontiers: "
        "results/fashionshift-frontiers.png; raw numbers: results/fashionshift.json. "
        "This report was written by `"
        + " ".join([INVOCATION] + [os.path.relpath(x, ROOT)
                                   if os.path.isabs(x) else x for x in sys.argv[1:]])
        + f"` (`./just demo` runs `python -m {MODULE} --cfkit target/release/cfkit`).",
    ]
    out = os.path.join(ROOT, a.out_dir)
    os.makedirs(os.path.join(out, "results"), exist_ok=True)
    with open(os.path.join(out, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "results/fashionshift.json"), "w") as f:
        json.dump({"methods": res, "wise_ft": {str(k): v for k, v in wise_curve.items()},
                   "wise_ft_seeds": list(wise_by_seed),
                   "calibration": cal_record,
                   "frontier": frontier_record,
                   "counterfactuals": cf_record,
                   "sweeps": {lb: {f"{k:g}": v for k, v in by.items()} for lb, by in sweep.items()},
                   "fd_weight": w, "kd": {"weight": KD_WEIGHT, "temperature": KD_T},
                   "commit": git("rev-parse", "HEAD"),
                   "run_commits": commits, "train_seconds": train_s,
                   "counterfactual_build_seconds": build_s,
                   "finished_runs": done, "expected_runs": n_expected}, f, indent=1)
        f.write("\n")
    plot(res, wise_curve, os.path.join(out, "results/fashionshift-id-ood.png"))
    if sweep:
        plot_frontiers(res, sweep, os.path.join(out, "results/fashionshift-frontiers.png"))
    print("\n".join(lines))


