"""The FashionShift benchmark grid (configs/demo/benchmark.toml) as tools/demo.py runs it and
tools/demo_report.py reports it: the trained runs (each method at its chosen weight, and the
weight sweeps of the frontiers), the WiSE-FT sweeps, the sets and how OOD is averaged.
"""
import os
import re
import statistics
import string
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRID_FILE = "configs/demo/benchmark.toml"
with open(os.path.join(ROOT, GRID_FILE), "rb") as _f:
    GRID = tomllib.load(_f)
STRATEGIES = GRID["strategies"]
HEADLINE = STRATEGIES[0]
CF = GRID["counterfactuals"]["shards"]
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
    """(seeds, sweep weights, swept strategies): the grid's, or its `[quick]` subset."""
    q = GRID["quick"] if quick else {}
    return (q.get("seeds", GRID["seeds"]), q.get("weights", FRONTIER["weights"]),
            q.get("strategies", FRONTIER["strategies"]))


def _fill(template, values):
    return string.Template(template).substitute({k: str(v) for k, v in values.items()})


def methods(w, weights=None, strategies=None):
    """Every trained run of the grid as a dict: key (run directory), label (report row), config,
    set (`cfkit train --set` overrides); `curve` and `weight` for the runs of a method's weight
    sweep (`sweep = true`: one run per weight of `weights`, for each_strategy methods only the
    `strategies`), None for the runs at the chosen weights."""
    weights = FRONTIER["weights"] if weights is None else weights
    strategies = FRONTIER["strategies"] if strategies is None else strategies
    fill = {"fd_weight": w, "kd_weight": KD_WEIGHT, "kd_temperature": KD_T,
            "headline": HEADLINE, "headline_slug": slug(HEADLINE)}
    out = []
    for m in GRID["methods"]:
        for s in (STRATEGIES if m.get("each_strategy") else [None]):
            f = dict(fill, **({"strategy": s, "slug": slug(s)} if s else {}))
            base = dict(key=_fill(m["key"], f), label=_fill(m["label"], f), config=m["config"],
                        set=[_fill(x, f) for x in m["set"]], curve=None, weight=None)
            out.append(base)
            if not m.get("sweep") or (s is not None and s not in strategies):
                continue
            for wt in weights:
                g = dict(f, fd_weight=wt, kd_weight=wt)
                out.append(dict(base, key=f"{base['key']}-w{wt:g}",
                                set=[_fill(x, g) for x in m["set"]], curve=base["label"],
                                weight=wt))
    return out


def wise_sweeps(w):
    """[(run key it starts from, directory name, label)] of the WiSE-FT sweeps: from the teacher to
    FT, and to each other `[wise_ft] finetuned` run (WiSE-FT on top of a method, as the paper
    combines them)."""
    labels = {m["key"]: m["label"] for m in methods(w, weights=[])}
    out = []
    for k in GRID["wise_ft"]["finetuned"]:
        key = _fill(k, {"headline_slug": slug(HEADLINE)})
        if key == "ft":
            out.append((key, "wise-ft", "WiSE-FT"))
        else:
            out.append((key, f"wise-ft-{key}", f"WiSE-FT on {labels[key]}"))
    return out


def top1(eval_report):
    return {s["name"]: 100.0 * s["correct"] / max(s["images"], 1) for s in eval_report["sets"]}


def ood_mean(accs):
    """The headline OOD number: the mean over the shifted sets."""
    return statistics.mean(accs[s] for s in SHIFTED)


def ood_all(accs):
    """The mean over every OOD set (the near one included): a secondary column."""
    return statistics.mean(v for k, v in accs.items() if k.startswith("ood"))
