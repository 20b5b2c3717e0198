"""`just cam-quality`: does the teacher's CAM find the garment? For each CAM method cfkit offers
(MMCAM, the paper's; GradCAM; attention rollout), build the object, context and random single-fill
counterfactuals of the FashionShift `val` split (ID data, 2,000 rows, one variant each) with the
demo teacher of configs/fashionshift/build-all.toml, and read back from `cfkit inspect --json` how each mask
meets the generator's garment mask: the share of patches masked, the IoU with the garment's and
with the background's patches, and the share of the garment masked. A CAM that finds the garment
gives the object strategy a high garment share and the context strategy a low one; the random
strategy is the yardstick (it masks the garment in proportion to its rate).

Writes results/cam-quality.json (the inspect statistics per CAM) and results/cam-quality.md.
"""
import argparse
import datetime
import json
import os
import subprocess
import tempfile
import tomllib

from cfkit_tools import ROOT, records
CAMS = ["mmcam", "gradcam", "rollout"]
# The headline object strategy and the context and random ones at the rates of the grid
# (configs/fashionshift/benchmark.toml).
STRATEGIES = ["ObjMaskSingleFill(0.3)", "CtxMaskSingleFill(0.5)", "RandMaskSingleFill(0.5)"]


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True).stdout


def measure(cfkit, config, split, cam, work):
    out = os.path.join(work, cam)
    strategies = "[" + ", ".join(f'"{s}"' for s in STRATEGIES) + "]"
    run([cfkit, "build-counterfactuals", "--config", config, "--out", out, "-q",
         "--set", f'source.split="{split}"', "--set", f'counterfactuals.cam="{cam}"',
         "--set", f"counterfactuals.strategies={strategies}", "--set", "counterfactuals.variants=1"])
    rep = records.parse_inspection(run([cfkit, "inspect", out, "--split", split, "--json",
                                        "--n", "4", "--out", os.path.join(work, f"{cam}.png")]))
    stats = rep.strategies
    missing = [s for s in STRATEGIES if s not in stats or stats[s].object_iou_mean is None]
    if missing:
        raise SystemExit(f"{config}: the {split} split carries no garment masks for {missing} "
                         "(regenerate data/fashionshift with this cfkit)")
    return rep


def table(results, split, rows, config):
    lines = [
        "# Does the teacher's CAM find the garment? (`just cam-quality`)", "",
        f"FashionShift `{split}` ({rows} ID rows), the demo teacher, one variant per strategy; "
        "`cfkit inspect --json` against the generator's garment mask (per patch). Mask ratio: "
        "share of patches masked; IoU with the garment's and the background's patches; garment "
        "masked: share of the garment's patches the mask covers.", "",
        "| CAM | strategy | mask ratio | IoU garment | IoU background | garment masked |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for cam, rep in results.items():
        for s in STRATEGIES:
            st = rep.strategies[s]
            lines.append(f"| {cam} | {s} | {st.mask_ratio_mean:.3f} | "
                         f"{st.object_iou_mean:.3f} | {st.background_iou_mean:.3f} | "
                         f"{st.object_masked_mean:.3f} |")
    with open(os.path.join(ROOT, config), "rb") as f:
        used = tomllib.load(f)["counterfactuals"].get("cam", "mmcam")
    lines += ["", f"The counterfactual shards of `{config}` use `{used}`. A random mask at rate r "
              "covers a share r of the garment on average; that is the yardstick for the object "
              "(higher is better) and context (lower is better) rows."]
    commit = run(["git", "rev-parse", "HEAD"]).strip()
    lines += ["", f"Written by `cfkit_tools.demo.cam_quality` at commit {commit}, "
              f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC."]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfkit", default=os.path.join(ROOT, "target/release/cfkit"))
    ap.add_argument("--config", default="configs/fashionshift/build-all.toml",
                    help="build config whose source and teacher are measured")
    ap.add_argument("--split", default="val")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "results"))
    a = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="cfkit-cam-quality-") as work:
        for cam in CAMS:
            results[cam] = measure(a.cfkit, a.config, a.split, cam, work)
    rows = results[CAMS[0]].rows
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "cam-quality.json"), "w") as f:
        json.dump({"split": a.split, "config": a.config, "rows": rows, "strategies": STRATEGIES,
                   "cams": {cam: rep.raw for cam, rep in results.items()}}, f, indent=1)
    text = table(results, a.split, rows, a.config)
    with open(os.path.join(a.out_dir, "cam-quality.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
