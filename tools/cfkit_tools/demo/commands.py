"""The "Commands" section of RESULTS.md: the exact commands behind the report, made by the same
functions that cfkit_tools.demo.run runs them with (cfkit_tools.demo.grid), for the first seed."""
import shlex

from cfkit_tools.demo.grid import (FRONTIER, GRID, SETS, build_argv, builds_for, eval_argv,
                                   inspect_argv, resolve, stats_name, table_runs, train_argv,
                                   wise_argv, wise_sweeps)

CFKIT = "target/release/cfkit"  # what `./just demo` builds and passes as --cfkit
# The demo runner, and how to run it from the repository root.
MODULE = "cfkit_tools.demo.run"
INVOCATION = f"PYTHONPATH=tools .venv/bin/python -m {MODULE}"


def commands(runs, chosen, seeds, runs_dir, weights):
    """Markdown lines: the top-level commands, then each command of one seed (`seeds[0]`) in the
    order the runner runs them. `runs` = grid.methods(...), `chosen` = the chosen weights,
    `runs_dir` = the runs tree relative to the repository root, `weights` = the sweep's weights."""
    seed = seeds[0]
    by_key = {}
    for m in runs:
        if m["after"] is not None:
            wt = chosen.get(m["after"], (None, False))[0]
            if wt is not None:
                m = resolve(m, wt)
        by_key[m["key"]] = m
    block = lambda argv: f"    {shlex.join(argv)}"
    lines = [
        "## Commands",
        "",
        "`./just demo` makes everything above (resumable: a finished run is kept after its config "
        "hash is checked); `./just demo --quick` the one-seed, three-weight subset into "
        f"results/quick/; `{INVOCATION} --report-only` rewrites this report from "
        "whatever has finished. What it runs, in order, for seed "
        f"{seed} (another seed changes `train.seed` and the `seed<N>` directory):",
        "",
        block([CFKIT, "demo-data", "--out", "data/fashionshift", "-q"]),
        *[block(build_argv(CFKIT, b)) for b in builds_for(runs)],
        *[block(inspect_argv(CFKIT, b, f"{runs_dir}/{stats_name(b)[1]}")) for b in builds_for(runs)],
        block(eval_argv(CFKIT, GRID["teacher"], ",".join(SETS))),
        block(eval_argv(CFKIT, GRID["teacher"], GRID["calibration"]["split"])),
    ]
    swept = set()
    for _, key, _ in table_runs(runs, chosen):
        m = by_key.get(key)
        if m is None:
            continue
        if m["base"] is not None:
            # The row of a swept method is its run at the chosen weight; the sweep runs the same
            # command at each weight (directory <method>-w<weight>).
            swept.add(m["base"])
        argv, out = train_argv(CFKIT, runs_dir, seed, m)
        lines.append(block(argv + ["--out", out, "--resume", "-q"]))
    for key, name, _ in wise_sweeps(runs, chosen):
        if key is not None:
            lines.append(block(wise_argv(CFKIT, f"{runs_dir}/seed{seed}/{key}",
                                         f"{runs_dir}/seed{seed}/{name}")))
    weights = FRONTIER["weights"] if weights is None else weights
    lines += ["", f"FT's best checkpoint is also evaluated on `{GRID['calibration']['split']}` for "
              "the calibration table."]
    if swept:
        lines[-1] += (f" The swept methods ({', '.join(sorted(swept))}) run their command above at "
                      f"each weight {', '.join(f'{w:g}' for w in weights)} of the frontier, into "
                      "`<method>-w<weight>`; the ones above are at the weight the validation rule "
                      "picked.")
    return lines
