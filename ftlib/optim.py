"""The optimizer and the learning-rate schedule ``fit`` uses (lesson 00; per-group rates: lesson 04).

AdamW with the BERT recipe's two groups (no weight decay on biases and LayerNorm weights),
optionally cut further by learning rate per layer group (discriminative rates), and a
linear schedule: warm-up from 0 to the rate, then down to 0 at the last step.
"""
from __future__ import annotations

import math

import torch
from transformers import get_linear_schedule_with_warmup

from .freezing import layer_groups

__all__ = ["adamw", "make_optimizer", "make_scheduler"]


def adamw(params, **kwargs) -> torch.optim.AdamW:
    """AdamW, fused into one kernel per step where PyTorch has one (CPU and CUDA), as the Trainer does.

    PyTorch's default on a CPU is a Python loop over the tensors, which took about half of a
    training step of the lite encoder (bench/run.py, `trainer_ratio`). The fused kernel
    computes the same update, up to rounding.
    """
    params = list(params)  # a generator such as model.parameters() would be used up below
    tensors = [p for g in params for p in g["params"]] if params and isinstance(params[0], dict) else params
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in tensors)
    return torch.optim.AdamW(params, fused=fused or None, **kwargs)


def make_optimizer(model, *, lr: float, weight_decay: float = 0.01,
                   group_lrs: dict[str, float] | None = None) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of `model`; biases and LayerNorm weights without weight decay.

    ``group_lrs`` maps layer groups (``ftlib.freezing.layer_groups``) to their own rates; the others get `lr`.
    """
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters: unfreeze something before training")
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if group_lrs:  # discriminative learning rates (lesson 04)
        groups = _split_by_group_lr(model, groups, group_lrs, lr)
    return adamw([g for g in groups if g["params"]], lr=lr)


def make_scheduler(optimizer, *, total_steps: int, warmup_ratio: float = 0.1):
    """The linear schedule: from 0 up to the optimizer's rate over the warm-up steps, then down to 0."""
    return get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)


def _split_by_group_lr(model, groups: list[dict], group_lrs: dict[str, float], lr: float) -> list[dict]:
    """Each optimizer group cut by learning rate, highest first."""
    by_name = layer_groups(model)
    unknown = [g for g in group_lrs if g not in by_name]
    bad = {g: rate for g, rate in group_lrs.items() if not (rate > 0 and math.isfinite(rate))}
    if unknown or bad:
        raise ValueError(f"group_lrs must map layer groups {list(by_name)} to positive learning rates; "
                         f"got unknown groups {unknown} and bad rates {bad}")
    lr_of = {id(p): float(group_lrs.get(name, lr)) for name, ps in by_name.items() for p in ps}
    split = []
    for group in groups:
        for rate in sorted({lr_of[id(p)] for p in group["params"]}, reverse=True):
            split.append({**group, "lr": rate, "params": [p for p in group["params"] if lr_of[id(p)] == rate]})
    return split
