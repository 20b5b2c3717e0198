"""`just bench-sources`: `cfkit prepare`'s peak memory and speed from each input form, at two sizes.

The same N real-photograph JPEGs (crops of scikit-image's and matplotlib's photographs, 250-400 px
wide, quality 90, round-robin over C classes) written as an ImageFolder tree, as Hugging Face
datasets Parquet (`datasets`' Image + ClassLabel features, `to_parquet`, several files) and as
WebDataset tars (`webdataset.ShardWriter`, `.jpg` + `.cls`); `cfkit prepare` of each at N and at
4N rows (default 1,000 and 4,000), with its peak resident memory (the child's ru_maxrss from
wait4) and wall time; measured from a small intermediate interpreter, see MEASURE). Memory that does not grow with the rows (beyond the listing's ids) is the
claim checked: the run fails when a form's peak at 4N exceeds its peak at N by more than
--max-growth (default 1.5x).
Writes results/bench/sources.json and .md.
"""
import argparse
import io
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time

from cfkit_tools.bench.storage import photos, random_crop


def make_images(n, classes, seed):
    rng = random.Random(seed)
    base = photos()
    out = []
    for i in range(n):
        crop = random_crop(base[i % len(base)], rng, (250, 400))
        buf = io.BytesIO()
        crop.save(buf, format="JPEG", quality=90)
        out.append((i % classes, f"{i:06d}.jpg", buf.getvalue()))
    return out


def write_forms(root, items, classes):
    names = [f"class{c:03d}" for c in range(classes)]
    folder = root / "folder"
    for c, name, b in items:
        d = folder / names[c]
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(b)
    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as HfImage
    features = Features({"image": HfImage(), "label": ClassLabel(names=names)})
    ds = Dataset.from_dict(
        {"image": [{"bytes": b, "path": n} for _, n, b in items], "label": [c for c, _, _ in items]},
        features=features,
    )
    hf = root / "hf"
    hf.mkdir()
    shards = max(1, len(items) // 500)
    for i in range(shards):
        ds.shard(num_shards=shards, index=i, contiguous=True).to_parquet(
            str(hf / f"train-{i:05d}-of-{shards:05d}.parquet"))
    import webdataset as wds
    tars = root / "wds"
    tars.mkdir()
    with wds.ShardWriter(str(tars / "%04d.tar"), maxcount=500, verbose=0) as sink:
        for i, (c, _, b) in enumerate(items):
            sink.write({"__key__": f"{i:08d}", "jpg": b, "cls": c})
    return {"image-folder": ["--image-folder", str(folder)],
            "hf-parquet": ["--hf-parquet", str(hf)],
            "webdataset": ["--webdataset", str(tars)]}


# Runs the command from a fresh, small interpreter and prints its children's peak RSS. Linux keeps
# a process's memory high-water mark across exec, so a child forked straight from this (large)
# process would report this process's RSS as its own; the grandchild of a small one does not.
MEASURE = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
    "sys.stderr.write(r.stderr)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(r.returncode)\n"
)


def run(cmd):
    """Peak RSS (MiB) and wall seconds of `cmd`."""
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stderr}")
    return int(p.stdout.strip().splitlines()[-1]) / 1024.0, wall  # KiB -> MiB


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cfkit", required=True)
    ap.add_argument("--rows", type=int, default=1000, help="N (the second size is 4N)")
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--max-growth", type=float, default=1.5)
    ap.add_argument("--work", default="/tmp/cfkit-bench-sources")
    ap.add_argument("--out", default="results/bench")
    args = ap.parse_args()
    work = pathlib.Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    results = []
    for n in (args.rows, 4 * args.rows):
        root = work / f"n{n}"
        root.mkdir(parents=True)
        forms = write_forms(root, make_images(n, args.classes, seed=n), args.classes)
        for form, source in forms.items():
            out = root / f"out-{form}"
            rss, wall = run([args.cfkit, "prepare", *source, "--out", str(out), "-q",
                             "--image-size", str(args.image_size), "--rows-per-shard", "1000"])
            results.append({"form": form, "rows": n, "peak_rss_mib": round(rss, 1),
                            "seconds": round(wall, 2), "images_per_s": round(n / wall, 1)})
            print(f"{form:<13} {n:>6} rows  peak {rss:7.1f} MiB  {wall:6.2f} s", flush=True)
        shutil.rmtree(root)
    lines = [f"`cfkit prepare` at {args.image_size} px from each input form (real-photograph JPEGs, "
             f"{args.classes} classes; peak RSS of the process, wall time on this machine).", "",
             "| form | rows | peak RSS (MiB) | s | images/s | peak at 4N / peak at N |",
             "|---|---:|---:|---:|---:|---:|"]
    failed = []
    for r in results:
        small = next(x for x in results if x["form"] == r["form"] and x["rows"] == args.rows)
        growth = r["peak_rss_mib"] / small["peak_rss_mib"]
        r["growth"] = round(growth, 3)
        if growth > args.max_growth:
            failed.append(f"{r['form']}: {growth:.2f}x")
        lines.append(f"| {r['form']} | {r['rows']} | {r['peak_rss_mib']} | {r['seconds']} | "
                     f"{r['images_per_s']} | {growth:.2f} |")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "sources.json"), "w") as f:
        json.dump({"image_size": args.image_size, "classes": args.classes, "runs": results}, f, indent=2)
    with open(os.path.join(args.out, "sources.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if failed:
        raise SystemExit("peak memory grows with the rows: " + ", ".join(failed))


if __name__ == "__main__":
    main()
