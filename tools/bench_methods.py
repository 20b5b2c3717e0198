#!/usr/bin/env python3
"""`just bench-methods`: epoch time of plain FT, offline masked feature distillation and online
masked feature distillation, side by side in one run, on the same data and model.

Data: FashionShift train at 10 % (`cfkit demo-data --scale 0.1`: 1,000 images, 56 px) and its
counterfactual shards built with the committed demo teacher (assets/teacher; ObjMaskSingleFill(0.3),
2 variants). Model: the teacher checkpoint (tiny preset) as the student. Each run is one epoch of
`cfkit train` (batch 128, no validation, no evaluation set) into a fresh directory; the epoch time
is the run's `train_seconds` (report.json). The three methods alternate for --rounds rounds and the
median per method is reported, so machine noise hits all of them.

What the ratios mean (DESIGN §3): offline FD runs the student on the clean and the counterfactual
batch (two student passes per step, so its floor is about 2x FT); online FD adds the student's
MMCAM (a forward with attention maps and a backward to them) and a frozen teacher forward on the
masked batch at every step. Results go to stdout and results/bench/methods.json. Nothing is
asserted.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRATEGY = "ObjMaskSingleFill(0.3)"

BUILD = """\
# Written by tools/bench_methods.py.
[source]
shards = "{data}"
split = "train"

[teacher]
model = "tiny"
weights = "{teacher}/model.safetensors"
head = "{teacher}/head.safetensors"

[counterfactuals]
strategies = ["{strategy}"]
variants = 2
seed = 0
batch_size = 64
device = "{device}"
"""

TRAIN = """\
# Written by tools/bench_methods.py.
[model]
checkpoint = "{teacher}"

[data]
shards = "{cf}"
split = "train"
shuffle_buffer = 1000

[train]
method = "ft"
epochs = 1
batch_size = 128
seed = 0
device = "{device}"
log_every = 1000
checkpoint_every = 100000

[schedule]
kind = "one-cycle"
max_lr = 1e-3
pct_start = 0.02
"""

METHODS = {
    "ft": [],
    "fd-offline": ['train.method="ft-fd"',
                   f'distill={{ images = "masked", strategy = "{STRATEGY}", weight = 1.0 }}'],
    "fd-online": ['train.method="ft-fd"',
                  f'distill={{ images = "masked", mode = "online", strategy = "{STRATEGY}", '
                  'weight = 1.0 }'],
}


def run(cmd):
    subprocess.run(cmd, check=True, cwd=ROOT)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfkit", default=os.path.join(ROOT, "target/release/cfkit"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target/bench-methods"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=os.path.join(ROOT, "results/bench/methods.json"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    data, cf = os.path.join(a.work, "data"), os.path.join(a.work, "cf")
    teacher = os.path.join(ROOT, "assets/teacher")
    if not os.path.exists(os.path.join(data, "manifest.json")):
        run([a.cfkit, "demo-data", "--out", data, "--splits", "train", "--scale", "0.1", "-q"])
    if not os.path.exists(os.path.join(cf, "manifest.json")):
        build = os.path.join(a.work, "build.toml")
        with open(build, "w") as f:
            f.write(BUILD.format(data=data, teacher=teacher, strategy=STRATEGY, device=a.device))
        run([a.cfkit, "build-counterfactuals", "--config", build, "--out", cf, "-q"])
    config = os.path.join(a.work, "train.toml")
    with open(config, "w") as f:
        f.write(TRAIN.format(teacher=teacher, cf=cf, device=a.device))

    seconds = {m: [] for m in METHODS}
    rows = None
    for r in range(a.rounds):
        for method, sets in METHODS.items():
            out = os.path.join(a.work, f"runs/{method}")
            shutil.rmtree(out, ignore_errors=True)
            cmd = [a.cfkit, "train", "--config", config, "--out", out, "-q", "--json"]
            for s in sets:
                cmd += ["--set", s]
            report = json.loads(subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True,
                                               text=True).stdout)
            seconds[method].append(report["train_seconds"])
            rows = report["train_rows"]
            print(f"round {r + 1}/{a.rounds} {method}: {report['train_seconds']:.1f} s", flush=True)

    med = {m: statistics.median(v) for m, v in seconds.items()}
    result = {
        "data": {"images": rows, "strategy": STRATEGY, "image_size": 56},
        "model": "tiny (assets/teacher)",
        "device": a.device,
        "rounds": a.rounds,
        "seconds": seconds,
        "median_epoch_seconds": med,
        "ratio_vs_ft": {m: med[m] / med["ft"] for m in med},
        "online_over_offline": med["fd-online"] / med["fd-offline"],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"\nOne epoch of {rows} images, batch 128, median of {a.rounds} rounds:\n")
    print("| method | epoch s | img/s | time ÷ FT |")
    print("|---|---:|---:|---:|")
    for m in METHODS:
        print(f"| {m} | {med[m]:.1f} | {rows / med[m]:.1f} | {med[m] / med['ft']:.2f} |")
    print(f"\nonline ÷ offline: {result['online_over_offline']:.2f}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
