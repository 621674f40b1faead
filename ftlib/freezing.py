"""Choosing what trains: layer groups, the head only, the top blocks, or everything.

Introduced in lesson 04 (and used by the command line's --method). Every function
freezes in place and returns (trainable, total) parameter counts, so that a lesson
can show the number after each change.

A model's *layer groups*, from the input to the output: the embeddings, block 0 (the
lowest) to block N-1, whatever sits between the last block and the head (BERT's
pooler), and the head. Gradual unfreezing and discriminative learning rates (Howard &
Ruder 2018, ULMFiT) are both expressed in these groups.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["HEADS", "changed_weights", "count_parameters", "trained_state_dict", "discriminative_lrs", "freeze_all_but_head", "freeze_bottom", "keep_frozen_batchnorm_in_eval",
           "layer_groups", "set_trainable", "transformer_blocks", "unfreeze_all", "unfreeze_top", "weights_snapshot"]

HEADS = ("classifier", "pre_classifier")


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; tied weights are counted once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def trained_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Only the parameters that train (a head, adapters, LoRA matrices): all a fine-tune needs to save."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's list of blocks (BERT: encoder.layer, DistilBERT: transformer.layer, SmallCNN: blocks)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.rsplit(".", 1)[-1] in ("layer", "layers", "h", "blocks"):
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


# --- Layer groups (lesson 04) -------------------------------------------------------------


def _group_of(name: str, model: nn.Module, block_names: list[str], heads) -> str:
    """The layer group of parameter `name`: 'head', 'block i', or its top-level module's name."""
    parts = name.split(".")
    if any(part in heads for part in parts[:-1]):
        return "head"
    for i, prefix in enumerate(block_names):
        if name.startswith(prefix + "."):
            return f"block {i}"
    base = getattr(model, "base_model_prefix", "")
    if base and parts[0] == base and len(parts) > 2:
        parts = parts[1:]  # bert.pooler.dense.weight -> the 'pooler' group
    return parts[0]


def layer_groups(model: nn.Module, heads=HEADS) -> dict[str, list[nn.Parameter]]:
    """The model's parameters by layer group, ordered from the input to the output.

    For BERT: ``embeddings``, ``block 0`` ... ``block N-1``, ``pooler``, ``head``. Groups
    are ordered as their parameters first appear in the model, so whatever comes
    before the first block (embeddings, a CNN's stem) is at the bottom.
    """
    blocks = transformer_blocks(model)
    block_names = [name for name, module in model.named_modules() if any(module is b for b in blocks)]
    groups: dict[str, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():  # shared (tied) weights are listed once
        groups.setdefault(_group_of(name, model, block_names, heads), []).append(p)
    if "head" in groups:
        groups["head"] = groups.pop("head")  # the head is always the top group
    return groups


def set_trainable(model: nn.Module, groups, heads=HEADS) -> tuple[int, int]:
    """Exactly the named layer groups train; every other parameter is frozen."""
    by_name = layer_groups(model, heads)
    unknown = [g for g in groups if g not in by_name]
    if unknown:
        raise ValueError(f"no layer group named {unknown}: this model has {list(by_name)}")
    model.requires_grad_(False)
    for name in groups:
        for p in by_name[name]:
            p.requires_grad_(True)
    return count_parameters(model)


def unfreeze_top(model: nn.Module, k: int, heads=HEADS) -> tuple[int, int]:
    """The head and the top `k` blocks train (with what lies between them, BERT's pooler);
    ``k=0`` is the head alone. The embeddings stay frozen: :func:`unfreeze_all` trains them too."""
    names = list(layer_groups(model, heads))
    blocks = [g for g in names if g.startswith("block ")]
    if not 0 <= k <= len(blocks):
        raise ValueError(f"this model has {len(blocks)} blocks; k must be between 0 and {len(blocks)}, got {k}")
    if k == 0:
        return set_trainable(model, ["head"], heads)
    lowest = names.index(blocks[len(blocks) - k])
    return set_trainable(model, names[lowest:], heads)


def unfreeze_all(model: nn.Module) -> tuple[int, int]:
    """Every parameter trains: full fine-tuning."""
    model.requires_grad_(True)
    return count_parameters(model)


def discriminative_lrs(model: nn.Module, lr: float, factor: float = 2.6, heads=HEADS) -> dict[str, float]:
    """A learning rate per layer group: `lr` for the head (and anything above the blocks),
    divided by `factor` once more for each block further down; the embeddings get the
    lowest rate. ULMFiT used factor 2.6. Pass the result as ``TrainConfig(group_lrs=...)``."""
    if not (lr > 0 and factor >= 1):
        raise ValueError(f"lr must be above 0 and factor at least 1, got lr={lr}, factor={factor}")
    names = list(layer_groups(model, heads))
    blocks = [g for g in names if g.startswith("block ")]
    first_block = names.index(blocks[0]) if blocks else len(names)
    rates = {}
    for i, name in enumerate(names):
        if name.startswith("block "):
            depth = len(blocks) - int(name.split()[1])  # the top block is 1 below the head
        else:
            depth = len(blocks) + 1 if i < first_block else 0  # below the blocks, or above them
        rates[name] = lr / factor**depth
    return rates


# --- BatchNorm in a frozen backbone (lesson 04) -----------------------------------------------

_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def _eval_if_frozen(module: nn.Module, _inputs) -> None:
    # Runs before every forward: model.train() may have switched the layer back on since.
    if module.training and not any(p.requires_grad for p in module.parameters()):
        module.train(False)  # normalise with the stored statistics, and do not update them


def keep_frozen_batchnorm_in_eval(model: nn.Module) -> int:
    """From now on, every BatchNorm layer whose weights are frozen runs in eval mode.

    In train mode a BatchNorm layer normalises with the statistics of the current batch and
    moves its running mean and variance towards them, even when its weights are frozen: a
    "frozen" backbone then still changes. This hook keeps such layers in eval mode, also
    after ``model.train()`` (which ``fit`` calls every epoch), and lets them train again
    when they are unfrozen. Returns the number of BatchNorm layers it watches.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, _BATCHNORMS) and module.affine:
            if not getattr(module, "_ftlib_frozen_bn_hook", False):
                module.register_forward_pre_hook(_eval_if_frozen)
                module._ftlib_frozen_bn_hook = True
            count += 1
    return count


# --- What changed (lessons 04-06, and the tests) -------------------------------------------
def weights_snapshot(model: nn.Module, *, trainable_only: bool = False) -> dict[str, torch.Tensor]:
    """Copies of `model`'s weights on the CPU, wherever the model is, to compare with later.

    With ``trainable_only``: only what training can change (trainable parameters and
    buffers such as BatchNorm statistics), a small fraction of a frozen or LoRA model.
    """
    keep = None
    if trainable_only:
        keep = {n for n, p in model.named_parameters() if p.requires_grad} | {n for n, _ in model.named_buffers()}
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items() if keep is None or k in keep}


def changed_weights(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> list[str]:
    """The names of the weights that differ from `snapshot` (from :func:`weights_snapshot`), compared on the CPU."""
    now = model.state_dict()
    return sorted(k for k, before in snapshot.items() if not torch.equal(before, now[k].detach().cpu()))
