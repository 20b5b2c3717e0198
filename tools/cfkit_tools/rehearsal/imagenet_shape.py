"""`just rehearse-imagenet`: ImageNet's shape on a CPU — many classes, class-sorted folders.

What it runs, end to end through the cfkit binary:
1. A class-sorted ImageFolder as ImageNet train is laid out (one folder per class, files in folder
   order): C classes (default 1,000) x n images (default 8), 64 x 48 JPEGs cut at seeded random
   places from the real photographs of scikit-image and matplotlib, and a `--classes` file.
2. `cfkit prepare` at the tiny preset's 56 px (shards of 2,000 rows, row groups of about 1,000).
3. A seeded random tiny teacher with a C-class head; `cfkit build-counterfactuals` (256-row
   batches, as configs/imagenet) with ObjMaskSingleFill(0.3), RandMaskMultiFill(0.5) and
   RandMaskNoFill(0.5), once with one worker and once with two workers + `cfkit merge`.
4. The builds' run records: per strategy, the share of donors (other images) of the recipient's
   class, next to the rate of donors drawn at random from the split (sum over classes of
   n_c (n_c - 1) / (N (N - 1))), and how often single fill's permutation gives an image its own
   pixels.
5. A short FT on the clean shards and a short offline masked FD on the counterfactual shards (one
   epoch, batch 512, 400 rows held out): each run's record says how its first epoch's batches mix
   classes next to a uniform permutation (`data.mixing`) and which rows it held out
   (`holdout-ids.txt`).
Prints a table and writes it with the raw numbers to results/rehearsal/imagenet-shape.{md,json}.
"""
import argparse
import json
import pathlib
import random
import shutil
import subprocess
import time

from PIL import Image

from cfkit_tools import presets, records
from cfkit_tools.bench.pipeline import make_random_teacher
from cfkit_tools.bench.storage import photos

STRATEGIES = ["ObjMaskSingleFill(0.3)", "RandMaskMultiFill(0.5)", "RandMaskNoFill(0.5)"]

BUILD = """\
# Written by cfkit_tools.rehearsal.imagenet_shape.
[source]
shards = "{shards}"
split = "train"

[teacher]
model = "tiny"
weights = "{weights}"
head = "{head}"

[counterfactuals]
cam = "mmcam"
strategies = {strategies}
variants = 1
seed = 0
batch_size = 256
device = "cpu"
"""

TRAIN = """\
# Written by cfkit_tools.rehearsal.imagenet_shape.
[model]
name = "tiny"
weights = "{weights}"
head = "{head}"

[data]
shards = "{shards}"
split = "train"
val_holdout = 400
shuffle_buffer = 2000

[train]
method = "{method}"
epochs = 1
batch_size = 512
micro_batch_size = 128
seed = 0
device = "cpu"
log_every = 5
checkpoint_every = 1000
eval_batch_size = 400

[schedule]
kind = "one-cycle"
max_lr = 1e-4
pct_start = 0.1
{distill}"""

DISTILL = """
[distill]
images = "masked"
strategy = "ObjMaskSingleFill(0.3)"
variant = "epoch"
weight = 1.0
"""


def sh(cmd, **kw):
    print("  $ " + " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)


def make_tree(root, classes, per_class, seed):
    """Class folders c0000... of per_class JPEGs each, cut from the photographs."""
    rng = random.Random(seed)
    base = photos()
    names = [f"c{c:04d}" for c in range(classes)]
    for c, name in enumerate(names):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = base[(c * 7 + i) % len(base)]
            w, h = img.size
            cw, ch = rng.randint(w // 4, w // 2), rng.randint(h // 4, h // 2)
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            img.crop((x, y, x + cw, y + ch)).resize((64, 48), Image.BILINEAR).save(
                d / f"{name}_{i:04d}.jpg", quality=90)
    return names


def random_donor_rate(counts):
    n = sum(counts)
    return sum(c * (c - 1) for c in counts) / (n * (n - 1))


def donor_rates(shards):
    """{strategy: (same-class rate of donors that are other images, own-image rate)} and the
    rate random donors would give, from the build's run records (every worker's, summed)."""
    runs = records.read_build_workers(shards) or [records.read_build_run(shards)]
    reports = [r.report for r in runs]
    rates = {}
    for s in STRATEGIES:
        d = [x for x in (r.donors(s) for r in reports) if x and x["draws"]]
        if not d:
            rates[s] = None
            continue
        draws, own, same = (sum(x[k] for x in d) for k in ("draws", "own_image", "same_class"))
        rates[s] = (same / (draws - own), own / draws)
    rows = [r.rows for r in reports]
    random_rate = sum(r.random_donor_same_class_rate * n for r, n in zip(reports, rows)) / sum(rows)
    return rates, random_rate


def train(cfkit, work, name, method, shards, weights, head):
    cfg = work / f"{name}.toml"
    cfg.write_text(TRAIN.format(weights=weights, head=head, shards=shards, method=method,
                                distill=DISTILL if name == "masked-fd" else ""))
    out = work / "runs" / name
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.time()
    sh([cfkit, "train", "--config", cfg, "--out", out, "--quiet"])
    run = records.read_run(out).raw
    ids_file = out / "holdout-ids.txt"
    ids = ids_file.read_text().split() if ids_file.exists() else []
    return dict(seconds=round(time.time() - t0, 1), mixing=run["data"].get("mixing"),
                holdout=run["data"].get("holdout"), holdout_ids=ids)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfkit", default="target/release/cfkit")
    ap.add_argument("--work", default="target/rehearsal-imagenet")
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--per-class", type=int, default=8)
    ap.add_argument("--out", default="results/rehearsal/imagenet-shape")
    ap.add_argument("--label", default="", help="a name for this run in the output (e.g. before)")
    ap.add_argument("--order", default="shuffled", choices=["shuffled", "input"],
                    help="prepare's row order (input: the folders' order, as cfkit stored rows before)")
    args = ap.parse_args()
    cfkit, work = pathlib.Path(args.cfkit).resolve(), pathlib.Path(args.work).resolve()
    presets.load(str(cfkit))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.time()
    names = make_tree(work / "tree", args.classes, args.per_class, seed=0)
    (work / "classes.txt").write_text("".join(n + "\n" for n in names))
    shards = work / "shards"
    # Shards of 2,000 rows in row groups of about 1,000 (ImageNet at 224 px has about 1,000
    # rows per 100 MB row group).
    sh([cfkit, "prepare", "--image-folder", work / "tree", "--classes", work / "classes.txt",
        "--split", "train", "--out", shards, "--image-size", "56", "--rows-per-shard", "2000",
        "--row-group-bytes", "9000000", "-q"] + (["--order", args.order] if args.order != "shuffled" else []))
    weights, head = make_random_teacher(str(work), "tiny", names)
    (work / "build.toml").write_text(BUILD.format(shards=shards, weights=weights, head=head,
                                                  strategies=json.dumps(STRATEGIES)))
    one, two = work / "cf-1-worker", work / "cf-2-workers"
    sh([cfkit, "build-counterfactuals", "--config", work / "build.toml", "--out", one, "-q"])
    for w in range(2):
        sh([cfkit, "build-counterfactuals", "--config", work / "build.toml", "--out", two, "-q",
            "--num-workers", "2", "--worker-index", str(w)])
    sh([cfkit, "merge", two])
    counts = [args.per_class] * args.classes
    rates = {"1 worker": donor_rates(one)[0], "2 workers + merge": donor_rates(two)[0]}
    runs = {"ft": train(cfkit, work, "ft", "ft", shards, weights, head),
            "masked-fd": train(cfkit, work, "masked-fd", "ft-fd", one, weights, head)}
    ft_ids, fd_ids = set(runs["ft"]["holdout_ids"]), set(runs["masked-fd"]["holdout_ids"])
    res = dict(
        label=args.label, classes=args.classes, per_class=args.per_class, order=args.order,
        random_donor_rate=random_donor_rate(counts), same_class_donor_rate=rates,
        mixing={k: v["mixing"] for k, v in runs.items()},
        holdout=dict(ft=len(ft_ids), masked_fd=len(fd_ids), common=len(ft_ids & fd_ids),
                     identical=ft_ids == fd_ids and bool(ft_ids)),
        train_seconds={k: v["seconds"] for k, v in runs.items()},
        seconds=round(time.time() - t0, 1))
    lines = [f"ImageNet-shaped rehearsal{' (' + args.label + ')' if args.label else ''}: "
             f"{args.classes} class-sorted folders x {args.per_class} images, tiny preset (56 px), "
             f"prepared in {args.order} order.", "",
             "Same-class donors: the share of donors (other images) of the recipient's class, from the "
             "builds' run records; single fill's permutation also gives about one image per batch its "
             "own pixels (own image, as in the reference).", "",
             "| strategy | same-class donors, 1 worker | 2 workers + merge | random donors | own image |",
             "|---|---:|---:|---:|---:|"]
    for s in STRATEGIES:
        cells, own = [], "-"
        for k in rates:
            v = rates[k].get(s)
            cells.append("no donors" if v is None else f"{v[0]:.4f}")
            own = f"{v[1]:.4f}" if v is not None else own
        lines.append(f"| {s} | {' | '.join(cells)} | {res['random_donor_rate']:.4f} | {own} |")
    lines += ["", "| shards | classes per batch of 512 (first epoch) | a uniform permutation | ratio | "
              "largest class per batch | permutation's |", "|---|---:|---:|---:|---:|---:|"]
    for k, m in res["mixing"].items():
        if m:
            lines.append(f"| {k} ({'clean' if k == 'ft' else 'counterfactual'}) | "
                         f"{m['order']['mean_distinct_classes']:.1f} | {m['permutation']['mean_distinct_classes']:.1f} | "
                         f"{m['ratio']:.3f} | {m['order']['mean_largest_class']:.2f} | "
                         f"{m['permutation']['mean_largest_class']:.2f} |")
    h = res["holdout"]
    lines += ["", f"Hold-out: FT {h['ft']} rows, masked FD {h['masked_fd']} rows, {h['common']} in common "
              f"({'identical' if h['identical'] else 'different'}).", "",
              f"Wall time {res['seconds']:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = f"-{args.label}" if args.label else ""
    pathlib.Path(f"{out}{suffix}.md").write_text(text)
    pathlib.Path(f"{out}{suffix}.json").write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}{suffix}.md and .json")


if __name__ == "__main__":
    main()
