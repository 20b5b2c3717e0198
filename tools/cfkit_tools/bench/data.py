"""`just bench-data`: read + decode throughput of cfkit image shards, cfkit next to pyarrow + PIL.

Both sides read the same Parquet files of one split and decode every stored PNG to RGB pixels.
The PyTorch-ecosystem reference is pyarrow.parquet (reading the image column) + PIL decoding in one
process (one core); cfkit's bench binary runs with 1 thread (per-core comparison) and with all
cores. Rounds alternate; medians are reported. Both sides sum the decoded pixels, and the sums
must agree (so both really decode everything). Results go to results/bench/data.json.
"""
import argparse
import io
import json
import os
import statistics
import subprocess
import time

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from cfkit_tools import records


def pyarrow_pil(files):
    t0 = time.perf_counter()
    n, total = 0, 0
    for f in files:
        pf = pq.ParquetFile(f)
        for g in range(pf.num_row_groups):
            col = pf.read_row_group(g, columns=["image"]).column("image")
            for item in col.to_pylist():
                a = np.asarray(Image.open(io.BytesIO(item["bytes"])).convert("RGB"))
                total += int(a.sum(dtype=np.uint64))
                n += 1
    return n, time.perf_counter() - t0, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rust-bin", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="results/bench/data.json")
    args = ap.parse_args()
    files = [os.path.join(args.dir, f)
             for f in records.read_manifest(args.dir).shard_files(args.split)]
    cores = os.cpu_count()
    ref, one, alln = [], [], []
    for r in range(args.rounds):
        n, secs, total = pyarrow_pil(files)
        ref.append(n / secs)
        for threads, store in [(1, one), (cores, alln)]:
            out = subprocess.run([args.rust_bin, args.dir, args.split, str(threads)], check=True,
                                 capture_output=True, text=True)
            res = records.parse_bench_line(out.stdout, args.rust_bin)
            if res.images != n or res.pixel_sum != total % 2**64:
                raise SystemExit(f"cfkit and pyarrow+PIL disagree: {res.raw} vs {n} images, sum {total}")
            store.append(res.images_per_s)
        print(f"  round {r + 1}: pyarrow+PIL {ref[-1]:.0f} img/s, cfkit 1 thread {one[-1]:.0f}, "
              f"cfkit {cores} threads {alln[-1]:.0f}", flush=True)
    res = dict(split=args.split, images=n, cores=cores, rounds=args.rounds,
               pyarrow_pil_images_per_s=statistics.median(ref),
               cfkit_1_thread_images_per_s=statistics.median(one),
               cfkit_all_threads_images_per_s=statistics.median(alln))
    res["per_core_ratio_cfkit_over_reference"] = res["cfkit_1_thread_images_per_s"] / res["pyarrow_pil_images_per_s"]
    print(json.dumps(res, indent=2))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
