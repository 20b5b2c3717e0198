"""The validation weight rule (cfkit_tools.demo.weight_rule), and its two callers' use of it."""
import json
import os
import random
import statistics
import unittest

from cfkit_tools import ROOT
from cfkit_tools.demo.weight_rule import Choice, choose_weight


class Rule(unittest.TestCase):
    def test_largest_weight_within_the_points(self):
        # FT 70 (mean of 69 and 71); 0.1 and 1 are within 3 points (1 exactly at 67), 10 is not.
        vals = {0.1: [70.0, 69.0], 1.0: [66.0, 68.0], 10.0: [50.0, 52.0]}
        self.assertEqual(choose_weight([69.0, 71.0], vals, 3.0), Choice(1.0, True))

    def test_fallback_is_the_best_mean_outside_the_rule(self):
        vals = {0.1: [60.0], 0.3: [62.0], 1.0: [61.0]}
        self.assertEqual(choose_weight([70.0], vals, 3.0), Choice(0.3, False))
        # A tie: the first of the sweep's order.
        self.assertEqual(choose_weight([70.0], {1.0: [60.0], 0.1: [60.0]}, 3.0), Choice(1.0, False))

    def test_means_over_the_seeds_that_have_a_run(self):
        # 0.3 has one seed (66.5, within), 1 has two (mean 66.0, not within 3 of 69.5).
        vals = {0.3: [66.5], 1.0: [65.0, 67.0], 3.0: []}
        self.assertEqual(choose_weight([69.0, 70.0], vals, 3.0), Choice(0.3, True))

    def test_no_numbers_no_weight(self):
        self.assertEqual(choose_weight([], {0.1: [70.0]}, 3.0), Choice(None, False))
        self.assertEqual(choose_weight([70.0], {0.1: []}, 3.0), Choice(None, False))

    def test_both_former_rules_agree_where_they_overlap(self):
        """The grid's former pick_weight and the tuning tool's former rule, against the one rule:
        the grid's in every case, the tuning tool's (one seed, no fallback) where the choice is
        within the rule, and the tuning tool's `None` where it is not."""
        def grid_former(ft_val, vals, points):
            means = {wt: statistics.mean(v) for wt, v in vals.items() if v}
            if ft_val is None or not means:
                return None, False
            ok = [wt for wt, m in means.items() if m >= ft_val - points]
            if ok:
                return max(ok), True
            return max(means, key=means.get), False

        def tune_former(ft, rows, within):
            ok = [w for w, v in rows if v >= ft - within]
            return max(ok) if ok else None

        rng = random.Random(0)
        for _ in range(2000):
            weights = rng.sample([0.03, 0.1, 0.3, 1.0, 3.0, 10.0], rng.randint(1, 6))
            seeds = rng.randint(1, 3)
            ft = [round(rng.uniform(60, 75), 1) for _ in range(seeds)]
            vals = {w: [round(rng.uniform(55, 76), 1) for _ in range(rng.randint(0, seeds))]
                    for w in weights}
            ft_val = statistics.mean(ft)
            self.assertEqual(tuple(choose_weight(ft, vals, 3.0)), grid_former(ft_val, vals, 3.0))
            rows = [(w, rng.choice([60.0, 66.0, 67.0, 70.0])) for w in weights]
            choice = choose_weight([ft[0]], {w: [v] for w, v in rows}, 3.0)
            self.assertEqual(choice.weight if choice.within_rule else None,
                             tune_former(ft[0], rows, 3.0))


class Committed(unittest.TestCase):
    def test_the_grid_chooses_the_committed_weights(self):
        """The grid's choices on the committed runs are the ones the committed report records."""
        from cfkit_tools.demo import grid
        runs = grid.methods(grid.fd_weight())
        chosen = grid.chosen_weights(os.path.join(ROOT, "results", "demo-runs"), grid.GRID["seeds"],
                                     runs)
        curve = {m["base"]: m["curve"] for m in runs if m["curve"] is not None}
        with open(os.path.join(ROOT, "results", "fashionshift.json")) as f:
            frontier = json.load(f)["frontier"]
        self.assertEqual({curve[b]: c.weight for b, c in chosen.items()}, frontier["val_weight"])
        self.assertEqual({curve[b]: c.within_rule for b, c in chosen.items()},
                         frontier["val_weight_within_rule"])


if __name__ == "__main__":
    unittest.main()
