"""The learning-rate finder: a short run with a rising learning rate, to choose one.

Introduced in lesson 04. Following Smith (2015/2017, "Cyclical learning rates") as fastai
does: train for a few dozen mini-batches while the learning rate grows exponentially from
tiny to far too large, record the loss after each step, smooth it, and read where it falls
fastest. The run changes the weights, so :func:`find_lr` puts the model (and the
optimizer, if you pass one) back exactly as they were, and leaves the random number
generators untouched: training afterwards is the same as without the finder.
"""
from __future__ import annotations

import copy
import itertools
import math
from typing import NamedTuple

import torch

from .optim import adamw
from .runtime import Runtime
from .training import train_step

__all__ = ["LRFinderResult", "find_lr", "suggest_lr"]


class LRFinderResult(NamedTuple):
    """What :func:`find_lr` measured: unpack it as ``lrs, losses, suggestion = find_lr(...)``."""

    lrs: list[float]  # the learning rate of each step
    losses: list[float]  # the smoothed training loss after each step
    suggestion: float  # where the smoothed loss falls fastest (steepest descent)


def suggest_lr(lrs: list[float], losses: list[float], method: str = "steepest", *, rise: float = 0.1) -> float:
    """A learning rate read from a finder curve.

    ``"steepest"``: where the smoothed loss falls fastest per factor of learning rate, before
    its lowest point.
    ``"min/10"``: a tenth of the rate at the lowest loss (one step back from the edge).
    ``"edge/10"``: a tenth of the last rate before the smoothed loss rises more than `rise`
    (10 %) above its lowest value so far. For a curve that stays flat until it blows up (a
    hard task, a few dozen steps), its lowest point is noise, but the edge is not.
    """
    if len(lrs) != len(losses) or len(lrs) < 3:
        raise ValueError(f"need at least 3 (lr, loss) points of equal length, got {len(lrs)} and {len(losses)}: "
                         "run the finder for more steps")
    if method == "min/10":
        return lrs[min(range(len(losses)), key=losses.__getitem__)] / 10
    if method == "edge/10":
        lowest, edge = losses[0], lrs[-1]
        for i, loss in enumerate(losses):
            if loss > (1 + rise) * lowest:
                edge = lrs[i - 1]
                break
            lowest = min(lowest, loss)
        return edge / 10
    if method != "steepest":
        raise ValueError(f"unknown method {method!r}: choose 'steepest', 'min/10' or 'edge/10'")
    # Only up to the lowest loss: beyond it the loss is diverging, and its noisy dips are no guide.
    end = min(range(len(losses)), key=losses.__getitem__)
    if end < 2:
        return lrs[end] / 10  # no descent to measure: fall back on min/10
    logs = [math.log10(lr) for lr in lrs]
    # Central differences: slope of the loss against log10(lr) at each inner point.
    slopes = [(losses[i + 1] - losses[i - 1]) / (logs[i + 1] - logs[i - 1]) for i in range(1, end)]
    return lrs[1 + min(range(len(slopes)), key=slopes.__getitem__)]


def find_lr(model, loader, runtime: Runtime, *, start_lr: float = 1e-7, end_lr: float = 1.0, num_steps: int = 50,
            beta: float = 0.9, diverge: float = 4.0, optimizer=None, weight_decay: float = 0.01,
            max_grad_norm: float | None = 1.0) -> LRFinderResult:
    """Run the learning-rate range test on `model` and restore it afterwards.

    The rate of step i is ``start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))``; the loss
    is an exponential moving average (weight `beta`, bias-corrected, as in Adam). The run
    stops early once the smoothed loss exceeds `diverge` times its lowest value. Only
    trainable parameters move: freeze first what should stay frozen. Without an
    `optimizer`, an AdamW over the trainable parameters is used; with one, every one of
    its parameter groups gets the same rate during the test, and its state is restored after.
    """
    if not (0 < start_lr < end_lr) or num_steps < 3 or not 0 <= beta < 1:
        raise ValueError(f"need 0 < start_lr < end_lr, num_steps >= 3 and 0 <= beta < 1; got {start_lr}, "
                         f"{end_lr}, {num_steps}, {beta}: try find_lr(model, loader, runtime) with the defaults")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters: unfreeze something before finding a learning rate")
    model.to(runtime.device)
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = None
    if optimizer is not None:
        saved_optimizer = copy.deepcopy(optimizer.state_dict())
        optimizer.load_state_dict(copy.deepcopy(saved_optimizer))  # its moments follow the parameters to the device
    was_training = model.training
    devices = [torch.cuda.current_device()] if runtime.device.startswith("cuda") else []
    try:
        with torch.random.fork_rng(devices=devices):  # the finder's dropout draws leave no trace
            opt = optimizer or adamw(params, lr=start_lr, weight_decay=weight_decay)
            lrs, losses = _range_test(model, loader, opt, runtime, start_lr, end_lr, num_steps, beta,
                                      diverge, max_grad_norm)
    finally:
        model.load_state_dict(saved_model)
        model.zero_grad(set_to_none=True)  # no gradient of the test is left for a later step
        if optimizer is not None:
            optimizer.load_state_dict(saved_optimizer)
        model.train(was_training)
    if len(lrs) < 3:
        raise FloatingPointError(f"the loss diverged after {len(lrs)} steps, at lr {lrs[-1] if lrs else start_lr:g}: "
                                 "lower start_lr")
    return LRFinderResult(lrs, losses, suggest_lr(lrs, losses))


def _range_test(model, loader, optimizer, runtime, start_lr, end_lr, num_steps, beta, diverge,
                max_grad_norm):
    """The finder's loop: one optimizer step per batch (``fit``'s ``train_step``), each at a higher rate."""
    scaler = runtime.grad_scaler()
    model.train()
    for group in optimizer.param_groups:
        group["lr"] = start_lr
    growth = end_lr / start_lr  # the rate of step i is start_lr * growth ** (i / (num_steps - 1)): a schedule
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: growth ** (i / (num_steps - 1)))
    batches = itertools.chain.from_iterable(itertools.repeat(loader))  # cycle when the data is short
    lrs, losses, average, best = [], [], 0.0, math.inf
    for step, batch in zip(range(num_steps), batches):
        lr = scheduler.get_last_lr()[0]
        try:
            loss = train_step(model, [(batch, 1.0)], optimizer, scheduler, runtime, scaler=scaler,
                              max_grad_norm=max_grad_norm)
        except FloatingPointError:  # the loss is no longer a number: far past the useful rates
            break
        average = beta * average + (1 - beta) * loss
        smoothed = average / (1 - beta ** (step + 1))  # bias correction: early averages start at 0
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > diverge * best:
            break
    return lrs, losses
