"""`just bench-train`: images/s of one full fine-tuning step, cfkit next to PyTorch eager; and the
shard loader's images/s next to the step's consumption.

One step = forward of the vision tower, a linear head on the L2-normalised image embedding,
cross-entropy on 10 classes, backward, gradient-norm clipping at 1.0, AdamW (weight decay 0.1)
with the paper's one-cycle schedule, zero_grad, and reading the loss (a sync). For each preset the
same shape is built in transformers (CLIPVisionModelWithProjection, SDPA attention, float32) with
torch.optim.AdamW + OneCycleLR and timed in this process; cfkit's bench binary
(trainer/examples/bench_train.rs, a scratch Student with cfkit's Optimizer) is timed as a
subprocess with the same batch, thread count, steps and warm-up. Rounds alternate between the two
so that machine noise hits both; the median of the rounds is reported, with the ratio
cfkit images/s / PyTorch images/s (> 1 means cfkit is faster), and each side's time in the
optimizer part of the step (clip + AdamW + zero_grad) to tell the model from the update.

Loader: if --loader-dir holds a shard dataset, every tiny round also runs the bench binary in
loader mode (cfkit's streaming BatchStream over the split, decode + preprocessing, tiny's batch)
and reports its images/s next to the tiny cfkit step's images/s (ratio loader / step; > 1 means
the loader keeps up with training). Results go to stdout and to results/bench/train.json.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from cfkit_tools import presets, records  # presets: the shapes of `cfkit presets --json`
from cfkit_tools.presets import PRESETS

DEFAULT_BATCH = {"tiny": 64, "vit-b-32": 8, "vit-b-16": 4}
DEFAULT_STEPS = {"tiny": 10, "vit-b-32": 3, "vit-b-16": 2}
DEFAULT_WARMUP = {"tiny": 2, "vit-b-32": 1, "vit-b-16": 1}
NUM_CLASSES = 10
# The paper recipe (trainer/src/optim/schedule/one_cycle.rs, optim/mod.rs) and the schedule's nominal length, as in
# bench_train.rs.
MAX_LR, PCT_START, WEIGHT_DECAY, GRAD_CLIP = 3e-5, 0.02, 0.1, 1.0
SCHEDULE_STEPS = 1000


def torch_run(preset, batch, steps, warmup):
    p = PRESETS[preset]
    torch.manual_seed(0)
    cfg = CLIPVisionConfig(intermediate_size=4 * p["hidden_size"], hidden_act="quick_gelu", layer_norm_eps=1e-5,
                           attn_implementation="sdpa", **p)
    model = CLIPVisionModelWithProjection(cfg).train()
    assert model.config._attn_implementation == "sdpa", model.config._attn_implementation
    head = torch.nn.Linear(p["projection_dim"], NUM_CLASSES)
    params = [q for q in list(model.parameters()) + list(head.parameters()) if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=MAX_LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=max(SCHEDULE_STEPS, warmup + steps),
                                                pct_start=PCT_START)
    x = torch.randn(batch, 3, p["image_size"], p["image_size"])
    y = torch.randint(0, NUM_CLASSES, (batch,))

    def step():
        feats = model(pixel_values=x).image_embeds
        logits = head(feats / feats.norm(dim=-1, keepdim=True))
        loss = F.cross_entropy(logits, y)
        loss.backward()
        t = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        opt.step()
        sched.step()
        opt.zero_grad()
        return time.perf_counter() - t, loss.item()

    for _ in range(warmup):
        step()
    opt_secs = 0.0
    t0 = time.perf_counter()
    for _ in range(steps):
        opt_secs += step()[0]
    return batch * steps / (time.perf_counter() - t0), opt_secs / steps


def rust_json(cmd):
    """The JSON line the bench example prints last (records.BenchLine)."""
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return records.parse_bench_line(out.stdout, cmd[0])


def rust_step(binary, preset, batch, steps, warmup, threads):
    res = rust_json([binary, "--preset", preset, "--batch", str(batch), "--steps", str(steps), "--warmup",
                     str(warmup), "--threads", str(threads)])
    return res.images_per_s, res.optimizer_seconds_per_step


def rust_loader(binary, directory, split, batch, threads):
    return rust_json([binary, "--loader", directory, "--split", split, "--batch", str(batch), "--threads",
                      str(threads)])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rust-bin", required=True)
    ap.add_argument("--cfkit", default="target/release/cfkit", help="the cfkit binary (preset shapes)")
    ap.add_argument("--presets", default="tiny,vit-b-32")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=0, help="override every preset's batch")
    ap.add_argument("--steps", type=int, default=0, help="override every preset's timed steps")
    ap.add_argument("--warmup", type=int, default=-1, help="override every preset's warm-up steps")
    ap.add_argument("--loader-dir", default="", help="shard dataset for the loader measurement (skipped if absent)")
    ap.add_argument("--loader-split", default="train")
    ap.add_argument("--out", default="results/bench/train.json")
    args = ap.parse_args()
    presets.load(args.cfkit)
    torch.set_num_threads(args.threads)
    has_loader = bool(args.loader_dir) and records.shards_built(args.loader_dir)
    if args.loader_dir and not has_loader:
        print(f"no shard dataset in {args.loader_dir}: skipping the loader measurement", flush=True)
    names = args.presets.split(",")
    results, loader = [], None
    for preset in names:
        batch = args.batch or DEFAULT_BATCH[preset]
        steps = args.steps or DEFAULT_STEPS[preset]
        warmup = args.warmup if args.warmup >= 0 else DEFAULT_WARMUP[preset]
        with_loader = has_loader and preset == "tiny"
        ours, ref, ours_opt, ref_opt, load, images = [], [], [], [], [], 0
        for r in range(args.rounds):
            ips, o = torch_run(preset, batch, steps, warmup)
            ref.append(ips)
            ref_opt.append(o)
            ips, o = rust_step(args.rust_bin, preset, batch, steps, warmup, args.threads)
            ours.append(ips)
            ours_opt.append(o)
            line = (f"  {preset} round {r + 1}: pytorch {ref[-1]:.1f} img/s (optimizer {ref_opt[-1]:.3f} s/step), "
                    f"cfkit {ours[-1]:.1f} img/s (optimizer {ours_opt[-1]:.3f} s/step)")
            if with_loader:
                res = rust_loader(args.rust_bin, args.loader_dir, args.loader_split, batch, args.threads)
                load.append(res.images_per_s)
                images = res.images
                line += f", loader {load[-1]:.0f} img/s"
            print(line, flush=True)
        o, t = statistics.median(ours), statistics.median(ref)
        results.append(dict(preset=preset, batch=batch, steps=steps, warmup=warmup, rounds=args.rounds,
                            threads=args.threads, cfkit_images_per_s=o, pytorch_images_per_s=t,
                            ratio_cfkit_over_pytorch=o / t,
                            cfkit_optimizer_s_per_step=statistics.median(ours_opt),
                            pytorch_optimizer_s_per_step=statistics.median(ref_opt)))
        if with_loader:
            lo = statistics.median(load)
            loader = dict(dir=args.loader_dir, split=args.loader_split, batch=batch, images=images, prefetch=4,
                          rounds=args.rounds, threads=args.threads, loader_images_per_s=lo,
                          tiny_step_images_per_s=o, ratio_loader_over_step=lo / o)
    print("\n| preset | batch | cfkit img/s | PyTorch img/s | cfkit ÷ PyTorch | optimizer s/step, cfkit / PyTorch |\n"
          "|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['preset']} | {r['batch']} | {r['cfkit_images_per_s']:.1f} | {r['pytorch_images_per_s']:.1f}"
              f" | {r['ratio_cfkit_over_pytorch']:.2f} | {r['cfkit_optimizer_s_per_step']:.3f}"
              f" / {r['pytorch_optimizer_s_per_step']:.3f} |")
    if loader:
        print("\n| loader img/s | tiny FT step img/s (cfkit) | loader ÷ step |\n|---|---|---|")
        print(f"| {loader['loader_images_per_s']:.0f} | {loader['tiny_step_images_per_s']:.1f}"
              f" | {loader['ratio_loader_over_step']:.1f} |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    meta = dict(machine=platform.machine(), cpus=os.cpu_count(), torch=torch.__version__, device="cpu",
                threads=args.threads, date=time.strftime("%Y-%m-%d"))
    with open(args.out, "w") as f:
        json.dump(dict(meta=meta, results=results, loader=loader), f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
