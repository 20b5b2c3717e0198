#!/usr/bin/env python3
"""A stand-in for the `cfkit` binary that cfkit_tools.demo.run drives (tests/demo_report.rs): it logs
each call, and for `train` writes a finished run whose validation top-1 follows the distillation
weight of its --set overrides, so that the test knows which weight the validation rule must pick."""
import hashlib
import json
import os
import re
import sys

SETS = ["test-id", "ood-bg-random", "ood-bg-anti", "ood-sketch", "ood-render", "ood-near"]


def evaluation(id_pct, ood_pct):
    return {"sets": [{"name": s, "ood": s != "test-id", "images": 100,
                      "correct": id_pct if s == "test-id" else ood_pct} for s in SETS]}


def opt(args, name):
    return args[args.index(name) + 1] if name in args else None


def main():
    args = sys.argv[1:]
    with open(os.environ["FAKE_CFKIT_LOG"], "a") as f:
        f.write(json.dumps(args) + "\n")
    cmd = args[0]
    if cmd == "inspect":
        print(json.dumps({"rows": 10, "strategies": {}}))
    elif cmd == "eval" and opt(args, "--split") == "val":
        # The calibration split: the teacher's gap is 0, FT's 60 points.
        ft = "checkpoints" in opt(args, "--checkpoint")
        b = {"matching_correct": 90 if ft else 45, "matching_images": 90,
             "other_correct": 4 if ft else 5, "other_images": 10}
        print(json.dumps({"sets": [{"name": "val", "ood": False, "images": 100,
                                    "correct": b["matching_correct"] + b["other_correct"],
                                    "background": b}]}))
    elif cmd == "eval":
        print(json.dumps(evaluation(50, 50)))
    elif cmd == "build-counterfactuals":
        out = opt(args, "--out")
        if out is None or os.path.exists(os.path.join(out, "manifest.json")):
            raise SystemExit(f"build-counterfactuals: no --out, or {out} is already built")
        os.makedirs(out)
        for name, v in [("manifest.json", {}), ("done.json", {"report": {"seconds": 120.0}})]:
            with open(os.path.join(out, name), "w") as f:
                json.dump(v, f)
    elif cmd == "train":
        sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
        config_hash = hashlib.sha256(json.dumps([opt(args, "--config")] + sets).encode()).hexdigest()
        if "--print-config" in args:
            print(json.dumps({"config_hash": config_hash}))
            return
        m = re.search(r"weight = ([0-9.]+)", " ".join(sets))
        w = float(m.group(1)) if m else 0.0
        # Validation falls by 2 points per unit of weight from FT's 70 %: within 3 points for
        # weights up to 1.5. Test ID and OOD move with the weight too.
        val = 0.70 - 0.02 * w
        out = opt(args, "--out")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "run.json"), "w") as f:
            json.dump({"config_hash": config_hash, "cfkit_commit": "fake"}, f)
        with open(os.path.join(out, "report.json"), "w") as f:
            json.dump({"eval": evaluation(70 - round(2 * w), 40 + round(3 * w)),
                       "best": {"top1": val}, "train_seconds": 6.0}, f)
    elif cmd == "wise-ft":
        out = opt(args, "--out")
        os.makedirs(out, exist_ok=True)
        alphas = [float(a) for a in opt(args, "--alpha").split(",")]
        with open(os.path.join(out, "wise-ft.json"), "w") as f:
            json.dump({"points": [{"alpha": a, "eval": evaluation(50 + round(20 * a), 50 - round(10 * a))}
                                  for a in alphas]}, f)
    else:
        raise SystemExit(f"fake cfkit: unexpected command {cmd}")


if __name__ == "__main__":
    main()
