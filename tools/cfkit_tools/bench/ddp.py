"""`just bench-ddp`: data-parallel training throughput, 2 ranks x 1 thread against 1 rank x 1
thread, side by side in one run, and the all-reduce share of a step (issue 17).

What it runs:
- Data: FashionShift train (`cfkit demo-data`), 56 px for the `tiny` preset; for `vit-b-32` the
  same images as a PNG ImageFolder, preprocessed to 224 px by `cfkit prepare`.
- Each model trains from its random initialisation (FT, one-cycle) with the same global batch
  (`--rank-batch` rows per rank x 2) for a fixed number of steps, no validation, no evaluation:
  once as one process (`OMP_NUM_THREADS=1`), once as 2 ranks of one job (`RANK`, `WORLD_SIZE`,
  `MASTER_ADDR`, `MASTER_PORT`, as torchrun sets them; one thread each) over Gloo on this machine.
  The two alternate for --rounds rounds; medians are reported.
- Throughput = global images / step time, where step time is the sum of `cfkit train --profile`'s
  phases on rank 0 (loader wait, forward and loss, backward, all-reduce, optimizer): checkpoint
  saves, start-up and evaluation are left out. The all-reduce phase is the bucketed gradient
  mean plus the step's statistics, waiting for the slower rank included.
Writes results/bench/ddp.json and prints a markdown table. Nothing is asserted.
"""
import argparse
import json
import os
import platform
import shutil
import socket
import subprocess

from cfkit_tools import ROOT, records

TRAIN = """\
# Written by cfkit_tools.bench.ddp.
[model]
name = "{model}"

[data]
shards = "{data}"
split = "train"
val_holdout = 0
shuffle_buffer = 1000

[train]
method = "ft"
epochs = {epochs}
batch_size = {batch}
seed = 0
device = "cpu"
log_every = 1000
checkpoint_every = 100000

[schedule]
kind = "one-cycle"
max_lr = 1e-4
pct_start = 0.1

[eval]
sets = []
"""

PHASES = ["loader_wait_s", "forward_loss_s", "backward_s", "allreduce_s", "optimizer_s"]


def run(cmd, **kw):
    subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(cfkit, config, out, world):
    """One run of `world` ranks (1: a plain process); rank 0's profile."""
    shutil.rmtree(out, ignore_errors=True)
    base = dict(os.environ, OMP_NUM_THREADS="1", RAYON_NUM_THREADS="1")
    cmd = [cfkit, "train", "--config", config, "--out", out, "-q", "--profile"]
    if world == 1:
        for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            base.pop(k, None)
        run(cmd, env=base, capture_output=True)
    else:
        port = str(free_port())
        procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, env=dict(
            base, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(world),
            MASTER_ADDR="127.0.0.1", MASTER_PORT=port)) for r in range(world)]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(f"a rank failed: exit codes {codes}")
    return records.read_profile(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfkit", default=os.path.join(ROOT, "target/release/cfkit"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target/bench-ddp"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="tiny,vit-b-32")
    ap.add_argument("--out", default=os.path.join(ROOT, "results/bench/ddp.json"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    # Per model: rows per rank per step, steps per epoch (of the data below), epochs.
    setups = {"tiny": dict(rank_batch=64, steps=4, epochs=3, size=56),
              "vit-b-32": dict(rank_batch=16, steps=4, epochs=1, size=224)}
    results = {}
    for model in a.models.split(","):
        s = setups[model]
        batch = 2 * s["rank_batch"]
        rows = batch * s["steps"]
        data = os.path.join(a.work, f"data-{model}")
        if not records.shards_built(data):
            raw = os.path.join(a.work, f"raw-{model}")
            shutil.rmtree(raw, ignore_errors=True)
            folder = os.path.join(a.work, f"folder-{model}")
            run([a.cfkit, "demo-data", "--out", raw, "--splits", "train", "--scale",
                 str(rows / 10000), "--image-folder", folder, "-q"])
            if s["size"] == 56:
                shutil.move(raw, data)
            else:
                run([a.cfkit, "prepare", "--image-folder", os.path.join(folder, "train"),
                     "--out", data, "--image-size", str(s["size"]), "-q"])
        config = os.path.join(a.work, f"train-{model}.toml")
        with open(config, "w") as f:
            f.write(TRAIN.format(model=model, data=data, epochs=s["epochs"], batch=batch))
        profiles = {1: [], 2: []}
        for r in range(a.rounds):
            for world in (1, 2):
                prof = train(a.cfkit, config, os.path.join(a.work, f"runs/{model}-{world}"), world)
                p = prof.as_dict()
                p["step_s"] = sum(prof[k] for k in PHASES)
                p["global_images"] = prof["images"] * world
                p["images_per_s"] = p["global_images"] / p["step_s"]
                profiles[world].append(p)
                print(f"round {r + 1}/{a.rounds} {model} {world} rank(s): "
                      f"{p['images_per_s']:.1f} img/s, all-reduce {p['allreduce_s']:.2f} s "
                      f"of {p['step_s']:.2f} s", flush=True)

        def median_run(world):
            # The run at the median (the lower middle one for an even number of rounds).
            runs = sorted(profiles[world], key=lambda p: p["images_per_s"])
            return runs[(len(runs) - 1) // 2]

        one, two = median_run(1), median_run(2)
        results[model] = {
            "image_size": s["size"],
            "global_batch": batch,
            "rank_batch": s["rank_batch"],
            "steps": two["optimizer_steps"],
            "images_per_s": {"1x1": one["images_per_s"], "2x1": two["images_per_s"]},
            "speedup": two["images_per_s"] / one["images_per_s"],
            "allreduce_share_2x1": two["allreduce_s"] / two["step_s"],
            "allreduce_s_per_step_2x1": two["allreduce_s"] / two["optimizer_steps"],
            "profile_median": {"1x1": one, "2x1": two},
            "all_runs": {str(w): [p["images_per_s"] for p in v] for w, v in profiles.items()},
        }
    out = {
        "what": "FT steps/s of 2 ranks x 1 thread (Gloo, one machine) against 1 rank x 1 thread "
                "at the same global batch; rank 0's --profile phases, medians of rounds",
        "rounds": a.rounds,
        "models": results,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(f"\nMedian of {a.rounds} rounds, FT, one thread per rank:\n")
    print("| model | px | global batch | 1 rank img/s | 2 ranks img/s | speed-up | "
          "all-reduce share (2 ranks) | all-reduce s/step |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for m, r in results.items():
        print(f"| {m} | {r['image_size']} | {r['global_batch']} | {r['images_per_s']['1x1']:.1f} "
              f"| {r['images_per_s']['2x1']:.1f} | {r['speedup']:.2f} "
              f"| {100 * r['allreduce_share_2x1']:.1f} % | {r['allreduce_s_per_step_2x1']:.3f} |")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
