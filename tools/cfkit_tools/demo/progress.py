"""What of the `just demo` grid has finished (cfkit_tools.demo.report): the runs and sweeps
expected, how many are done, the cfkit commits they were trained with, and the compute they took
(issue 15, item 8: the whole grid within 10 hours on 2 cores).
"""
import os

from cfkit_tools import records
from cfkit_tools.demo.grid import CF_BUILDS, ROOT, fd_weight, methods, resolve, wise_sweeps


def expected_runs(seeds, weights, strategies, only, chosen):
    """[(seed, directory, file that marks it finished)] of every trained run and WiSE-FT sweep; a
    run that waits for a weight not yet chosen counts under its unresolved name."""
    runs = methods(fd_weight(), weights, strategies, only)
    keys = [m["key"] if m["after"] is None or m["after"] not in chosen
            or chosen[m["after"]][0] is None else resolve(m, chosen[m["after"]][0])["key"]
            for m in runs]
    wise = [name or "(waits for a weight)" for _, name, _ in wise_sweeps(runs, chosen)]
    return ([(s, k, "report.json") for s in seeds for k in keys]
            + [(s, n, "wise-ft.json") for s in seeds for n in wise])


def run_commits(a, expected):
    """{commit: number of runs} over the finished trained runs (run.json's cfkit_commit; runs made
    before it was recorded count as "not recorded")."""
    counts = {}
    for seed, key, mark in expected:
        d = os.path.join(ROOT, a.runs, f"seed{seed}", key)
        if mark != records.REPORT_FILE or not records.run_finished(d):
            continue
        c = records.read_run(d).cfkit_commit or "not recorded"
        counts[c] = counts.get(c, 0) + 1
    return counts


def progress(a, expected):
    """(finished, expected) over every trained run and every WiSE-FT sweep."""
    done = sum(os.path.exists(os.path.join(ROOT, a.runs, f"seed{s}", k, mark))
               for s, k, mark in expected)
    return done, len(expected)


def compute(a, expected):
    """(training seconds summed over the finished trained runs (report.json's train_seconds; the
    evaluations and WiSE-FT sweeps not included), the counterfactual builds' seconds (done.json of
    each of the grid's shards that has one, summed) or None)."""
    train = 0.0
    for seed, key, mark in expected:
        d = os.path.join(ROOT, a.runs, f"seed{seed}", key)
        if mark == records.REPORT_FILE and records.run_finished(d):
            train += records.read_report(d).train_seconds
    builds = [s for s in (records.build_seconds(os.path.join(ROOT, b["shards"]))
                          for b in CF_BUILDS) if s is not None]
    build = sum(builds) if builds else None
    return train, build
