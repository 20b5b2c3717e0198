"""Tables of the `just demo` report (cfkit_tools.demo.report) that stand apart from the method
rows: the calibration of the benchmark and the counterfactual statistics; and the mean ± std cells
every table uses.
"""
import os
import statistics

from cfkit_tools import records
from cfkit_tools.demo.grid import CF_BUILDS, GRID, ROOT, build_cam, build_name, stats_name


def ms(values, signed=False):
    """"mean ± sample std" (the value alone for one, – for none); `signed` shows a + sign."""
    if not values:
        return "–"
    mean = f"{statistics.mean(values):+.2f}" if signed else f"{statistics.mean(values):.2f}"
    if len(values) == 1:
        return mean
    return f"{mean} ± {statistics.stdev(values):.2f}"


def of_seeds(values, n):
    """" (k of n seeds)" where a column averages fewer seeds than its row, else ""."""
    return f" ({len(values)} of {n} seeds)" if 0 < len(values) < n else ""


def per_seed(r):
    """{seed: (test-id, OOD mean)} of a result row."""
    return dict(zip(r["seeds"], zip(r["sets"]["test-id"], r["ood_mean"])))


def background_gap(evaluation, split):
    """(top-1 on rows with the label's background, on the others, gap) in % on `split` of an
    evaluation (records.Evaluation) with the generator's ground truth, or None without it."""
    st = evaluation.set(split)
    b = st and st.background
    if not b or not b.matching_images or not b.other_images:
        return None
    match = 100.0 * b.matching_correct / b.matching_images
    other = 100.0 * b.other_correct / b.other_images
    return match, other, match - other


def calibration(a, seeds):
    """The calibration section (`calibration` in the grid): the teacher's and each seed's FT gap
    between rows with and without the label's background on the ID split, against the rule."""
    cal = GRID["calibration"]
    split = cal["split"]
    rows = {}
    for label, paths in [("teacher", [os.path.join(ROOT, a.runs, "calibration-teacher.json")]),
                         ("FT", [os.path.join(ROOT, a.runs, f"seed{s}", "calibration-ft.json")
                                 for s in seeds])]:
        for p in paths:
            if os.path.exists(p):
                g = background_gap(records.read_evaluation(p), split)
                if g:
                    rows.setdefault(label, []).append(g)
    if not rows:
        return [], None
    rule = {"teacher": lambda gap: gap <= cal["teacher_gap_max"],
            "FT": lambda gap: gap >= cal["ft_gap_min"]}
    lines = ["", "## Calibration (ID data only)", "",
             f"On the generator's `{split}` split (ID, the training correlation), top-1 on the "
             "rows whose background is the label's family and on the others, and the gap, in "
             "points; mean ± std over seeds. The rule, fixed before any OOD number was looked "
             f"at: FT's gap at least {cal['ft_gap_min']:g} (it exploits the background), the "
             f"teacher's at most {cal['teacher_gap_max']:g} (it does not).", "",
             "| model | seeds | top-1, label's background | top-1, other backgrounds | gap | "
             "rule |", "|---|---:|---:|---:|---:|---|"]
    record = {}
    for label, gs in rows.items():
        gap = statistics.mean(g[2] for g in gs)
        met = rule[label](gap)
        lines.append(f"| {label} | {len(gs) if label == 'FT' else '–'} | "
                     f"{ms([g[0] for g in gs])} | {ms([g[1] for g in gs])} | "
                     f"{ms([g[2] for g in gs], signed=True)} | {'met' if met else 'NOT met'} |")
        record[label] = {"matching": [g[0] for g in gs], "other": [g[1] for g in gs],
                         "gap": [g[2] for g in gs], "rule_met": met}
    return lines, record


def distribution(histogram):
    """Histogram counts as whole percentages, space-separated ("<1" for a bin that is not empty
    but rounds to 0); – without a histogram."""
    total = sum(histogram or [])
    if not total:
        return "–"
    pct = lambda c: f"{100 * c / total:.0f}"
    return " ".join("<1" if c and pct(c) == "0" else pct(c) for c in histogram)


def cf_stats(a):
    """The counterfactual statistics section from `cfkit inspect --json` of each build (the runner
    writes them next to the runs), and its record {strategy: statistics}; a strategy of a further
    build is named with that build's CAM and shards."""
    reps = []
    for build in CF_BUILDS:
        path = os.path.join(ROOT, a.runs, stats_name(build)[0])
        if os.path.exists(path):
            rep = records.read_inspection(path)
            suffix = ("" if build is CF_BUILDS[0] else
                      f" — {build_cam(build)} CAM ({build_name(build)})")
            reps.append((suffix, rep))
    if not reps:
        return [], None
    num = lambda v: "–" if v is None else f"{v:.3f}"
    lines = ["", "## Counterfactuals", "",
             f"Per strategy over the {reps[0][1].rows} training rows of the counterfactual shards "
             "(`cfkit inspect --json`): the mean share of patches masked, donor draws from the "
             "row's own class, and, where the data carries the generator's garment mask, the mean "
             "IoU of each mask with the garment's patches and with the background's, and the mean "
             "share of the garment masked (– for data generated before the mask was stored). "
             "\"mask ratio distribution\": the share of variants (%) whose mask ratio lies in "
             "[0, 0.1), [0.1, 0.2), …, [0.9, 1]. A row naming a CAM is from a further build of the "
             "grid (`extra_counterfactuals`).", "",
             "| strategy | variants | mask ratio | mask ratio distribution | same-class donors | "
             "IoU garment | IoU background | garment masked |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    record = {}
    for suffix, rep in reps:
        for name, st in rep.strategies.items():
            record[name + suffix] = st.raw
            lines.append(f"| {name}{suffix} | {st.variants} | {st.mask_ratio_mean:.3f} | "
                         f"{distribution(st.mask_ratio_histogram)} | "
                         f"{st.same_class_donor_rate:.3f} | {num(st.object_iou_mean)} | "
                         f"{num(st.background_iou_mean)} | {num(st.object_masked_mean)} |")
    return lines, record
