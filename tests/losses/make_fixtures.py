#!/usr/bin/env python3
"""Parity fixture for cfkit's training losses (trainer/src/losses.rs), computed with PyTorch on
fixed tensors: cross-entropy, feature MSE (mean over N*D) and KD T^2*KL with batchmean at T = 10
and T = 1, each with its gradient w.r.t. the student input. Writes tests/fixtures/losses.safetensors.
Run: .venv/bin/python tests/losses/make_fixtures.py
"""
import torch
import torch.nn.functional as F
from safetensors.torch import save_file


def grad_of(fn, x):
    x = x.clone().requires_grad_(True)
    loss = fn(x)
    (g,) = torch.autograd.grad(loss, x)
    return loss.detach().reshape(1), g


def main():
    g = torch.Generator().manual_seed(0)
    n, d, c = 6, 16, 10
    s_feat = torch.randn(n, d, generator=g) * 3.0
    t_feat = torch.randn(n, d, generator=g) * 3.0
    s_logits = torch.randn(n, c, generator=g) * 8.0
    t_logits = torch.randn(n, c, generator=g) * 8.0
    # A very confident teacher row: softmax underflows to exactly 0 for some classes at T = 1.
    t_logits[0] = torch.linspace(-200.0, 200.0, c)
    labels = torch.randint(0, c, (n,), generator=g)
    out = {"s_feat": s_feat, "t_feat": t_feat, "s_logits": s_logits, "t_logits": t_logits,
           "labels": labels}
    out["mse"], out["mse_grad"] = grad_of(lambda x: F.mse_loss(x, t_feat), s_feat)
    out["ce"], out["ce_grad"] = grad_of(lambda x: F.cross_entropy(x, labels), s_logits)
    for t in (10.0, 1.0):
        def kd(x, t=t):
            return F.kl_div(F.log_softmax(x / t, 1), F.softmax(t_logits / t, 1),
                            reduction="batchmean") * t * t
        out[f"kd_t{int(t)}"], out[f"kd_t{int(t)}_grad"] = grad_of(kd, s_logits)
    save_file({k: v.contiguous() for k, v in out.items()}, "tests/fixtures/losses.safetensors",
              metadata={"torch": torch.__version__, "script": "tests/losses/make_fixtures.py"})


if __name__ == "__main__":
    main()
