"""Regularisation knobs that are not already a TrainConfig field: dropout and noisy labels.

Introduced in lesson 08. Weight decay and the learning rate are ``TrainConfig`` fields,
fewer trainable parameters are ``ftlib.methods.apply_method``, image augmentation is
``ftlib.images.augment``; what is left is here:

- `set_dropout` changes the drop probability of every dropout layer of a loaded model
  (the value in ``model.config`` is read only when the model is built, so changing the
  config afterwards does nothing);
- `flip_labels` replaces a given fraction of the labels by another class, chosen at
  random: the label noise that real annotations have, made on purpose and measurable.
"""
from __future__ import annotations

import torch

__all__ = ["flip_labels", "set_dropout"]


def set_dropout(model: torch.nn.Module, p: float) -> int:
    """Set the probability of every ``nn.Dropout`` in `model` to `p`; returns how many layers changed."""
    if not 0 <= p < 1:
        raise ValueError(f"a dropout probability must be in [0, 1), got {p}: 0.1 is the usual value")
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    for layer in layers:
        layer.p = p
    return len(layers)


def flip_labels(labels, fraction: float, *, num_labels: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """A copy of `labels` in which round(fraction * N) of them, chosen at random, are another class.

    Returns the new labels and the (sorted) indices that were flipped. Each flipped label
    gets one of the *other* classes, uniformly, so that exactly that fraction is wrong.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}: 0.2 flips one label in five")
    if num_labels < 2:
        raise ValueError(f"flipping needs at least two classes, got num_labels={num_labels}")
    labels = [int(y) for y in labels]
    g = torch.Generator().manual_seed(seed)
    flipped = sorted(torch.randperm(len(labels), generator=g)[:round(fraction * len(labels))].tolist())
    noisy = list(labels)
    for i in flipped:
        shift = int(torch.randint(1, num_labels, (1,), generator=g))  # 1..num_labels-1: never the same class
        noisy[i] = (labels[i] + shift) % num_labels
    return noisy, flipped
