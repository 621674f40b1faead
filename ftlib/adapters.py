"""Bottleneck adapters, written from scratch.

Introduced in lesson 05. An adapter is a small two-layer network with a skip connection,
inserted after the attention output and after the feed-forward output of every block
(Houlsby et al. 2019, arXiv 1902.00751):

    adapter(h) = h + up(gelu(down(h)))      down: hidden -> bottleneck, up: bottleneck -> hidden

`up` starts at zero, so at first every adapter is the identity and the model is exactly
the pretrained one. The pretrained weights are frozen; only the adapters (and the task
head) train.
"""
from __future__ import annotations

import re

import torch
from torch import nn

from .freezing import HEADS

__all__ = ["ADAPTER_POINTS", "BOTTLENECK", "Adapter", "WithAdapter", "add_adapters"]

BOTTLENECK = 64  # the course's default adapter width

# Where the adapters go, per architecture: after the projection that ends each sub-layer.
ADAPTER_POINTS = {
    "bert": (r".*attention\.output\.dense", r".*layer\.\d+\.output\.dense"),
    "distilbert": (r".*attention\.out_lin", r".*ffn\.lin2"),
}


class Adapter(nn.Module):
    def __init__(self, hidden: int, bottleneck: int = BOTTLENECK):
        super().__init__()
        if bottleneck < 1:
            raise ValueError(f"bottleneck must be at least 1, got {bottleneck}: typical values are 16 to 128")
        self.down, self.act, self.up = nn.Linear(hidden, bottleneck), nn.GELU(), nn.Linear(bottleneck, hidden)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)  # zero: the adapter starts as the identity
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, T, hidden) -> (B, T, hidden)
        return h + self.up(self.act(self.down(h)))


class WithAdapter(nn.Module):
    """A pretrained layer followed by an adapter: x -> adapter(layer(x))."""

    def __init__(self, layer: nn.Linear, adapter: Adapter):
        super().__init__()
        self.layer, self.adapter = layer, adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.layer(x))


def add_adapters(model: nn.Module, bottleneck: int = BOTTLENECK, *, points=None, train_also=HEADS) -> list[str]:
    """Freeze `model` and insert an adapter after each layer named by `points`, in place.

    Layer norms and the modules in `train_also` (the task head) stay trainable, as in
    Houlsby et al. Returns the names of the layers that got an adapter.
    """
    if points is None:
        kind = getattr(getattr(model, "config", None), "model_type", None)
        if kind not in ADAPTER_POINTS:
            raise ValueError(f"no adapter placement known for model type {kind!r}: pass points=[regex, ...]")
        points = ADAPTER_POINTS[kind]
    model.requires_grad_(False)
    wrapped = []
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and any(re.fullmatch(p, name) for p in points):
            parent, _, child = name.rpartition(".")
            adapter = Adapter(module.out_features, bottleneck).to(module.weight.device)  # where the model is
            setattr(model.get_submodule(parent), child, WithAdapter(module, adapter))
            wrapped.append(name)
    if not wrapped:
        raise ValueError(f"no layer matches {list(points)}: check the names with model.named_modules()")
    for name, module in model.named_modules():
        if isinstance(module, (Adapter, nn.LayerNorm)) or name.rsplit(".", 1)[-1] in train_also:
            module.requires_grad_(True)
    return wrapped
