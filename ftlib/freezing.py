"""Choosing what trains: the head only, or everything above the first K blocks.

Introduced in lesson 04 (and used by the command line's --method). Every function
freezes in place and returns (trainable, total) parameter counts, so that a lesson
can show the number after each change.
"""
from __future__ import annotations

from torch import nn

from .models import count_parameters

__all__ = ["HEADS", "freeze_all_but_head", "freeze_bottom", "transformer_blocks"]

HEADS = ("classifier", "pre_classifier")


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's list of transformer blocks (BERT: encoder.layer, DistilBERT: transformer.layer)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.rsplit(".", 1)[-1] in ("layer", "layers", "h"):
            return module
    raise ValueError(f"no list of transformer blocks found in {type(model).__name__}: freeze it by hand")


def _unfreeze_head(model: nn.Module, heads) -> None:
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] in heads:
            module.requires_grad_(True)


def freeze_all_but_head(model: nn.Module, heads=HEADS) -> tuple[int, int]:
    """Train only the new task head: the pretrained body becomes a fixed feature extractor."""
    model.requires_grad_(False)
    _unfreeze_head(model, heads)
    return count_parameters(model)


def freeze_bottom(model: nn.Module, k: int, heads=HEADS) -> tuple[int, int]:
    """Freeze the embeddings and the first `k` blocks; the blocks above them and the head train."""
    blocks = transformer_blocks(model)
    if not 0 <= k <= len(blocks):
        raise ValueError(f"this model has {len(blocks)} blocks; freeze:K needs K between 0 and {len(blocks)}, got {k}")
    model.requires_grad_(True)
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] == "embeddings":
            module.requires_grad_(False)
    for block in list(blocks)[:k]:
        block.requires_grad_(False)
    _unfreeze_head(model, heads)
    return count_parameters(model)
