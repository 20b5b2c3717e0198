"""`just bench-models`: forward+backward images/s of cfkit's vision presets next to PyTorch eager.

For each preset the same shape is built in transformers (CLIPVisionModelWithProjection, default
SDPA attention, float32) and timed in this process; cfkit's bench binary is timed as a subprocess
with the same batch, thread count and iteration count. Rounds alternate between the two so that
machine noise hits both; the median of the rounds is reported, with the ratio
cfkit time / PyTorch time (< 1 means cfkit is faster). Results go to stdout and to
results/bench/models.json.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import time

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from cfkit_tools import presets, records  # presets: the shapes of `cfkit presets --json`
from cfkit_tools.presets import PRESETS

DEFAULT_BATCH = {"tiny": 128, "vit-b-32": 16, "vit-b-16": 8}
DEFAULT_ITERS = {"tiny": 10, "vit-b-32": 4, "vit-b-16": 3}


def torch_run(preset, batch, iters, warmup, device):
    p = PRESETS[preset]
    cfg = CLIPVisionConfig(intermediate_size=4 * p["hidden_size"], hidden_act="quick_gelu", **p)
    model = CLIPVisionModelWithProjection(cfg).to(device).train()
    x = torch.randn(batch, 3, p["image_size"], p["image_size"], device=device)

    def step():
        feats = model(pixel_values=x).image_embeds
        feats.square().mean().backward()
        model.zero_grad(set_to_none=False)

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - t0)


def rust_run(binary, preset, batch, iters, warmup, threads, device):
    out = subprocess.run(
        [binary, "--preset", preset, "--batch", str(batch), "--iters", str(iters), "--warmup", str(warmup),
         "--threads", str(threads), "--device", device],
        check=True, capture_output=True, text=True)
    return records.parse_bench_line(out.stdout, binary).images_per_s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rust-bin", required=True)
    ap.add_argument("--cfkit", default="target/release/cfkit", help="the cfkit binary (preset shapes)")
    ap.add_argument("--presets", default="tiny,vit-b-32")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=0, help="override every preset's batch")
    ap.add_argument("--iters", type=int, default=0, help="override every preset's iterations")
    ap.add_argument("--out", default="results/bench/models.json")
    args = ap.parse_args()
    presets.load(args.cfkit)
    torch.set_num_threads(args.threads)
    results = []
    for preset in args.presets.split(","):
        batch = args.batch or DEFAULT_BATCH[preset]
        iters = args.iters or DEFAULT_ITERS[preset]
        ours, ref = [], []
        for r in range(args.rounds):
            ref.append(torch_run(preset, batch, iters, 1, args.device))
            ours.append(rust_run(args.rust_bin, preset, batch, iters, 1, args.threads, args.device))
            print(f"  {preset} round {r + 1}: pytorch {ref[-1]:.1f} img/s, cfkit {ours[-1]:.1f} img/s", flush=True)
        o, t = statistics.median(ours), statistics.median(ref)
        results.append(dict(preset=preset, batch=batch, iters=iters, rounds=args.rounds, device=args.device,
                            threads=args.threads, cfkit_images_per_s=o, pytorch_images_per_s=t,
                            time_ratio_cfkit_over_pytorch=t / o))
    print(f"\n{'preset':<10} {'batch':>5} {'cfkit img/s':>12} {'pytorch img/s':>14} {'time ratio':>10}")
    for r in results:
        print(f"{r['preset']:<10} {r['batch']:>5} {r['cfkit_images_per_s']:>12.1f} {r['pytorch_images_per_s']:>14.1f}"
              f" {r['time_ratio_cfkit_over_pytorch']:>10.3f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    meta = dict(machine=platform.machine(), cpus=os.cpu_count(), torch=torch.__version__,
                device=args.device, date=time.strftime("%Y-%m-%d"))
    with open(args.out, "w") as f:
        json.dump(dict(meta=meta, results=results), f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
