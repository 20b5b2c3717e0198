"""`just bench-decode`: decode + preprocess images/s per core at 224 px, cfkit next to the reference.

Both sides take the same source files, already in memory, and turn each into the 224 x 224 RGB
image the model sees (before ToTensor/Normalize), on one core:
- the reference: torchvision's ImageFolder loader (`Image.open(f).convert("RGB")`, Pillow with
  libjpeg-turbo) then CLIP's `Resize(224, BICUBIC)` and `CenterCrop(224)`;
- cfkit: `clip_preprocess_encoded` (pipeline/examples/bench_decode.rs, mode `preprocess`), and
  `cfkit prepare`'s whole per-file work including the stored PNG (mode `prepare`, cfkit only).
The two must give the same pixels: the sums of every output byte are compared and the run fails
if they differ.

Sets: ImageNet-like JPEGs (4:2:0, quality 90, 400-600 px wide, cut from the real photographs of
scikit-image and matplotlib, as `just bench-storage` makes them) and the mixed-format real-file
corpus of tests/fixtures/realfiles (JPEG grey/4:2:0/4:2:2/4:4:4/progressive/CMYK, PNG
RGB/RGBA/LA/palette/1-bit/16-bit, GIF, BMP, WebP; 128-192 px). Rounds alternate between the two
sides; medians are reported. Writes results/bench/decode.json and prints a markdown table.
"""
import argparse
import io
import json
import os
import pathlib
import statistics
import subprocess
import time

import numpy as np
from PIL import Image
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Resize

from cfkit_tools.bench.storage import make_folder

ROOT = pathlib.Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "fixtures" / "realfiles"


def readable(path):
    """Whether Pillow opens and decodes the file (the corpus holds damaged copies too)."""
    try:
        with Image.open(path) as im:
            im.convert("RGB")
        return True
    except Exception:  # noqa: BLE001 -- any failure means the loader would refuse it
        return False


def reference(blobs, size, repeat):
    """(images/s, sum of every output byte) of the reference's loading on one core."""
    clip = Compose([Resize(size, interpolation=InterpolationMode.BICUBIC), CenterCrop(size)])
    total, n = 0, 0
    t0 = time.perf_counter()
    for _ in range(repeat):
        for b in blobs:
            a = np.asarray(clip(Image.open(io.BytesIO(b)).convert("RGB")))
            total += int(a.sum(dtype=np.uint64))
            n += 1
    return n / (time.perf_counter() - t0), total


def cfkit(binary, listing, size, repeat, mode):
    out = subprocess.run([binary, str(listing), str(size), str(repeat), mode], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the bench_decode example")
    ap.add_argument("--work", default="target/bench-decode")
    ap.add_argument("--images", type=int, default=128, help="ImageNet-like JPEGs to make")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeat", type=int, default=5, help="passes over a set per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="results/bench/decode.json")
    args = ap.parse_args()
    work = pathlib.Path(args.work)
    photos = work / "imagenet-like"
    if not photos.is_dir() or len(list(photos.rglob("*.jpg"))) != args.images:
        if photos.is_dir():
            for f in photos.rglob("*.jpg"):
                f.unlink()
        make_folder(photos, args.images, 10, seed=0)
    sets = {
        "imagenet-like JPEG (4:2:0 q90)": sorted(photos.rglob("*.jpg")),
        "real-file corpus (mixed formats)": sorted(
            p for p in CORPUS.iterdir()
            if p.is_file() and ".expected." not in p.name and p.suffix != ".json" and readable(p)),
    }
    results = []
    for name, files in sets.items():
        listing = work / (name.split()[0] + ".txt")
        listing.write_text("".join(f"{p.resolve()}\n" for p in files))
        blobs = [p.read_bytes() for p in files]
        ref, ours, prep = [], [], []
        for r in range(args.rounds):
            rate, total = reference(blobs, args.size, args.repeat)
            ref.append(rate)
            res = cfkit(args.bin, listing, args.size, args.repeat, "preprocess")
            if res["checksum"] != total % 2**64:
                raise SystemExit(f"{name}: cfkit's pixels differ from the reference's "
                                 f"(sum {res['checksum']} vs {total})")
            ours.append(res["images_per_s_per_core"])
            prep.append(cfkit(args.bin, listing, args.size, args.repeat, "prepare")["images_per_s_per_core"])
            print(f"  {name} round {r + 1}: Pillow+torchvision {ref[-1]:.0f} img/s, cfkit {ours[-1]:.0f}, "
                  f"cfkit prepare {prep[-1]:.0f}", flush=True)
        row = dict(set=name, files=len(files), size=args.size,
                   reference_images_per_s_per_core=statistics.median(ref),
                   cfkit_images_per_s_per_core=statistics.median(ours),
                   cfkit_prepare_images_per_s_per_core=statistics.median(prep),
                   pixel_sums_equal=True)
        row["ratio_cfkit_over_reference"] = row["cfkit_images_per_s_per_core"] / row["reference_images_per_s_per_core"]
        results.append(row)
    res = dict(rounds=args.rounds, repeat=args.repeat, sets=results)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
    print("| set | files | Pillow + torchvision img/s | cfkit img/s | ratio | cfkit prepare (+ PNG) img/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['set']} | {r['files']} | {r['reference_images_per_s_per_core']:.0f} | "
              f"{r['cfkit_images_per_s_per_core']:.0f} | {r['ratio_cfkit_over_reference']:.2f} | "
              f"{r['cfkit_prepare_images_per_s_per_core']:.0f} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
