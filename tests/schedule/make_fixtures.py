#!/usr/bin/env python3
"""Generates tests/fixtures/schedule.json: learning-rate / beta1 traces from PyTorch's schedulers.

cfkit's `cfkit_trainer::schedule` module reproduces two PyTorch schedules step for step:

* one-cycle: ``torch.optim.lr_scheduler.OneCycleLR(AdamW, max_lr, total_steps, pct_start,
  anneal_strategy="cos", cycle_momentum=True, div_factor, final_div_factor, base_momentum,
  max_momentum, three_phase=False)``; beta1 is ``param_groups[0]["betas"][0]``.
* cosine-warmup: ``SequentialLR([LinearLR(start_factor, end_factor=1.0, total_iters=warmup),
  CosineAnnealingLR(T_max=total - warmup, eta_min=min_lr)], milestones=[warmup])`` on an AdamW whose
  lr is ``base_lr`` and betas ``(beta1, 0.999)`` (beta1 is never touched by these schedulers).

Step index k is the value the optimizer's param group holds before the k-th optimizer step:
construction gives k = 0, each ``scheduler.step()`` adds one. Each case is traced for
k = 0..=total_steps (torch's OneCycleLR accepts k == total_steps and raises from total_steps + 1),
then one more step is attempted to record whether torch raises (`raises_at`, `error`); a case
torch rejects at construction has `construct_error` instead of a trace.

Usage (from the repo root, with the project venv):
    .venv/bin/python tests/schedule/make_fixtures.py [--out tests/fixtures/schedule.json]

Values are written as strings holding Python's repr of the float (shortest round-trip form): Rust's
`str::parse::<f64>` is correctly rounded, so the test sees torch's exact doubles, independently of
serde_json's float parser. Short traces are stored whole; long ones every `stride`-th step plus the
steps around the phase boundaries and the end, with their indices.
"""
import argparse
import json
import math
import os
import warnings

import torch

warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()" and friends


def make_opt(lr=1e-3, betas=(0.9, 0.999)):
    p = torch.nn.Parameter(torch.zeros(1))
    return torch.optim.AdamW([p], lr=lr, betas=betas)


def record(opt):
    g = opt.param_groups[0]
    return repr(float(g["lr"])), repr(float(g["betas"][0]))


def trace(make, total, keep):
    """make() -> (opt, sched) or raises. Returns the case's trace fields."""
    try:
        opt, sched = make()
    except Exception as e:  # noqa: BLE001 - the error type is the recorded result
        return {"construct_error": type(e).__name__}
    steps, lrs, betas = [], [], []
    raises_at = None
    for k in range(total + 2):
        if k > 0:
            try:
                sched.step()
            except Exception as e:  # noqa: BLE001
                raises_at, err = k, type(e).__name__
                break
        if k in keep and k <= total:
            lr, b1 = record(opt)
            steps.append(k)
            lrs.append(lr)
            betas.append(b1)
    out = {"steps": steps, "lr": lrs, "beta1": betas, "raises_at": raises_at}
    if raises_at is not None:
        out["error"] = err
    return out


def keep_set(total, stride, boundaries):
    if stride == 1:
        return set(range(total + 2))
    keep = set(range(0, total + 2, stride))
    for b in list(boundaries) + [0, total - 1, total, total + 1]:
        for k in (math.floor(b) - 1, math.floor(b), math.floor(b) + 1, math.floor(b) + 2):
            if 0 <= k <= total + 1:
                keep.add(k)
    return keep


def one_cycle_case(max_lr, total, pct, stride=1, div=25.0, final_div=1e4, base_m=0.85, max_m=0.95):
    def make():
        opt = make_opt()
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=max_lr, total_steps=total, pct_start=pct, anneal_strategy="cos",
            cycle_momentum=True, base_momentum=base_m, max_momentum=max_m, div_factor=div,
            final_div_factor=final_div, three_phase=False)
        return opt, sched

    case = {"max_lr": max_lr, "total_steps": total, "pct_start": pct, "div_factor": div,
            "final_div_factor": final_div, "base_momentum": base_m, "max_momentum": max_m}
    # The repr strings make the configuration exact too.
    case["exact"] = {k: repr(float(v)) for k, v in case.items() if k != "total_steps"}
    keep = keep_set(total, stride, [pct * total - 1] if total > 0 else [])
    case.update(trace(make, total, keep))
    return case


def cosine_case(base_lr, total, warmup, start_factor=1.0 / 3, min_lr=0.0, beta1=0.9, stride=1):
    def make():
        opt = make_opt(lr=base_lr, betas=(beta1, 0.999))
        lin = torch.optim.lr_scheduler.LinearLR(
            opt, start_factor=start_factor, end_factor=1.0, total_iters=warmup)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=min_lr)
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [lin, cos], milestones=[warmup])
        return opt, sched

    case = {"base_lr": base_lr, "total_steps": total, "warmup_steps": warmup,
            "start_factor": start_factor, "min_lr": min_lr, "beta1": beta1}
    case["exact"] = {k: repr(float(v)) for k, v in case.items()
                     if k not in ("total_steps", "warmup_steps")}
    keep = keep_set(total, stride, [warmup])
    t = trace(make, total, keep)
    if "beta1" in t:
        t["beta1_trace"] = t.pop("beta1")
    # SequentialLR never raises past the end by itself (CosineAnnealingLR starts climbing back at
    # total_steps + 1); cfkit's schedule ends at total_steps, so step total_steps + 1 is not stored.
    case.update(t)
    return case


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/schedule.json")
    args = ap.parse_args()

    one_cycle = []
    for total in (1, 2, 7, 100, 1000):
        for pct in (0.02, 0.3):
            for max_lr in (3e-5, 1.0):
                one_cycle.append(one_cycle_case(max_lr, total, pct, stride=7 if total > 100 else 1))
    # Edge cases: torch's defaults, warm-up end in (0, 1), pct_start 0 and 1, pct*total == 1
    # (ZeroDivisionError at construction), invalid total/pct (ValueError), non-default factors,
    # and a recipe-sized run (10 epochs of 2483 steps) sampled sparsely.
    one_cycle += [
        one_cycle_case(1.0, 3, 0.5),            # warm-up phase end 0.5
        one_cycle_case(1.0, 10, 0.15),          # warm-up phase end 0.5
        one_cycle_case(1.0, 10, 0.0),           # end of warm-up -1: annealing from step 0
        one_cycle_case(1.0, 5, 1.0),            # no annealing phase: ZeroDivisionError at step 5
        one_cycle_case(1.0, 50, 0.02),          # 0.02 * 50 == 1.0: ZeroDivisionError at construction
        one_cycle_case(1.0, 0, 0.3),            # ValueError
        one_cycle_case(1.0, 10, 1.5),           # ValueError
        one_cycle_case(0.1, 37, 0.25, div=10.0, final_div=100.0, base_m=0.8, max_m=0.99),
        one_cycle_case(0.1, 37, 0.25, base_m=0.95, max_m=0.85),  # inverted momentum range
        one_cycle_case(3e-5, 24830, 0.02, stride=97),
    ]

    cosine = []
    for (total, warmup) in ((1, 0), (2, 0), (2, 1), (7, 0), (7, 1), (7, 3), (7, 6), (100, 10),
                            (1000, 0), (1000, 20)):
        for base_lr, min_lr in ((3e-5, 0.0), (1.0, 1e-3)):
            cosine.append(cosine_case(base_lr, total, warmup, min_lr=min_lr,
                                      stride=7 if total > 100 else 1))
    cosine += [
        cosine_case(0.1, 50, 5, start_factor=1.0, beta1=0.95),
        cosine_case(0.1, 50, 5, start_factor=1e-3, min_lr=1e-4),
        cosine_case(0.1, 50, 5, start_factor=0.0),      # ValueError: LinearLR needs start_factor > 0
        cosine_case(0.1, 5, 5),                         # T_max 0: ZeroDivisionError at step 5
        cosine_case(3e-5, 24830, 497, start_factor=1e-2, stride=97),
    ]

    out = {
        "generator": "tests/schedule/make_fixtures.py",
        "torch_version": torch.__version__,
        "one_cycle": one_cycle,
        "cosine_warmup": cosine,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    n = sum(len(c.get("steps", [])) for c in one_cycle + cosine)
    print(f"wrote {args.out}: {len(one_cycle)} one-cycle and {len(cosine)} cosine-warmup cases, "
          f"{n} points, {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
