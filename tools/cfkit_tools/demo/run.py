"""`just demo`: the FashionShift benchmark (DESIGN §6) end to end.

    PYTHONPATH=tools .venv/bin/python -m cfkit_tools.demo.run [--quick] [--report-only] ...

The grid — methods, strategies, seeds, sets, weights, the frontiers' weight sweeps, WiSE-FT α — is
configs/fashionshift/benchmark.toml (read by cfkit_tools.demo.grid); this module runs it and
cfkit_tools.demo.report reports it. Besides the trained methods listed there it evaluates the
zero-shot teacher (no training; seed-independent) and sweeps WiSE-FT between the teacher and each
seed's FT run (and each other `[wise_ft] finetuned` run).

Runs live in runs/demo/seed<N>/<method>/ (a weight sweep's runs: <method>-w<weight>); a run with a
report.json is done and skipped (after checking that it was made with the config asked for now,
records.same_config; another config stops the demo), an unfinished one is resumed, so `just demo` can be stopped and restarted
at any time. `--quick` runs the grid's `[quick]` subset (one seed, three weights, the frontiers'
methods; its runs are the full grid's, so a later full run reuses them) and reports into
results/quick/. At the end (or with --report-only, on whatever has finished) it writes RESULTS.md,
results/fashionshift.json, the ID-vs-OOD scatter plot and the frontier plot (see
cfkit_tools.demo.report).

Runs that follow a chosen weight (`weight_from` and `unswept_weight_from` in the grid: online mode
and the strategies that are not swept, at the headline's weight) and the WiSE-FT sweep on the
headline are made after every seed's sweeps have finished, since the validation rule averages over
the seeds being run: run more seeds together (`--seeds 0,1,2`), not one by one, so that they share
the choice.
"""
import argparse
import os
import subprocess
import sys
import tomllib

from cfkit_tools import records
from cfkit_tools.demo.grid import (GRID, ROOT, SETS, WISE_ALPHAS, build_argv, builds_for,
                                   chosen_weights, eval_argv, fd_weight, inspect_argv, methods,
                                   resolve, scope, stats_name, train_argv, wise_argv, wise_sweeps)
from cfkit_tools.demo.report import report, sweep_alphas


def sh(cmd, capture=False):
    print("+", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, check=True, cwd=ROOT, capture_output=capture, text=True)
    return r.stdout


def check_finished(cmd, out):
    """A finished run is kept only if it was made with the config the demo asks for now
    (`cfkit train --print-config`; records.same_config says why equal hashes are not required);
    otherwise stop, rather than report stale numbers."""
    want = records.parse_printed_config(subprocess.run(cmd, check=True, cwd=ROOT,
                                                       capture_output=True, text=True).stdout)
    have = records.read_run(out)
    if not records.same_config(have, want):
        sys.exit(f"{out} holds a finished run of another config (hash {have.config_hash[:12]}…) "
                 f"than the demo now asks for ({want.config_hash[:12]}…): a hyperparameter "
                 "changed since it ran. Move the directory away to rerun it.")


def train(a, cfkit, seed, m):
    """Trains run `m` of the grid at `seed` (skipped when finished with the same config)."""
    base, out = train_argv(cfkit, os.path.join(ROOT, a.runs), seed, m)
    if records.run_finished(out):
        check_finished(base + ["--print-config"], out)
        return
    sh(base + ["--out", out, "--resume", "-q"])


def fresh_per_epoch(builds):
    """Fresh counterfactuals every epoch (issue 15, item 6): every build's shards must hold at least
    as many variants per strategy as the runs have epochs (epoch e uses variant e mod K)."""
    for build in builds:
        with open(os.path.join(ROOT, build["config"]), "rb") as f:
            k = tomllib.load(f)["counterfactuals"].get("variants", 1)
        if GRID["epochs"] > k:
            sys.exit(f"{build['config']}: variants = {k}, but the grid trains "
                     f"{GRID['epochs']} epochs (configs/fashionshift/benchmark.toml): fresh counterfactuals "
                     "every epoch need variants >= epochs")


def evaluate(cfkit, checkpoint, split, path):
    """`cfkit eval --json` of `checkpoint` on `split` of the evaluation shards into `path`, unless
    it exists."""
    if os.path.exists(path):
        return
    out = sh(eval_argv(cfkit, checkpoint, split), capture=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(out)
    os.replace(path + ".tmp", path)


def run_all(a, seeds, weights, strategies, only):
    cfkit = a.cfkit
    runs = [m for m in methods(fd_weight(), weights, strategies, only)
            if not a.only or m["key"] in a.only or (m["base"] or m["key"]) in a.only]
    builds = builds_for(runs)
    fresh_per_epoch(builds)
    for build in builds:
        if not records.shards_built(os.path.join(ROOT, build["shards"])):
            sh(build_argv(cfkit, build))
    # The counterfactuals' statistics per strategy (mask ratios, same-class donors, and with the
    # generator's ground truth the masks' IoU with the garment), for the report; one file per build.
    for build in builds:
        name, sheet = stats_name(build)
        stats = os.path.join(ROOT, a.runs, name)
        if not os.path.exists(stats):
            os.makedirs(os.path.dirname(stats), exist_ok=True)
            out = sh(inspect_argv(cfkit, build, os.path.join(ROOT, a.runs, sheet)), capture=True)
            with open(stats + ".tmp", "w") as f:
                f.write(out)
            os.replace(stats + ".tmp", stats)
    evaluate(cfkit, GRID["teacher"], ",".join(SETS), os.path.join(ROOT, a.runs, "zeroshot.json"))
    # The calibration split (ID data only): the teacher once, each seed's FT once it has run.
    cal = GRID["calibration"]["split"]
    evaluate(cfkit, GRID["teacher"], cal, os.path.join(ROOT, a.runs, "calibration-teacher.json"))
    # First every run that does not wait for a weight, every seed; then the validation rule
    # picks each swept method's weight (over all seeds), and the runs that follow it (online
    # mode and the unswept strategies at the headline's weight, WiSE-FT on the headline) are made
    # at that weight.
    for seed in seeds:
        for m in runs:
            if m["after"] is None:
                train(a, cfkit, seed, m)
    chosen = chosen_weights(os.path.join(ROOT, a.runs), seeds, runs)
    for seed in seeds:
        ft = os.path.join(ROOT, a.runs, f"seed{seed}", "ft")
        if records.run_finished(ft):
            evaluate(cfkit, os.path.join(ft, "checkpoints/best"), cal,
                     os.path.join(ROOT, a.runs, f"seed{seed}", "calibration-ft.json"))
        for m in runs:
            if m["after"] is not None:
                wt = chosen.get(m["after"], (None, False))[0]
                if wt is None:
                    print(f"{m['key']}: no weight of {m['after']} has finished yet; skipped",
                          flush=True)
                    continue
                train(a, cfkit, seed, resolve(m, wt))
        for key, name, _ in wise_sweeps(runs, chosen):
            if key is None:
                continue
            wise = os.path.join(ROOT, a.runs, f"seed{seed}", name)
            run = os.path.join(ROOT, a.runs, f"seed{seed}", key)
            if (sweep_alphas(wise) != WISE_ALPHAS
                    and records.run_finished(run)
                    and (not a.only or name in a.only or key in a.only)):
                # A sweep over other α (or none) is (re)made; its checkpoints are replaced
                # atomically.
                sh(wise_argv(cfkit, run, wise))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfkit", default=os.path.join(ROOT, "target/release/cfkit"))
    ap.add_argument("--seeds", help="comma-separated seeds [default: the grid's]")
    ap.add_argument("--quick", action="store_true",
                    help="the grid's [quick] subset: one seed, three sweep weights")
    ap.add_argument("--runs", default="runs/demo")
    ap.add_argument("--out-dir",
                    help="where RESULTS.md and results/ go (relative to the repo root) "
                         "[default: the root; results/quick with --quick, so that a quick run "
                         "never replaces the full benchmark's report]")
    ap.add_argument("--only", nargs="*", help="method keys to run (default: all)")
    ap.add_argument("--report-only", action="store_true")
    a = ap.parse_args()
    if a.out_dir is None:
        a.out_dir = os.path.join("results", "quick") if a.quick else "."
    seeds, weights, strategies, only = scope(a.quick)
    if a.seeds:
        seeds = [int(s) for s in a.seeds.split(",")]
    if not a.report_only:
        run_all(a, seeds, weights, strategies, only)
    report(a, seeds, weights, strategies, only)


if __name__ == "__main__":
    main()
