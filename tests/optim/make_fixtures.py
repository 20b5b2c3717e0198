#!/usr/bin/env python3
"""Parity fixtures for cfkit's optimiser: torch.optim.AdamW (weight decay 0.1) driven by
OneCycleLR (β1 cycled), with clip_grad_norm_(1.0) before every step, on parameters with given
gradients.

- tests/fixtures/optim.safetensors: the default AdamW, 6 steps on two parameters: initial params,
  per-step grads, per-step params after the step, and the schedule's lr/β1 per step.
- tests/fixtures/optim-fused.safetensors: AdamW(fused=True) with clip_grad_norm_(foreach=True),
  100 steps on three parameters, the third without a gradient for the first 10 steps (torch skips
  it then: no update, its step count does not advance), and the gradient norm before clipping.

Run: .venv/bin/python tests/optim/make_fixtures.py
"""
import json

import torch
from safetensors.torch import save_file

STEPS, MAX_LR, PCT = 6, 1e-2, 0.3


def main():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(7, 5, generator=g, dtype=torch.float32)
    b = torch.randn(5, generator=g, dtype=torch.float32)
    grads_w = torch.randn(STEPS, 7, 5, generator=g) * 0.7
    grads_b = torch.randn(STEPS, 5, generator=g) * 0.7
    pw, pb = torch.nn.Parameter(w.clone()), torch.nn.Parameter(b.clone())
    opt = torch.optim.AdamW([pw, pb], lr=MAX_LR, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=STEPS, pct_start=PCT)
    out = {"w0": w, "b0": b, "grads_w": grads_w, "grads_b": grads_b}
    ws, bs, lrs, betas = [], [], [], []
    for t in range(STEPS):
        pw.grad, pb.grad = grads_w[t].clone(), grads_b[t].clone()
        torch.nn.utils.clip_grad_norm_([pw, pb], 1.0)
        lrs.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0]["betas"][0])
        opt.step()
        opt.zero_grad()
        sched.step()
        ws.append(pw.detach().clone())
        bs.append(pb.detach().clone())
    out["w"] = torch.stack(ws)
    out["b"] = torch.stack(bs)
    meta = {"steps": str(STEPS), "max_lr": repr(MAX_LR), "pct_start": repr(PCT), "lrs": json.dumps(lrs),
            "betas": json.dumps(betas)}
    save_file(out, "tests/fixtures/optim.safetensors", metadata=meta)
    print("wrote tests/fixtures/optim.safetensors")


FUSED_STEPS = 100
# The third parameter has no gradient before this step (as a layer unfrozen later): skipped.
C_FROM = 10


def fused():
    g = torch.Generator().manual_seed(1)
    shapes = {"w": (7, 5), "b": (5,), "c": (3, 2)}
    init = {k: torch.randn(*sh, generator=g) for k, sh in shapes.items()}
    grads = {k: torch.randn(FUSED_STEPS, *sh, generator=g) * 0.7 for k, sh in shapes.items()}
    ps = {k: torch.nn.Parameter(v.clone()) for k, v in init.items()}
    opt = torch.optim.AdamW(list(ps.values()), lr=MAX_LR, weight_decay=0.1, fused=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=FUSED_STEPS,
                                                pct_start=PCT)
    out = {f"{k}0": v for k, v in init.items()}
    out.update({f"grads_{k}": v for k, v in grads.items()})
    after = {k: [] for k in shapes}
    norms = []
    for t in range(FUSED_STEPS):
        for k, p in ps.items():
            p.grad = None if (k == "c" and t < C_FROM) else grads[k][t].clone()
        with_grad = [p for p in ps.values() if p.grad is not None]
        norms.append(torch.nn.utils.clip_grad_norm_(with_grad, 1.0, foreach=True))
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        for k, p in ps.items():
            after[k].append(p.detach().clone())
    out.update({k: torch.stack(v) for k, v in after.items()})
    out["norms"] = torch.stack(norms)
    meta = {"steps": str(FUSED_STEPS), "max_lr": repr(MAX_LR), "pct_start": repr(PCT),
            "c_from": str(C_FROM)}
    save_file(out, "tests/fixtures/optim-fused.safetensors", metadata=meta)
    print("wrote tests/fixtures/optim-fused.safetensors")


if __name__ == "__main__":
    main()
    fused()
