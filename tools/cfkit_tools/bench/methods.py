"""`just bench-methods`: epoch time of plain FT and of masked feature distillation, offline and
online, for a fill strategy (ObjMaskSingleFill(0.3)) and two no-fill ones (ObjMaskNoFill(0.3),
RandMaskNoFill(0.75)), side by side in one run, on the same data and model.

Data: FashionShift train at 10 % (`cfkit demo-data --scale 0.1`: 1,000 images, 56 px) and its
counterfactual shards built with the committed demo teacher (assets/teacher; the three strategies,
2 variants each). Model: the teacher checkpoint (tiny preset) as the student. Each run is one epoch
of `cfkit train` (batch 128, drop_last, no validation, no evaluation set) into a fresh directory;
the epoch time is the run's `train_seconds` (report.json). The methods alternate for --rounds
rounds and the median per method is reported, so machine noise hits all of them.

What the ratios mean (DESIGN §3): offline FD with a fill strategy runs the student on the clean and
the counterfactual batch (floor about 2x FT); with no fill the counterfactual pass drops the masked
tokens (floor about 1 + the kept fraction). Online FD draws the masks from the student's own CAM,
taken from the same clean pass whose features carry the loss (its graph kept), and adds a frozen
teacher forward on the masked batch. Targets (issue 19): offline no-fill <= (1 + kept fraction) x
1.1; online fill <= 2.7. Results go to stdout and results/bench/methods.json; nothing is asserted.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess

from cfkit_tools import ROOT, records

STRATEGIES = {"sf": "ObjMaskSingleFill(0.3)", "objnf": "ObjMaskNoFill(0.3)",
              "randnf": "RandMaskNoFill(0.75)"}

BUILD = """\
# Written by cfkit_tools.bench.methods.
[source]
shards = "{data}"
split = "train"

[teacher]
model = "tiny"
weights = "{teacher}/model.safetensors"
head = "{teacher}/head.safetensors"

[counterfactuals]
strategies = [{strategies}]
variants = 2
seed = 0
batch_size = 64
device = "{device}"
"""

TRAIN = """\
# Written by cfkit_tools.bench.methods.
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

METHODS = {"ft": []}
for _key, _s in STRATEGIES.items():
    for _mode in ("offline", "online"):
        METHODS[f"fd-{_mode}" + ("" if _key == "sf" else f"-{_key}")] = [
            'train.method="ft-fd"',
            f'distill={{ images = "masked", mode = "{_mode}", strategy = "{_s}", weight = 1.0 }}']


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
    # "cf3": the three strategies (a "cf" of an older run holds one).
    data, cf = os.path.join(a.work, "data"), os.path.join(a.work, "cf3")
    teacher = os.path.join(ROOT, "assets/teacher")
    if not records.shards_built(data):
        run([a.cfkit, "demo-data", "--out", data, "--splits", "train", "--scale", "0.1", "-q"])
    if not records.shards_built(cf):
        build = os.path.join(a.work, "build.toml")
        with open(build, "w") as f:
            f.write(BUILD.format(data=data, teacher=teacher, device=a.device,
                                 strategies=", ".join(f'"{s}"' for s in STRATEGIES.values())))
        run([a.cfkit, "build-counterfactuals", "--config", build, "--out", cf, "-q"])
    config = os.path.join(a.work, "train.toml")
    with open(config, "w") as f:
        f.write(TRAIN.format(teacher=teacher, cf=cf, device=a.device))

    seconds = {m: [] for m in METHODS}
    profiles = {m: [] for m in METHODS}
    rows = None
    for r in range(a.rounds):
        for method, sets in METHODS.items():
            out = os.path.join(a.work, f"runs/{method}")
            shutil.rmtree(out, ignore_errors=True)
            cmd = [a.cfkit, "train", "--config", config, "--out", out, "-q", "--json", "--profile"]
            for s in sets:
                cmd += ["--set", s]
            report = records.parse_train_report(subprocess.run(cmd, check=True, cwd=ROOT,
                                                               capture_output=True, text=True).stdout)
            seconds[method].append(report.train_seconds)
            profiles[method].append(records.read_profile(out).as_dict())
            rows = report.train_rows
            print(f"round {r + 1}/{a.rounds} {method}: {report.train_seconds:.1f} s", flush=True)

    med = {m: statistics.median(v) for m, v in seconds.items()}
    build = records.read_build_run(cf).report
    kept = {k: 1.0 - build.mask_ratio_mean(s) for k, s in STRATEGIES.items()}
    targets = {"fd-offline-objnf": (1 + kept["objnf"]) * 1.1,
               "fd-offline-randnf": (1 + kept["randnf"]) * 1.1, "fd-online": 2.7}
    result = {
        "data": {"images": rows, "strategies": list(STRATEGIES.values()), "image_size": 56},
        "model": "tiny (assets/teacher)",
        "device": a.device,
        "rounds": a.rounds,
        "seconds": seconds,
        "median_epoch_seconds": med,
        "ratio_vs_ft": {m: med[m] / med["ft"] for m in med},
        "kept_fraction": kept,
        "targets_vs_ft": targets,
        "online_over_offline": med["fd-online"] / med["fd-offline"],
        # `cfkit train --profile` of each method's median-time round (seconds per phase).
        "profile": {m: sorted(zip(seconds[m], profiles[m]), key=lambda t: t[0])[len(seconds[m]) // 2][1]
                    for m in METHODS},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"\nOne epoch of {rows} images, batch 128, median of {a.rounds} rounds:\n")
    print("| method | epoch s | img/s | time ÷ FT | target |")
    print("|---|---:|---:|---:|---:|")
    for m in METHODS:
        t = f"<= {targets[m]:.2f}" if m in targets else ""
        print(f"| {m} | {med[m]:.1f} | {rows / med[m]:.1f} | {med[m] / med['ft']:.2f} | {t} |")
    print(f"\nkept fraction: ObjMaskNoFill(0.3) {kept['objnf']:.3f}, "
          f"RandMaskNoFill(0.75) {kept['randnf']:.3f}")
    print(f"online ÷ offline: {result['online_over_offline']:.2f}")
    phases = ["loader_wait_s", "student_forward_loss_s", "cam_s", "teacher_s", "backward_s",
              "optimizer_s"]
    print("\nTime split of the median round (s; `cfkit train --profile`):\n")
    print("| method | loader wait | student fwd + loss | CAM | teacher | backward | optimizer |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m in METHODS:
        p = result["profile"][m]
        print(f"| {m} | " + " | ".join(f"{p[k]:.2f}" for k in phases) + " |")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
