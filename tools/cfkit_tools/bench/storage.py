"""`just bench-storage`: bytes per image and loader throughput at 224 px, on real photographs.

What it runs (issue 16, item 6):
1. An ImageFolder of N JPEGs (quality 90, ImageNet-like 500x375 on average) cut at seeded random
   positions and scales from the real photographs shipped in scikit-image and matplotlib.
2. `cfkit prepare --image-size 224` -> clean image shards.
3. `cfkit build-counterfactuals` at 224 px with a seeded random ViT-B/32 teacher (1000-class head,
   like ImageNet's; cfkit_tools.bench.pipeline makes it): ObjMaskSingleFill(0.3), K = 2 variants,
   teacher logits stored (as configs/imagenet/*/build.toml does).
4. Per-row bytes of every column of both shard kinds, read from the Parquet footers (compressed
   column-chunk sizes): the clean image, each stored variant's pixels, its teacher features, its
   mask and donor ids (and logits, where stored per variant). A compact variant (everything of the
   variant but its pixels) is the sum of those measured columns; the same build with
   `compact = true` gives the measured compact row.
5b. The trainer's loader on one core (bench_train's --loader mode, 4 passes over the split, the
   batches as the loader thread hands them over: uint8 pixels, normalised later on the device):
   clean rows, and offline masked FD's rows (with the strategy) — materialized shards decode the
   clean image and the variant, compact shards decode each clean image of a row group once and
   recompose the variants. Targets (issue 32): clean >= 2,000 and compact masked FD >= 1,000
   images/s per core.
5. Loader read + PNG decode images/s on one core, cfkit's bench_data example next to pyarrow + PIL
   in the same run (medians of --rounds).
6. From those: disk for ImageNet-1k train (1,281,167 images) with K = 2, and the cores needed to
   feed a given training rate.
Writes results/bench/storage.json and prints a markdown table.
"""
import argparse
import json
import os
import pathlib
import random
import shutil
import statistics
import subprocess

import matplotlib
import pyarrow.parquet as pq
import skimage.data
from PIL import Image

from cfkit_tools import presets, records
from cfkit_tools.bench.data import pyarrow_pil
from cfkit_tools.bench.pipeline import make_random_teacher

IMAGENET_TRAIN = 1_281_167
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "motorcycle_right",
          "hubble_deep_field", "retina", "ihc", "grass", "gravel", "colorwheel"]


def photos():
    out = []
    for name in PHOTOS:
        try:
            a = getattr(skimage.data, name)()
        except Exception:  # noqa: BLE001 -- a photo not in this scikit-image: skip it
            continue
        out.append(Image.fromarray(a).convert("RGB"))
    hopper = pathlib.Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    out.append(Image.open(hopper).convert("RGB"))
    return out


def random_crop(img, rng, widths):
    """A crop of a third to all of `img` at a random place, resized to a width in `widths`."""
    w, h = img.size
    cw, ch = rng.randint(w // 3, w), rng.randint(h // 3, h)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    out_w = rng.randint(*widths)
    out_h = max(1, round(out_w * ch / cw))
    return img.crop((x, y, x + cw, y + ch)).resize((out_w, out_h), Image.BICUBIC)


def make_folder(root, n, classes, seed):
    rng = random.Random(seed)
    base = photos()
    for i in range(n):
        crop = random_crop(base[i % len(base)], rng, (400, 600))
        d = root / f"class{i % classes:03d}"
        d.mkdir(parents=True, exist_ok=True)
        crop.save(d / f"{i:05d}.jpg", quality=90)


def column_bytes(files):
    """Compressed bytes per top-level column group, summed over files."""
    out, rows = {}, 0
    for f in files:
        meta = pq.ParquetFile(f).metadata
        rows += meta.num_rows
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            for c in range(rg.num_columns):
                col = rg.column(c)
                path = col.path_in_schema
                key = path.replace(".list.element", "")
                out[key] = out.get(key, 0) + col.total_compressed_size
    return out, rows


def sh(cmd):
    print("  $ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfkit", required=True)
    ap.add_argument("--rust-bin", required=True, help="the bench_data example")
    ap.add_argument("--loader-bin", required=True, help="the bench_train example (its --loader mode)")
    ap.add_argument("--work", default="target/bench-storage")
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="results/bench/storage.json")
    args = ap.parse_args()
    presets.load(args.cfkit)
    work = pathlib.Path(args.work)
    src, clean, cf = work / "photos", work / "clean", work / "cf"
    if not records.shards_built(clean):
        shutil.rmtree(work, ignore_errors=True)
        make_folder(src, args.images, 10, seed=0)
        # 1000 classes as ImageNet (the photos fill the first 10), so the stored logits have 1000.
        (work / "classes.txt").write_text("".join(f"class{i:03d}\n" for i in range(1000)))
        sh([args.cfkit, "prepare", "--image-folder", str(src), "--classes", str(work / "classes.txt"),
            "--out", str(clean), "--image-size", "224", "-q"])
    src_bytes = sum(f.stat().st_size for f in src.rglob("*.jpg"))
    classes = [f"class{i:03d}" for i in range(1000)]
    weights, head = make_random_teacher(str(work), "vit-b-32", classes)
    if not records.shards_built(cf):
        cfg = work / "build.toml"
        cfg.write_text(
            f'[source]\nshards = "{clean.resolve()}"\nsplit = "train"\n[teacher]\nmodel = "vit-b-32"\n'
            f'weights = "{pathlib.Path(weights).resolve()}"\nhead = "{pathlib.Path(head).resolve()}"\n'
            '[counterfactuals]\ncam = "mmcam"\nstrategies = ["ObjMaskSingleFill(0.3)"]\nvariants = 2\n'
            'seed = 0\nbatch_size = 16\nstore_logits = true\ndevice = "cpu"\n')
        sh([args.cfkit, "build-counterfactuals", "--config", str(cfg), "--out", str(cf), "-q"])
    compact_dir = work / "cf-compact"
    if not records.shards_built(compact_dir):
        sh([args.cfkit, "build-counterfactuals", "--config", str(work / "build.toml"), "--out", str(compact_dir),
            "--set", "counterfactuals.compact=true", "-q"])
    files = lambda d: [str(d / f) for f in records.read_manifest(d).shard_files("train")]  # noqa: E731
    clean_cols, n = column_bytes(files(clean))
    cf_cols, n_cf = column_bytes(files(cf))
    assert n == n_cf, (n, n_cf)
    k = 2
    per_row = lambda cols, pred: sum(v for c, v in cols.items() if pred(c)) / n  # noqa: E731
    clean_total = sum(os.path.getsize(f) for f in files(clean)) / n
    cf_total = sum(os.path.getsize(f) for f in files(cf)) / n
    var_pixels = per_row(cf_cols, lambda c: c.startswith("variants.image")) / k
    var_feature = per_row(cf_cols, lambda c: c.startswith("variants.teacher_feature")) / k
    var_logits = per_row(cf_cols, lambda c: c.startswith("variants.teacher_logits")) / k
    var_mask_donor = per_row(cf_cols, lambda c: c.startswith(("variants.mask", "variants.donor_ids"))) / k
    var_other = per_row(cf_cols, lambda c: c.startswith("variants.")) / k - var_pixels - var_feature - var_logits - var_mask_donor
    materialized = var_pixels + var_feature + var_logits + var_mask_donor + var_other
    compact = materialized - var_pixels  # mask, donor ids, teacher features and logits
    # Loader: read + decode of the clean 224-px shards, one core, next to pyarrow + PIL.
    ref, one = [], []
    for r in range(args.rounds):
        m, secs, total = pyarrow_pil(files(clean))
        ref.append(m / secs)
        res = records.parse_bench_line(subprocess.run([args.rust_bin, str(clean), "train", "1"], check=True,
                                                      capture_output=True, text=True).stdout, args.rust_bin)
        if res.images != m or res.pixel_sum != total % 2**64:
            raise SystemExit(f"cfkit and pyarrow+PIL disagree: {res.raw} vs {m} images")
        one.append(res.images_per_s)
        print(f"  round {r + 1}: pyarrow+PIL {ref[-1]:.0f} img/s, cfkit 1 thread {one[-1]:.0f}", flush=True)
    per_core = statistics.median(one)
    # The trainer's loader on one core: clean rows, and offline masked FD's (the clean image and
    # the chosen variant of every row, decoded (materialized) or recomposed from the row group's
    # clean images (compact)).
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    loader = {"clean": [], "materialized": [], "compact": []}
    for r in range(args.rounds):
        for form, d in [("clean", clean), ("materialized", cf), ("compact", compact_dir)]:
            strategy = [] if form == "clean" else ["--strategy", "ObjMaskSingleFill(0.3)"]
            out = subprocess.run([args.loader_bin, "--loader", str(d), "--split", "train", "--batch", "32",
                                  "--threads", "1", "--passes", "4", *strategy], check=True,
                                 capture_output=True, text=True, env=env)
            loader[form].append(records.parse_bench_line(out.stdout, args.loader_bin).images_per_s)
        print(f"  trainer's loader round {r + 1}: clean {loader['clean'][-1]:.0f} img/s, masked FD materialized "
              f"{loader['materialized'][-1]:.0f} img/s, compact {loader['compact'][-1]:.0f} img/s", flush=True)
    compact_total = sum(os.path.getsize(f) for f in files(compact_dir)) / n
    gib = 1024 ** 3
    res = dict(
        images=n, image_size=224, variants=k, teacher="random ViT-B/32, 1000-class head", strategy="ObjMaskSingleFill(0.3)",
        source_jpeg_bytes_per_image=src_bytes / n,
        clean_row_bytes=clean_total, clean_image_bytes=per_row(clean_cols, lambda c: c.startswith("image.")),
        cf_row_bytes=cf_total,
        variant_bytes=dict(pixels=var_pixels, teacher_feature=var_feature, teacher_logits=var_logits,
                           mask_and_donors=var_mask_donor, other=var_other, materialized=materialized,
                           compact=compact, compact_over_materialized=compact / materialized),
        cf_columns_bytes_per_row={c: v / n for c, v in sorted(cf_cols.items())},
        loader_images_per_s_per_core=per_core, pyarrow_pil_images_per_s=statistics.median(ref),
        compact_cf_row_bytes=compact_total,
        compact_variant_bytes_measured=(compact_total - (cf_total - k * materialized)) / k,
        masked_fd_loader_images_per_s_per_core={f: statistics.median(v) for f, v in loader.items() if f != "clean"},
        clean_loader_images_per_s_per_core=statistics.median(loader["clean"]),
        loader_targets=dict(clean=2000, compact_masked_fd=1000),
        imagenet_1k=dict(images=IMAGENET_TRAIN,
                         clean_gib=IMAGENET_TRAIN * clean_total / gib,
                         materialized_k2_gib=IMAGENET_TRAIN * cf_total / gib,
                         compact_k2_gib=IMAGENET_TRAIN * compact_total / gib,
                         cores_to_feed={str(r): r / per_core for r in (1000, 2000, 4000, 8000)}),
    )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
    v, inet = res["variant_bytes"], res["imagenet_1k"]
    top = lambda c: res["cf_columns_bytes_per_row"].get(c, 0.0)  # noqa: E731
    print("| form | bytes / image | ImageNet-1k train |\n|---|---:|---:|")
    print(f"| source JPEG (q90, ~500x375) | {res['source_jpeg_bytes_per_image']:,.0f} | |")
    print(f"| clean row (224-px PNG, label, id) | {clean_total:,.0f} | {inet['clean_gib']:,.0f} GiB |")
    print(f"| counterfactual row, K = {k} (clean PNG, CAM {top('cam'):,.0f}, clean teacher feature "
          f"{top('teacher_feature'):,.0f} and logits {top('teacher_logits'):,.0f}, {k} variants) | {cf_total:,.0f} | "
          f"{inet['materialized_k2_gib']:,.0f} GiB |")
    print(f"| materialized variant (pixels {v['pixels']:,.0f}, teacher feature {v['teacher_feature']:,.0f}, mask and "
          f"donors {v['mask_and_donors']:,.0f}, other {v['other']:,.0f}) | {v['materialized']:,.0f} | |")
    print(f"| compact counterfactual row, K = {k} (`compact = true`, measured) | {compact_total:,.0f} | "
          f"{inet['compact_k2_gib']:,.0f} GiB |")
    print(f"| compact variant (the variant columns without pixels) | {v['compact']:,.0f} "
          f"({100 * v['compact_over_materialized']:.1f} % of a materialized one) | |")
    ml, cl = res["masked_fd_loader_images_per_s_per_core"], res["clean_loader_images_per_s_per_core"]
    met = lambda v, t: "met" if v >= t else "NOT met"  # noqa: E731
    print(f"\ntrainer's loader on one core (uint8 batches): clean rows {cl:,.0f} img/s (target 2,000: "
          f"{met(cl, 2000)}); offline masked FD (clean image + chosen variant per row): materialized "
          f"{ml['materialized']:,.0f} img/s, compact {ml['compact']:,.0f} img/s (target 1,000: "
          f"{met(ml['compact'], 1000)})")
    print(f"\nloader (read + PNG decode, 224 px): {per_core:,.0f} images/s per core; pyarrow + PIL "
          f"{res['pyarrow_pil_images_per_s']:,.0f} in the same run. Cores to feed: "
          + ", ".join(f"{r} img/s: {c:.1f}" for r, c in inet["cores_to_feed"].items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
