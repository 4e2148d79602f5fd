#!/usr/bin/python3
"""Writes tests/fixtures/optim_reference.txt: a short AdamW trajectory computed by PyTorch
(torch.optim.AdamW + torch.nn.utils.clip_grad_norm_ + the learning-rate schedule of
src/optim/schedule.h), which tests/test_optim.c replays with the C optimizer.

Three tensors: "weight" (3, 4) with weight decay, "bias" (5) without, and "small" (2, 3)
with weight decay and gradients near 1e-8, where eps matters. Gradients are drawn from a
seeded generator, some steps large enough to be clipped and some not.

Run from the repository root with Debian's PyTorch (apt-get install python3-torch):
    /usr/bin/python3 tools/make_optim_fixture.py

Format (one record per line, floats printed with 9 significant digits, exact for float32):
    options beta1 beta2 eps weight_decay lr lr_min warmup_steps total_steps max_norm
    tensor NAME DECAY SIZE
    init NAME v1 v2 ...                 parameter values before the first step
    step S LR NORM                      0-based step, its lr, the pre-clip gradient norm
    grad NAME v...                      gradient before clipping
    clipped NAME v...                   gradient after clipping
    param NAME v...                     parameter after the step
    exp_avg NAME v...                   AdamW's first moment after the step
    exp_avg_sq NAME v...                AdamW's second moment after the step
"""
import os
import sys

import torch

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
WEIGHT_DECAY = 0.1
LR, LR_MIN = 1e-2, 1e-3
WARMUP, TOTAL = 3, 12
MAX_NORM = 1.0
# Gradient scale of each step: above 1 the global norm exceeds MAX_NORM and is clipped.
GRAD_SCALES = [0.2, 3.0, 0.05, 1.5, 0.3, 0.5, 4.0, 0.1, 0.2, 2.0, 0.05, 0.3]


def lr_at(step, total, warmup, lr, lr_min):
    """The schedule documented in src/optim/schedule.h, written again here."""
    if step < warmup:
        return lr * (step + 1) / warmup
    last = total - 1
    if last <= warmup:
        return lr
    if step >= last:
        return lr_min
    progress = (step - warmup) / (last - warmup)
    return lr_min + (lr - lr_min) * (1.0 - progress)


def fmt(t):
    return " ".join("%.9g" % x for x in t.detach().reshape(-1).tolist())


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    tensors = [
        ("weight", True, torch.randn(3, 4, generator=gen), 1.0),
        ("bias", False, torch.randn(5, generator=gen), 1.0),
        ("small", True, torch.randn(2, 3, generator=gen), 1e-8),
    ]
    params = {name: torch.nn.Parameter(init.clone()) for name, _, init, _ in tensors}
    groups = [
        {"params": [params[n] for n, decay, _, _ in tensors if decay], "weight_decay": WEIGHT_DECAY},
        {"params": [params[n] for n, decay, _, _ in tensors if not decay], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LR, betas=(BETA1, BETA2), eps=EPS, foreach=False)

    lines = ["# AdamW reference trajectory from torch %s, made by tools/make_optim_fixture.py" % torch.__version__]
    lines.append("options %r %r %r %r %r %r %d %d %r" % (BETA1, BETA2, EPS, WEIGHT_DECAY, LR, LR_MIN, WARMUP, TOTAL,
                                                       MAX_NORM))
    for name, decay, init, _ in tensors:
        lines.append("tensor %s %d %d" % (name, int(decay), init.numel()))
    for name, _, init, _ in tensors:
        lines.append("init %s %s" % (name, fmt(init)))
    for step in range(TOTAL):
        grads = {}
        for name, _, init, scale in tensors:
            grads[name] = torch.randn(init.shape, generator=gen) * (scale * GRAD_SCALES[step])
            params[name].grad = grads[name].clone()
        norm = torch.nn.utils.clip_grad_norm_([params[n] for n, _, _, _ in tensors], MAX_NORM)
        lr = lr_at(step, TOTAL, WARMUP, LR, LR_MIN)
        for group in opt.param_groups:
            group["lr"] = lr
        lines.append("step %d %r %.9g" % (step, lr, norm.item()))
        for name, _, _, _ in tensors:
            lines.append("grad %s %s" % (name, fmt(grads[name])))
            lines.append("clipped %s %s" % (name, fmt(params[name].grad)))
        opt.step()
        for name, _, _, _ in tensors:
            state = opt.state[params[name]]
            lines.append("param %s %s" % (name, fmt(params[name])))
            lines.append("exp_avg %s %s" % (name, fmt(state["exp_avg"])))
            lines.append("exp_avg_sq %s %s" % (name, fmt(state["exp_avg_sq"])))

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "tests", "fixtures", "optim_reference.txt")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s (%d lines)" % (out, len(lines)), file=sys.stderr)


if __name__ == "__main__":
    main()
