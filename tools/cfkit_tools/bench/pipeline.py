"""`just bench-pipeline`: images/s and device-busy fraction of `cfkit build-counterfactuals`, with
the decode / device / encode stages overlapped (`--pipeline on`) and not (`--pipeline off`).

Presets:
  tiny      the committed demo teacher (assets/teacher) on FashionShift train at 56 px
            (`cfkit demo-data --scale 0.1`: 1,000 images), batch 64.
  vit-b-32  a randomly initialised, seeded ViT-B/32 teacher (transformers
            CLIPVisionModelWithProjection, quick_gelu) with a random unit-norm × 100 head over the
            dataset's classes, on FashionShift train re-prepared at 224 px (`cfkit demo-data
            --scale 0.005 --image-folder` + `cfkit prepare --image-size 224`: 50 images), batch 16.
Both use MMCAM, ObjMaskSingleFill(0.3), 2 variants per image, seed 0, and the config's device
(`auto` unless --device says otherwise: CUDA when cfkit finds one, else CPU).

Every run writes into a fresh output directory; the numbers are the `report` of its run.json:
rows (images), seconds (wall), images_per_s, device_busy_fraction (the fraction of the wall time
the device stage — teacher passes, CAM, masks, refill — was running) and device. With --rounds N
the modes alternate N times and the run of median wall time is reported. Preparation steps
whose outputs exist are skipped. Nothing is asserted: the ratio on ÷ off is reported. Results go
to stdout and to results/bench/pipeline.json.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import time

import torch

from cfkit_tools import presets, records  # presets: the shapes of `cfkit presets --json`
from cfkit_tools.presets import PRESETS

DEFAULT_BATCH = {"tiny": 64, "vit-b-32": 16}
CONFIG = """\
# Written by cfkit_tools.bench.pipeline.
[source]
shards = "{shards}"
split = "train"

[teacher]
model = "{preset}"
weights = "{weights}"
head = "{head}"

[counterfactuals]
cam = "mmcam"
strategies = ["ObjMaskSingleFill(0.3)"]
variants = {variants}
seed = 0
batch_size = {batch}
device = "{device}"
"""


def sh(cmd):
    print("  $ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def make_tiny_data(cfkit, work, scale):
    ds = os.path.join(work, f"fs-s{scale:g}")
    if not records.shards_built(ds):
        sh([cfkit, "demo-data", "--out", ds, "--splits", "train", "--scale", str(scale), "-q"])
    return ds


def make_b32_data(cfkit, work, scale):
    ds = os.path.join(work, f"fs224-s{scale:g}")
    if records.shards_built(ds):
        return ds
    png = os.path.join(work, f"png-s{scale:g}")
    if not os.path.isfile(os.path.join(png, "train", "classes.txt")):
        sh([cfkit, "demo-data", "--out", os.path.join(work, f"fs-small-s{scale:g}"), "--splits", "train", "--scale", str(scale),
            "--image-folder", png, "-q"])
    sh([cfkit, "prepare", "--image-folder", os.path.join(png, "train"), "--classes",
        os.path.join(png, "train", "classes.txt"), "--split", "train", "--image-size", "224", "--out", ds, "-q"])
    return ds


def dataset_classes(ds):
    return records.read_manifest(ds).classes("train")


def make_random_teacher(work, preset, classes, seed=0):
    """Seeded random CLIPVisionModelWithProjection + head over `classes`; skipped if both files exist."""
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    tdir = os.path.join(work, f"teacher-{preset}")
    weights, head = os.path.join(tdir, "model.safetensors"), os.path.join(tdir, "head.safetensors")
    if os.path.isfile(weights) and os.path.isfile(head):
        return weights, head
    os.makedirs(tdir, exist_ok=True)
    p = PRESETS[preset]
    torch.manual_seed(seed)
    cfg = CLIPVisionConfig(intermediate_size=4 * p["hidden_size"], hidden_act="quick_gelu", layer_norm_eps=1e-5, **p)
    model = CLIPVisionModelWithProjection(cfg)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    save_file(state, weights + ".tmp", metadata={"format": "pt"})
    w = torch.randn(len(classes), p["projection_dim"])
    w = 100.0 * w / w.norm(dim=-1, keepdim=True)
    info = dict(classes=classes, source="random", hash="")
    save_file({"head.weight": w.float().contiguous(), "head.bias": torch.zeros(len(classes))}, head,
              metadata={"cfkit.head": json.dumps(info)})
    os.replace(weights + ".tmp", weights)
    print(f"  wrote random {preset} teacher to {tdir}", flush=True)
    return weights, head


def build(cfkit, work, preset, shards, weights, head, batch, variants, device, pipeline):
    cfg_path = os.path.join(work, f"config-{preset}.toml")
    with open(cfg_path, "w") as f:
        f.write(CONFIG.format(shards=os.path.abspath(shards), preset=preset, weights=os.path.abspath(weights),
                              head=os.path.abspath(head), variants=variants, batch=batch, device=device))
    out = os.path.join(work, f"out-{preset}-{pipeline}")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [cfkit, "build-counterfactuals", "--config", cfg_path, "--out", out, "-q", "--pipeline", pipeline]
    print("  $ " + " ".join(cmd), flush=True)
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    for line in (res.stdout + res.stderr).splitlines():
        if "images/s" in line:
            print(f"    {line.strip()}", flush=True)
    return records.read_build_run(out).report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfkit", required=True, help="the cfkit binary")
    ap.add_argument("--presets", default="tiny,vit-b-32")
    ap.add_argument("--pipelines", default="off,on", help="comma-separated --pipeline values to run")
    ap.add_argument("--device", default="auto", help="the config's counterfactuals.device")
    ap.add_argument("--variants", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="runs per mode (alternating); the median run is reported")
    ap.add_argument("--batch", type=int, default=0, help="override every preset's batch")
    ap.add_argument("--tiny-scale", type=float, default=0.1, help="demo-data --scale for tiny (0.1: 1,000 images)")
    ap.add_argument("--b32-scale", type=float, default=0.005,
                    help="demo-data --scale for vit-b-32 (0.005: 50 images, ~30 s a run on 2 idle CPU cores; "
                         "raise it on a GPU, where 50 images are mostly start-up)")
    ap.add_argument("--work", default="target/bench-pipeline")
    ap.add_argument("--out", default="results/bench/pipeline.json")
    args = ap.parse_args()
    presets.load(args.cfkit)
    os.makedirs(args.work, exist_ok=True)
    results = []
    for preset in args.presets.split(","):
        if preset == "tiny":
            shards = make_tiny_data(args.cfkit, args.work, args.tiny_scale)
            weights, head = "assets/teacher/model.safetensors", "assets/teacher/head.safetensors"
            teacher = "assets/teacher (demo, trained)"
        elif preset in PRESETS:
            shards = make_b32_data(args.cfkit, args.work, args.b32_scale)
            if PRESETS[preset]["image_size"] != 224:
                raise SystemExit(f"{preset}: the 224 px dataset does not fit image_size {PRESETS[preset]['image_size']}")
            weights, head = make_random_teacher(args.work, preset, dataset_classes(shards))
            teacher = "random (seed 0)"
        else:
            raise SystemExit(f"unknown preset {preset}")
        batch = args.batch or DEFAULT_BATCH.get(preset, 16)
        pipelines = args.pipelines.split(",")
        runs = {p: [] for p in pipelines}
        for _ in range(args.rounds):  # rounds alternate the modes so that machine noise hits both
            for pipeline in pipelines:
                runs[pipeline].append(build(args.cfkit, args.work, preset, shards, weights, head, batch,
                                            args.variants, args.device, pipeline))
        for pipeline in pipelines:
            rs = runs[pipeline]
            r = min(rs, key=lambda x: abs(x.seconds - statistics.median(y.seconds for y in rs)))
            results.append(dict(preset=preset, teacher=teacher, pipeline=pipeline, batch=batch,
                                variants=args.variants, strategies=["ObjMaskSingleFill(0.3)"], cam="mmcam",
                                images=r.rows, seconds=r.seconds, images_per_s=r.images_per_s,
                                device_busy_fraction=r.device_busy_fraction, device=r.device,
                                config_device=args.device, rounds=args.rounds,
                                images_per_s_per_round=[x.images_per_s for x in rs]))
    ratios = []
    for preset in args.presets.split(","):
        by = {r["pipeline"]: r for r in results if r["preset"] == preset}
        if "on" in by and "off" in by:
            ratios.append(dict(preset=preset, device=by["on"]["device"],
                               ratio_on_over_off_images_per_s=by["on"]["images_per_s"] / by["off"]["images_per_s"]))
    print("\n| preset | images | batch | pipeline | images/s | device busy | seconds |\n|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['preset']} | {r['images']:,} | {r['batch']} | {r['pipeline']} ({r['device']}) "
              f"| {r['images_per_s']:.{1 if r['images_per_s'] >= 10 else 2}f} | {100 * r['device_busy_fraction']:.0f} % | {r['seconds']:.1f} |")
    for q in ratios:
        print(f"{q['preset']} ({q['device']}): images/s on ÷ off = {q['ratio_on_over_off_images_per_s']:.2f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    devices = sorted({r["device"] for r in results})
    meta = dict(machine=platform.machine(), cpus=os.cpu_count(), torch=torch.__version__,
                cuda_available=torch.cuda.is_available(), device=",".join(devices), config_device=args.device,
                date=time.strftime("%Y-%m-%d"))
    with open(args.out, "w") as f:
        json.dump(dict(meta=meta, results=results, ratios=ratios), f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
