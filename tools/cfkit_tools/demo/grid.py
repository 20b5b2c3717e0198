"""The FashionShift benchmark grid (configs/fashionshift/benchmark.toml) as cfkit_tools.demo.run runs it
and cfkit_tools.demo.report reports it: the trained runs (each method at its chosen weight, and the
weight sweeps of the frontiers), the WiSE-FT sweeps, the sets and how OOD is averaged.
"""
import os
import re
import statistics
import string
import tomllib

from cfkit_tools import ROOT, records
from cfkit_tools.demo.weight_rule import choose_weight
# The grid; CFKIT_DEMO_GRID names another (its relative paths are from the repository root too).
GRID_FILE = os.environ.get("CFKIT_DEMO_GRID", "configs/fashionshift/benchmark.toml")
with open(os.path.join(ROOT, GRID_FILE), "rb") as _f:
    GRID = tomllib.load(_f)
STRATEGIES = GRID["strategies"]
HEADLINE = STRATEGIES[0]
CF = GRID["counterfactuals"]["shards"]
# Every counterfactual build of the grid ({config, shards}): the shards all methods train on, then
# any `extra_counterfactuals` that single methods name in their `data.shards` override.
CF_BUILDS = [GRID["counterfactuals"], *GRID.get("extra_counterfactuals", [])]
EVAL = GRID["eval"]["shards"]
SETS = GRID["eval"]["sets"]
# Headline OOD: the mean of the shifted sets. The near set keeps the training correlation and is
# reported apart; the mean of every OOD set is a secondary column.
SHIFTED = GRID["eval"]["shifted"]
NEAR = GRID["eval"]["near"]
KD_WEIGHT, KD_T = GRID["kd"]["weight"], GRID["kd"]["temperature"]
WISE_ALPHAS = GRID["wise_ft"]["alphas"]
FRONTIER = GRID["frontier"]
# `cfkit inspect --json` of the counterfactual shards, in the runs directory.
CF_STATS = "cf-stats.json"


def slug(name):
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", name).strip("-").lower()


def fd_weight():
    with open(os.path.join(ROOT, GRID["fd_weight_from"]), "rb") as f:
        return float(tomllib.load(f)["distill"]["weight"])


def scope(quick):
    """(seeds, sweep weights, swept strategies, method keys or None for all): the grid's, or its
    `[quick]` subset."""
    q = GRID["quick"] if quick else {}
    return (q.get("seeds", GRID["seeds"]), q.get("weights", FRONTIER["weights"]),
            q.get("strategies", FRONTIER["strategies"]), q.get("methods"))


def _fill(template, values):
    return string.Template(template).substitute({k: str(v) for k, v in values.items()})


def _weighted(m):
    """Whether a method's overrides carry a distillation weight."""
    return any("$fd_weight" in s or "$kd_weight" in s for s in m["set"])


def methods(w, weights=None, strategies=None, only=None):
    """The grid's runs, in report order, as dicts: key (run directory), label (report row), config,
    set (`cfkit train --set` overrides), weight (the distillation weight, None without one),
    curve, base and after.

    - A point run (`curve` None, `after` None) is its row of the main table as it is.
    - A method with `sweep = true` (for each_strategy methods only the swept `strategies`) is one
      run per weight of `weights` (`key` = base-w<weight>, `curve` = its label, `base` = its key
      without the weight); its row in the main table is the run at the weight the validation rule
      picks ([`chosen_weights`]).
    - A method with `weight_from` (`after` = that method's key) runs only once the rule has picked
      that method's weight: [`resolve`] makes it a point run at that weight. So do the strategies
      of a swept each_strategy method that are not swept, with `unswept_weight_from`.
    `only` (method key templates, e.g. the `[quick]` subset) keeps those methods only; each_strategy
    methods then run the swept strategies only."""
    weights = FRONTIER["weights"] if weights is None else weights
    strategies = FRONTIER["strategies"] if strategies is None else strategies
    fill = {"fd_weight": w, "kd_weight": KD_WEIGHT, "kd_temperature": KD_T,
            "headline": HEADLINE, "headline_slug": slug(HEADLINE)}
    out = []
    for m in GRID["methods"]:
        if only is not None and m["key"] not in only:
            continue
        each = STRATEGIES if only is None else [s for s in STRATEGIES if s in strategies]
        for s in (each if m.get("each_strategy") else [None]):
            f = dict(fill, **({"strategy": s, "slug": slug(s)} if s else {}))
            base = dict(key=_fill(m["key"], f), label=_fill(m["label"], f), config=m["config"],
                        set=[_fill(x, f) for x in m["set"]], curve=None, base=None, after=None,
                        weight=(w if "$fd_weight" in "".join(m["set"]) else KD_WEIGHT)
                        if _weighted(m) else None)
            swept = m.get("sweep") and (s is None or s in strategies)
            after = m.get("weight_from") or (None if swept else m.get("unswept_weight_from"))
            if after:
                out.append(dict(base, after=_fill(after, f), fill=f, templates=m["set"]))
            elif swept:
                for wt in weights:
                    g = dict(f, fd_weight=wt, kd_weight=wt)
                    out.append(dict(base, key=f"{base['key']}-w{wt:g}", curve=base["label"],
                                    base=base["key"], set=[_fill(x, g) for x in m["set"]],
                                    weight=wt))
            else:
                out.append(base)
    return out


def resolve(run, weight):
    """A `weight_from` run (see [`methods`]) at `weight`: a point run whose key says the weight."""
    g = dict(run["fill"], fd_weight=weight, kd_weight=weight)
    return dict(run, key=f"{run['key']}-w{weight:g}", set=[_fill(x, g) for x in run["templates"]],
                after=None, weight=weight)


def best_val(runs_dir, seed, key):
    """A finished run's best validation top-1 (%), or None (unfinished, or no validation)."""
    report = records.finished_report(os.path.join(runs_dir, f"seed{seed}", key))
    return None if report is None else report.best_top1_pct


def chosen_weights(runs_dir, seeds, runs):
    """{base key: weight_rule.Choice (weight, within the rule)} of every swept method of `runs`
    (see [`methods`]), from the finished runs of `seeds`: the validation weight rule
    (cfkit_tools.demo.weight_rule) with `[frontier] val_points`."""
    ft = [v for v in (best_val(runs_dir, s, "ft") for s in seeds) if v is not None]
    vals = {}
    for r in runs:
        if r["curve"] is not None:
            v = [x for x in (best_val(runs_dir, s, r["key"]) for s in seeds) if x is not None]
            vals.setdefault(r["base"], {})[r["weight"]] = v
    return {b: choose_weight(ft, by, FRONTIER["val_points"]) for b, by in vals.items()}


def table_runs(runs, chosen):
    """The main table's rows in report order as (label, run key or None, weight or None): point
    runs as they are, each swept method at its chosen weight, each `weight_from` run resolved at
    its method's chosen weight (key None while that weight is unknown)."""
    out, seen = [], set()
    for r in runs:
        if r["curve"] is not None:
            if r["base"] in seen:
                continue
            seen.add(r["base"])
            wt = chosen.get(r["base"], (None, False))[0]
            out.append((r["curve"], None if wt is None else f"{r['base']}-w{wt:g}", wt))
        elif r["after"] is not None:
            wt = chosen.get(r["after"], (None, False))[0]
            out.append((r["label"], None if wt is None else resolve(r, wt)["key"], wt))
        else:
            out.append((r["label"], r["key"], r["weight"]))
    return out


def wise_sweeps(runs, chosen):
    """[(run key it starts from or None, directory name or None, label)] of the WiSE-FT sweeps: from
    the teacher to FT, and to each other `[wise_ft] finetuned` run (WiSE-FT on top of a method, as
    the paper combines them; a swept method's run at its chosen weight, None while unknown)."""
    rows = {key: (label, key, wt) for label, key, wt in table_runs(runs, chosen)}
    bases = {r["base"]: r["curve"] for r in runs if r["curve"] is not None}
    out = []
    for k in GRID["wise_ft"]["finetuned"]:
        key = _fill(k, {"headline_slug": slug(HEADLINE)})
        if key == "ft":
            out.append((key, "wise-ft", "WiSE-FT"))
        elif key in bases:
            wt = chosen.get(key, (None, False))[0]
            run = None if wt is None else f"{key}-w{wt:g}"
            out.append((run, None if run is None else f"wise-ft-{run}",
                        f"WiSE-FT on {bases[key]}"))
        elif key in rows:
            out.append((key, f"wise-ft-{key}", f"WiSE-FT on {rows[key][0]}"))
    return out


def ood_mean(accs):
    """The headline OOD number: the mean over the shifted sets."""
    return statistics.mean(accs[s] for s in SHIFTED)


def ood_all(accs):
    """The mean over every OOD set (the near one included): a secondary column."""
    return statistics.mean(v for k, v in accs.items() if k.startswith("ood"))


def train_argv(cfkit, runs_dir, seed, m):
    """`cfkit train` of run `m` of the grid at `seed` as cfkit_tools.demo.run runs it (without --out and
    --resume), and the run's directory under `runs_dir`."""
    config = m["config"]
    # The grid's data, relative to the base config (as paths in a config are).
    rel = lambda p: os.path.relpath(os.path.join(ROOT, p), os.path.dirname(os.path.join(ROOT, config)))
    argv = [cfkit, "train", "--config", config]
    # A method that trains on other shards (an `extra_counterfactuals` build) names them in its set.
    own = any(s.startswith("data.shards=") for s in m["set"])
    for s in ([] if own else [f'data.shards="{rel(CF)}"']) + [
            f'eval.shards="{rel(EVAL)}"', f"train.epochs={GRID['epochs']}",
            f"train.seed={seed}"] + m["set"]:
        argv += ["--set", s]
    return argv, os.path.join(runs_dir, f"seed{seed}", m["key"])


def wise_argv(cfkit, run_dir, out):
    """`cfkit wise-ft` from the teacher to the best checkpoint of `run_dir` at the grid's α."""
    return [cfkit, "wise-ft", "--zeroshot", GRID["teacher"], "--finetuned",
            os.path.join(run_dir, "checkpoints/best"), "--alpha",
            ",".join(f"{al:g}" for al in WISE_ALPHAS), "--out", out]


def shards_of(m):
    """The absolute shards directory run `m` trains on: its own `data.shards` override (relative to
    its base config, as config paths are) or the grid's."""
    for s in m["set"]:
        if s.startswith("data.shards="):
            value = tomllib.loads(s)["data"]["shards"]
            return os.path.normpath(os.path.join(os.path.dirname(os.path.join(ROOT, m["config"])), value))
    return os.path.normpath(os.path.join(ROOT, CF))


def builds_for(runs):
    """The builds of CF_BUILDS that `runs` train on (`--quick` or `--only` need fewer)."""
    used = {shards_of(m) for m in runs}
    return [b for b in CF_BUILDS if os.path.normpath(os.path.join(ROOT, b["shards"])) in used]


def build_argv(cfkit, build):
    """`cfkit build-counterfactuals` of one of CF_BUILDS into its shards directory."""
    return [cfkit, "build-counterfactuals", "--config", build["config"], "--out", build["shards"]]


def stats_name(build):
    """The file (in the runs directory) of a build's `cfkit inspect --json` statistics, and the name
    of its contact sheet: cf-stats.json / cf-sheet.png for the grid's main shards, with the shards'
    directory name appended for the others."""
    if build is CF_BUILDS[0]:
        return CF_STATS, "cf-sheet.png"
    name = build_name(build)
    return f"cf-stats-{name}.json", f"cf-sheet-{name}.png"


def build_name(build):
    """A build's name in file names and report rows: its shards' directory name."""
    return os.path.basename(os.path.normpath(build["shards"]))


def inspect_argv(cfkit, build, sheet):
    """`cfkit inspect --json` of a build's shards (statistics over every row, a sheet of 8)."""
    return [cfkit, "inspect", build["shards"], "--json", "--n", "8", "--out", sheet]


def build_cam(build):
    """The CAM method a build's config names (`counterfactuals.cam`, default mmcam)."""
    with open(os.path.join(ROOT, build["config"]), "rb") as f:
        return tomllib.load(f)["counterfactuals"].get("cam", "mmcam")


def eval_argv(cfkit, checkpoint, split):
    """`cfkit eval --json` of `checkpoint` on `split` (comma-separated) of the evaluation shards."""
    return [cfkit, "eval", "--checkpoint", checkpoint, "--shards", EVAL, "--split", split, "--json"]
