"""Frontiers of the FashionShift benchmark (issue 15, item 4): a method's claim is about its curve
of (ID top-1, OOD top-1) points over the distillation weight, not one point. These helpers compare
curves at matched ID accuracy: each curve is piecewise linear through its points sorted by ID, and
is read only inside its own ID range (no extrapolation).
"""
import statistics


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
