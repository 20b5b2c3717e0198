#!/usr/bin/env python3
"""`just demo`: the FashionShift benchmark (DESIGN §6) end to end.

The grid — methods, strategies, seeds, sets, weights, the frontiers' weight sweeps, WiSE-FT α — is
configs/demo/benchmark.toml (read by tools/demo_grid.py); this script runs it and
tools/demo_report.py reports it. Besides the trained methods listed there it evaluates the
zero-shot teacher (no training; seed-independent) and sweeps WiSE-FT between the teacher and each
seed's FT run (and each other `[wise_ft] finetuned` run).

Runs live in runs/demo/seed<N>/<method>/ (a weight sweep's runs: <method>-w<weight>); a run with a
report.json is done and skipped (after checking that its config hash is the one asked for now; a
mismatch stops the demo), an unfinished one is resumed, so `just demo` can be stopped and restarted
at any time. `--quick` runs the grid's `[quick]` subset (one seed, three weights). At the end (or
with --report-only, on whatever has finished) it writes RESULTS.md, results/fashionshift.json, the
ID-vs-OOD scatter plot and the frontier plot (see tools/demo_report.py).
"""
import argparse
import json
import os
import subprocess
import sys

from demo_grid import (CF, CF_STATS, EVAL, GRID, ROOT, SETS, WISE_ALPHAS, fd_weight, methods,
                       scope, wise_sweeps)
from demo_report import report, sweep_alphas


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


def run_all(a, seeds, weights, strategies):
    cfkit = a.cfkit
    if not os.path.exists(os.path.join(ROOT, CF, "manifest.json")):
        sh([cfkit, "build-counterfactuals", "--config", GRID["counterfactuals"]["config"]])
    # The counterfactuals' statistics per strategy (mask ratios, same-class donors, and with the
    # generator's ground truth the masks' IoU with the garment), for the report.
    stats = os.path.join(ROOT, a.runs, CF_STATS)
    if not os.path.exists(stats):
        os.makedirs(os.path.dirname(stats), exist_ok=True)
        out = sh([cfkit, "inspect", CF, "--json", "--n", "8", "--out",
                  os.path.join(ROOT, a.runs, "cf-sheet.png")], capture=True)
        with open(stats + ".tmp", "w") as f:
            f.write(out)
        os.replace(stats + ".tmp", stats)
    zs = os.path.join(ROOT, a.runs, "zeroshot.json")
    if not os.path.exists(zs):
        out = sh([cfkit, "eval", "--checkpoint", GRID["teacher"], "--shards", EVAL,
                  "--split", ",".join(SETS), "--json"], capture=True)
        os.makedirs(os.path.dirname(zs), exist_ok=True)
        with open(zs, "w") as f:
            f.write(out)
    for seed in seeds:
        for m in methods(fd_weight(), weights, strategies):
            key, config, sets = m["key"], m["config"], m["set"]
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
        for key, name, _ in wise_sweeps(fd_weight()):
            wise = os.path.join(ROOT, a.runs, f"seed{seed}", name)
            run = os.path.join(ROOT, a.runs, f"seed{seed}", key)
            if (sweep_alphas(wise) != WISE_ALPHAS
                    and os.path.exists(os.path.join(run, "report.json"))
                    and (not a.only or name in a.only)):
                # A sweep over other α (or none) is (re)made; its checkpoints are replaced
                # atomically.
                sh([cfkit, "wise-ft", "--zeroshot", GRID["teacher"], "--finetuned",
                    os.path.join(run, "checkpoints/best"), "--alpha",
                    ",".join(f"{al:g}" for al in WISE_ALPHAS), "--out", wise])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfkit", default=os.path.join(ROOT, "target/release/cfkit"))
    ap.add_argument("--seeds", help="comma-separated seeds [default: the grid's]")
    ap.add_argument("--quick", action="store_true",
                    help="the grid's [quick] subset: one seed, three sweep weights")
    ap.add_argument("--runs", default="runs/demo")
    ap.add_argument("--out-dir", default=".",
                    help="where RESULTS.md and results/ go (relative to the repo root)")
    ap.add_argument("--only", nargs="*", help="method keys to run (default: all)")
    ap.add_argument("--report-only", action="store_true")
    a = ap.parse_args()
    seeds, weights, strategies = scope(a.quick)
    if a.seeds:
        seeds = [int(s) for s in a.seeds.split(",")]
    if not a.report_only:
        run_all(a, seeds, weights, strategies)
    report(a, seeds, weights, strategies)


if __name__ == "__main__":
    main()
