#!/usr/bin/env python3
"""Parity fixture for cfkit's optimiser: torch.optim.AdamW (weight decay 0.1) driven by
OneCycleLR (β1 cycled), with clip_grad_norm_(1.0) before every step, on two parameters with given
gradients. Writes tests/fixtures/optim.safetensors: initial params, per-step grads, per-step params
after the step, and the schedule's lr/β1 per step. Run: .venv/bin/python tests/optim/make_fixtures.py
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


if __name__ == "__main__":
    main()
