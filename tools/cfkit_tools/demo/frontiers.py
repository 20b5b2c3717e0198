"""Frontiers of the FashionShift benchmark (issue 15, item 4): a method's claim is about its curve
of (ID top-1, OOD top-1) points over the distillation weight, not one point.

The arithmetic: curves compared at matched ID accuracy; each curve is piecewise linear through its
points sorted by ID, and is read only inside its own ID range (no extrapolation). The report's
frontier section (cfkit_tools.demo.report): each swept method's curve and each WiSE-FT curve read
at the matched-ID levels, the curve on top and its lead, every distillation curve against the
grid's reference (FT+FD on clean images), and the frontier plot.
"""
import statistics

from cfkit_tools.demo.grid import FRONTIER, fd_weight, methods
from cfkit_tools.demo.tables import ms, of_seeds, per_seed


def interpolate(points, x):
    """The OOD value of the piecewise-linear curve through `points` [(id, ood)] at ID `x`; None
    outside the curve's ID range. Points of equal ID are averaged first."""
    by_id = {}
    for i, o in points:
        by_id.setdefault(i, []).append(o)
    pts = sorted((i, statistics.mean(o)) for i, o in by_id.items())
    if len(pts) == 1:
        return pts[0][1] if x == pts[0][0] else None
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            return y0 + (x - x0) / (x1 - x0) * (y1 - y0)
    return None


def curve_gap(points, x, y):
    """`y` minus the curve through `points` at `x`; None outside its ID range."""
    at = interpolate(points, x)
    return None if at is None else y - at


def levels(zero_shot_id, ft_id, fractions):
    """The ID accuracies `fractions` of the way from the teacher's ID top-1 to FT's."""
    return [zero_shot_id + f * (ft_id - zero_shot_id) for f in fractions]


def matched(curve_by_seed, zero_shot_id, ft_by_seed, fractions):
    """{fraction: {seed: OOD of that seed's curve at the seed's level}} over the seeds that have
    a curve and an FT run and whose level lies inside the curve's ID range."""
    out = {f: {} for f in fractions}
    for seed, points in curve_by_seed.items():
        if seed not in ft_by_seed:
            continue
        for f, x in zip(fractions, levels(zero_shot_id, ft_by_seed[seed], fractions)):
            y = interpolate(points, x)
            if y is not None:
                out[f][seed] = y
    return out


def paired_gaps(mine, reference):
    """{fraction: [mine - reference]} over the seeds both have at that fraction."""
    return {f: [v - reference[f][s] for s, v in by_seed.items() if s in reference.get(f, {})]
            for f, by_seed in mine.items()}


def lead(at_level):
    """The curve on top at one level and how far: `at_level` is {label: {seed: OOD}} (empty for a
    curve that does not reach the level). Returns (leader, runner-up, gaps), the two highest mean
    OOD and the leader's OOD minus the runner-up's on each seed both reach (sorted by seed), so that
    a lead can be told from seed noise; (None, None, []) when no curve reaches the level and
    (leader, None, []) when only one does."""
    means = {lb: statistics.mean(v.values()) for lb, v in at_level.items() if v}
    ranked = sorted(means, key=lambda lb: -means[lb])
    if len(ranked) < 2:
        return (ranked[0] if ranked else None), None, []
    top, second = ranked[:2]
    gaps = [at_level[top][s] - at_level[second][s] for s in sorted(at_level[top])
            if s in at_level[second]]
    return top, second, gaps



def describe_lead(top, second, gaps):
    """"A, +x ± s over B (ahead on k of n seeds)" for the on-top line of the frontier section."""
    if top is None:
        return "–"
    if second is None:
        return f"{top} (the only curve that reaches it)"
    if not gaps:
        return f"{top} (no seed shared with the runner-up, {second})"
    ahead = sum(g > 0 for g in gaps)
    return f"{top}, {ms(gaps, signed=True)} over {second} (ahead on {ahead} of {len(gaps)} seeds)"


def frontier(rows, curves, weights, chosen):
    """The frontier section of RESULTS.md and its JSON record (empty without the zero-shot and FT
    rows or any curve); `chosen`: {curve label: (weight, within the rule)} of the swept methods."""
    zs, ft = rows.get("zero-shot"), rows.get("FT")
    if not zs or not ft or not curves:
        return [], {}
    fractions = FRONTIER["levels"]
    zs_id = zs["sets"]["test-id"][0]
    ft_by_seed = {s: i for s, (i, _) in per_seed(ft).items()}
    at = {label: matched(c, zs_id, ft_by_seed, fractions) for label, c in curves.items()}
    wise = at.get("WiSE-FT", {})
    pct = [f"{100 * f:g} %" for f in fractions]
    lines = ["", "## Frontiers at matched ID", "",
             "Each method's curve through its runs at the distillation weights "
             f"{', '.join(f'{x:g}' for x in weights)} (per seed, linear between points "
             "sorted by ID), each WiSE-FT curve through its α points, read at ID levels fixed in "
             "advance: " + ", ".join(pct) + " of the way from the teacher's test-id top-1 to the "
             "same seed's FT. OOD = mean of the shifted sets; mean ± std over the seeds whose curve "
             "reaches the level (the count says when not all do). Δ WiSE-FT: minus the WiSE-FT "
             "(zero-shot ↔ FT) curve of the same seed at the same level. \"val weight\": the "
             f"largest weight whose mean validation top-1 is within {FRONTIER['val_points']:g} "
             "points of FT's (the one rule for every method; \"best val\" when no weight is, "
             "then the weight with the best mean validation top-1); the main table shows each "
             "swept method at this weight.", "",
             "| curve | seeds | " + " | ".join(f"OOD @ {p}" for p in pct) + " | "
             + " | ".join(f"Δ WiSE-FT @ {p}" for p in pct) + " | val weight |",
             "|---|---:|" + "---:|" * (2 * len(fractions) + 1)]
    for label, by_f in at.items():
        n = len(curves[label])
        cells = [ms(list(by_f[f].values())) + of_seeds(list(by_f[f].values()), n)
                 for f in fractions]
        gaps = paired_gaps(by_f, wise) if label != "WiSE-FT" else {}
        dcells = [ms(gaps[f], signed=True) if gaps.get(f) else "–" for f in fractions]
        cw, ok = chosen.get(label, (None, False))
        wcell = "–" if cw is None else f"{cw:g}" + ("" if ok else " (best val)")
        lines.append(f"| {label} | {n} | " + " | ".join(cells) + " | " + " | ".join(dcells)
                     + f" | {wcell} |")
    leads = [lead({lb: v[f] for lb, v in at.items()}) for f in fractions]
    lines += ["", "On top at each level (highest mean OOD among the curves that reach it), and "
              "its lead over the runner-up, paired by seed (mean ± std of the differences on "
              "the seeds both curves reach; a lead smaller than its std, or not held on every "
              "seed, is seed noise): "
              + "; ".join(f"{p}: {describe_lead(*ld)}" for p, ld in zip(pct, leads)) + "."]
    tops = [top for top, _, _ in leads]
    vs_ref_md, vs_ref = against_reference(at, pct, fractions)
    lines += vs_ref_md
    record = {"levels": fractions, "zero_shot_id": zs_id, "ft_id": ft_by_seed,
              "ood_at_level": {lb: {str(f): v[f] for f in fractions} for lb, v in at.items()},
              "on_top": dict(zip(map(str, fractions), tops)),
              "runner_up": {str(f): second for f, (_, second, _) in zip(fractions, leads)},
              "lead_over_runner_up": {str(f): gaps for f, (_, _, gaps) in zip(fractions, leads)},
              "reference": vs_ref.get("label"), "vs_reference": vs_ref.get("gaps", {}),
              "val_weight": {lb: wt for lb, (wt, _) in chosen.items()},
              "val_weight_within_rule": {lb: ok for lb, (_, ok) in chosen.items()}}
    return lines, record


def against_reference(at, pct, fractions):
    """The section comparing each distillation curve with the grid's `[frontier] reference` method
    (FT+FD on clean images) at the matched-ID levels, paired by seed, and its record
    {"label", "gaps": {curve: {level: [per shared seed]}}} ({} without the reference's curve)."""
    key = FRONTIER.get("reference")
    ref = next((m["curve"] for m in methods(fd_weight()) if key and m["base"] == key), None)
    if ref not in at:
        return [], {}
    others = [lb for lb in at if lb not in (ref, "WiSE-FT")]
    gaps = {lb: paired_gaps(at[lb], at[ref]) for lb in others}
    lines = ["", f"Against {ref} at the same levels: each curve's OOD minus {ref}'s, paired by "
             "seed (mean ± std over the seeds both curves reach, and on how many of them the "
             "curve is above): what the masking or the logits add to distilling the teacher's "
             "features on clean images.", "",
             "| curve | " + " | ".join(f"Δ {ref} @ {p}" for p in pct) + " |",
             "|---|" + "---:|" * len(fractions)]
    for lb in others:
        cells = [f"{ms(g, signed=True)} ({sum(x > 0 for x in g)} of {len(g)} seeds above)"
                 if g else "–" for g in (gaps[lb][f] for f in fractions)]
        lines.append(f"| {lb} | " + " | ".join(cells) + " |")
    return lines, {"label": ref, "gaps": {lb: {str(f): g for f, g in v.items()}
                                          for lb, v in gaps.items()}}


def plot_frontiers(rows, sweep, path):
    """Each curve's mean over seeds per weight (α for WiSE-FT), ID vs OOD (shifted sets), with the
    zero-shot and FT points."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    for i, (label, by_param) in enumerate(sweep.items()):
        pts = [(statistics.mean(p[1] for p in v), statistics.mean(p[2] for p in v), k)
               for k, v in sorted(by_param.items())]
        style = "--" if label.startswith("WiSE-FT") else "-"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="os^vD<>ph*"[i % 10],
                markersize=4, label=label)
    for label in ("zero-shot", "FT"):
        if label in rows:
            r = rows[label]
            ax.scatter([statistics.mean(r["sets"]["test-id"])], [statistics.mean(r["ood_mean"])],
                       s=60, color="black", marker="*" if label == "FT" else "X", zorder=3,
                       label=label)
    ax.set_xlabel("ID top-1 (test-id, %)")
    ax.set_ylabel("OOD top-1 (mean of the shifted sets, %)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("FashionShift frontiers: distillation weight sweeps and WiSE-FT (mean over seeds)")
    fig.tight_layout()
    fig.savefig(path)
