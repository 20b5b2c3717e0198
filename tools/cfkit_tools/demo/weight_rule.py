"""The validation weight rule: how a distillation weight is chosen, on the ID validation hold-out
only (DESIGN §6), fixed before any sweep ran. One function, used by the benchmark grid
(cfkit_tools.demo.grid: each swept method's weight, `[frontier] val_points` = 3) and by `just
tune-fd-weight` / `just tune-kd-weight` (cfkit_tools.demo.tune_distill_weight, `--within` = 3).

The rule: the largest weight whose mean best validation top-1 (over the seeds that have it) is
within `within` points of FT's mean best validation top-1 (over the seeds that have FT), that is
at least FT's minus `within`. When no weight is, the weight with the best mean validation top-1,
marked as outside the rule (the first of the sweep's order on a tie). No FT number or no weight's
number: no weight.

The two callers differ only in what they show for a choice outside the rule: the grid's report
uses it (its frontier table marks it "best val"); the tuning tool records no weight
(`chosen_weight: null`), as it always has. With one seed, as the tuning tool runs, each mean is
that seed's number.
"""
import statistics
from typing import NamedTuple, Optional


class Choice(NamedTuple):
    """The weight the rule picks (None without numbers) and whether it is within the rule (False
    for the best-validation fallback)."""
    weight: Optional[float]
    within_rule: bool


def choose_weight(ft_vals, vals, within) -> Choice:
    """The rule (see the module): `ft_vals` = FT's best validation top-1 (%) per seed, `vals` =
    {weight: [best validation top-1 (%) per seed]} in the sweep's order (a weight with no finished
    run has an empty list), `within` = the points FT's validation top-1 may be undercut by."""
    means = {wt: statistics.mean(v) for wt, v in vals.items() if v}
    if not ft_vals or not means:
        return Choice(None, False)
    ft = statistics.mean(ft_vals)
    ok = [wt for wt, m in means.items() if m >= ft - within]
    if ok:
        return Choice(max(ok), True)
    return Choice(max(means, key=means.get), False)
