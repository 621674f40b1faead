"""Checks and knowledge test for lesson 04 (Freezing).

Each check raises :class:`~ftlib.exercises.Hint` with a pointer, never the answer.
"""
from __future__ import annotations

import copy
import math
import numbers

import torch

from . import Hint, Question, Quiz

__all__ = ["check_block_lrs", "check_freezing_by_hand", "check_top_k_params", "reference_top_and_head", "QUIZ"]


def _blocks(sizes: dict) -> list[str]:
    return [name for name in sizes if name.startswith("block ")]


def _top_k_truth(sizes: dict, k: int) -> int:
    """What ftlib.freezing.unfreeze_top(model, k) trains, from the group sizes (bottom to top)."""
    names = list(sizes)
    lowest = names.index(_blocks(sizes)[-k])
    return sum(sizes[name] for name in names[lowest:])


def check_top_k_params(answer, sizes: dict, k: int) -> None:
    """Exercise 1: the parameters that train after ``unfreeze_top(model, k)``, from the group sizes."""
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real) or not math.isfinite(answer):
        raise Hint(f"the answer should be a number of parameters, got {type(answer).__name__}: add up "
                   "values of `sizes`")
    if answer != int(answer):
        raise Hint("a parameter count is a whole number: add up values of `sizes`, without dividing")
    value, truth = int(answer), _top_k_truth(sizes, k)
    if value == truth:
        return
    names, blocks = list(sizes), _blocks(sizes)
    top_blocks = sum(sizes[b] for b in blocks[-k:])
    above = [n for n in names[names.index(blocks[-1]) + 1:] if n != "head"]  # e.g. BERT's pooler
    slips = [
        (top_blocks, "you counted the top blocks only: the new head trains too (and so does anything "
                     "between the last block and the head)"),
        (top_blocks + sizes["head"], "you left out a group that sits between the last block and the head "
                                     f"({', '.join(above)}): unfreeze_top trains everything above the lowest "
                                     "unfrozen block"),
        (sum(sizes[b] for b in blocks[:k]) + truth - top_blocks,
         "those are the lowest blocks (block 0 is next to the embeddings); unfreeze_top trains the top ones"),
        (truth + sizes.get("embeddings", 0), "the embeddings stay frozen with unfreeze_top: only unfreeze_all "
                                             "trains them"),
        (sum(sizes.values()), "that is every parameter, the 'everything' row: unfreeze_top keeps the lower "
                              "blocks and the embeddings frozen"),
        (sizes["head"], "that is the head alone, unfreeze_top(model, 0)"),
    ]
    for wrong, hint in slips:
        if value == wrong and wrong != truth:
            raise Hint(hint)
    per_block = sizes[blocks[-1]]
    if (value - truth) % per_block == 0 and abs(value - truth) // per_block <= len(blocks):
        raise Hint(f"off by {abs(value - truth) // per_block} block(s): count exactly k = {k} blocks from the top")
    raise Hint("print `sizes` again: add the head, every group above the blocks, and the top k blocks")


def reference_top_and_head(model, top_lr: float, head_factor: float = 10.0):
    """Exercise 2 done by ``ftlib``: only the top block and the head train; the head's rate is `head_factor` x."""
    from ..freezing import layer_groups, set_trainable
    from ..optim import make_optimizer

    top_block = [name for name in layer_groups(model) if name.startswith("block ")][-1]
    counts = set_trainable(model, [top_block, "head"])
    return make_optimizer(model, lr=top_lr, group_lrs={"head": head_factor * top_lr}), counts


def _lr_by_name(optimizer, model) -> dict[str, float]:
    """The learning rate each parameter of `model` gets from `optimizer` (only those it holds)."""
    name_of = {id(p): n for n, p in model.named_parameters()}
    return {name_of.get(id(p), "?"): g["lr"] for g in optimizer.param_groups for p in g["params"]}


def check_freezing_by_hand(my_optimizer, my_model, top_lr: float, head_factor: float = 10.0) -> None:
    """Exercise 2: only the top block and the head train; an optimizer with the head at `head_factor` x `top_lr`."""
    from ..freezing import count_parameters, layer_groups

    groups = layer_groups(my_model)
    top_block = [name for name in groups if name.startswith("block ")][-1]
    training = [name for name, ps in groups.items() if any(p.requires_grad for p in ps)]
    if not training:
        raise Hint("nothing trains: after freezing everything, switch requires_grad back on for the two groups "
                   "that should learn")
    if "head" not in training:
        raise Hint("the head is frozen too: it is new and random, so it must train, or the model cannot "
                   "learn your labels")
    half = [name for name in training if not all(p.requires_grad for p in groups[name])]
    if half:
        raise Hint(f"only some parameters of {half} train: a group trains or is frozen as a whole")
    if set(training) != {top_block, "head"}:
        if len(training) == len(groups):
            raise Hint("everything still trains: freeze every parameter first, then let two groups train again")
        if training == ["head"]:
            raise Hint(f"only the head trains: {top_block!r} should train with it")
        lower = [n for n in training if n not in (top_block, "head")]
        raise Hint(f"{lower} should be frozen: only {top_block!r} (the top block, next to the head) and the head "
                   "train; the groups are listed from the bottom up")
    reference = copy.deepcopy(my_model)
    ref_optimizer, counts = reference_top_and_head(reference, top_lr, head_factor)
    assert count_parameters(my_model) == counts  # the same groups train, so the same counts
    if not isinstance(my_optimizer, torch.optim.Optimizer):
        raise Hint(f"`my_optimizer` should be a torch optimizer (AdamW, as fit uses), got "
                   f"{type(my_optimizer).__name__}")
    mine, truth = _lr_by_name(my_optimizer, my_model), _lr_by_name(ref_optimizer, reference)
    if "?" in mine:
        raise Hint("the optimizer holds weights that are not my_model's: build its groups from `groups`, which "
                   "layer_groups(my_model) returned")
    frozen = sorted({n.split(".")[0] for n in mine if n not in truth})
    missing = [n for n in truth if n not in mine]
    if missing:
        raise Hint(f"{len(missing)} trainable tensors are in no group of the optimizer (e.g. {missing[0]}): "
                   "they would never change")
    if frozen:
        raise Hint("the optimizer also holds frozen weights: give it only the two groups that train")
    rate = {name: {mine[n] for n, _ in _named(my_model, groups[name])} for name in (top_block, "head")}
    if any(len(r) > 1 for r in rate.values()):
        raise Hint("the parameters of one group got different rates: one rate for the whole top block, "
                   "one for the whole head")
    block_lr, head_lr = rate[top_block].pop(), rate["head"].pop()
    if math.isclose(block_lr, head_lr, rel_tol=1e-6):
        raise Hint("both groups got the same learning rate: the new head should take larger steps than the "
                   "pretrained block")
    if math.isclose(head_lr, top_lr, rel_tol=1e-6) and math.isclose(block_lr, top_lr / head_factor, rel_tol=1e-6):
        raise Hint("the ratio is right, but the top block should keep the rate `top_lr`; the head gets the larger one")
    if math.isclose(block_lr, head_factor * top_lr, rel_tol=1e-6) and math.isclose(head_lr, top_lr, rel_tol=1e-6):
        raise Hint("upside down: the pretrained top block gets the larger rate, the new head the smaller")
    if not math.isclose(block_lr, top_lr, rel_tol=1e-6):
        raise Hint("the top block's rate is off: it trains at `top_lr` itself")
    if not math.isclose(head_lr, head_factor * top_lr, rel_tol=1e-6):
        raise Hint(f"the head's rate is off: it should be {head_factor:g} times the block's")
    if not all(math.isclose(mine[n], truth[n], rel_tol=1e-6) for n in truth):  # make_optimizer(group_lrs=...)
        raise Hint("some weights got a rate that neither group should have: one rate per group, two groups")


def _named(model, params) -> list[tuple[str, torch.nn.Parameter]]:
    ids = {id(p) for p in params}
    return [(n, p) for n, p in model.named_parameters() if id(p) in ids]


def _lr_truth(top_lr: float, factor: float, blocks: list[str]) -> dict:
    n = len(blocks)
    return {b: top_lr / factor ** (n - 1 - i) for i, b in enumerate(blocks)}


def _close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-6) for k in a)


def check_block_lrs(block_lrs, top_lr: float, factor: float, n_blocks: int) -> None:
    """Exercise 3: a learning rate per block, `top_lr` for the top one, divided by `factor` per step down."""
    blocks = [f"block {i}" for i in range(n_blocks)]
    if not isinstance(block_lrs, dict):
        raise Hint(f"`block_lrs` should be a dict such as {{'block 0': ..., 'block 1': ...}}, got "
                   f"{type(block_lrs).__name__}")
    missing = [b for b in blocks if b not in block_lrs]
    extra = [k for k in block_lrs if k not in blocks]
    if missing or extra:
        raise Hint(f"one entry per block, named 'block 0' to 'block {n_blocks - 1}'; missing {missing}, "
                   f"not expected {extra}")
    bad = [k for k, v in block_lrs.items() if isinstance(v, bool) or not isinstance(v, numbers.Real)
           or not v > 0 or not math.isfinite(v)]
    if bad:
        raise Hint(f"each learning rate should be a positive number; look at {bad}")
    answer = {b: float(block_lrs[b]) for b in blocks}
    if _close(answer, _lr_truth(top_lr, factor, blocks)):
        return
    reversed_truth = dict(zip(blocks, reversed(list(_lr_truth(top_lr, factor, blocks).values()))))
    if _close(answer, reversed_truth):
        raise Hint("upside down: block 0 is the lowest block, next to the embeddings, and should learn slowest")
    if _close(answer, {b: top_lr * factor ** (n_blocks - 1 - i) for i, b in enumerate(blocks)}):
        raise Hint("the lower blocks got larger rates: going down, divide by the factor instead of multiplying")
    if _close(answer, _lr_truth(top_lr / factor, factor, blocks)):
        raise Hint("every rate is one factor too small: the top block itself trains at top_lr")
    if _close(answer, _lr_truth(top_lr * factor, factor, blocks)):
        raise Hint("every rate is one factor too large: the top block trains at top_lr, the one below it "
                   "at top_lr divided once")
    if len(set(answer.values())) == 1:
        raise Hint("all blocks got the same rate: each step down divides by the factor once more")
    top = answer[blocks[-1]]
    if math.isclose(top, top_lr, rel_tol=1e-6):
        raise Hint("the top block is right; below it, block i is (top block - i) steps down: divide by the "
                   "factor that many times (a power)")
    raise Hint("start from the top block, at top_lr, and divide by the factor once for each step down")


QUIZ = Quiz("Knowledge test: lesson 04", [
    Question(
        "Training the head only, an epoch is much faster than full fine-tuning on the same data. Why?",
        ("The frozen blocks are skipped in the forward pass",
         "No gradient has to flow back through the frozen body, and its weights need no optimizer update",
         "A frozen model uses a smaller batch",
         "The head has fewer layers to evaluate on the validation set"),
        1,
        ("The forward pass still goes through every block: the head needs the body's features.",
         "Right: the backward pass stops at the head, and there are no gradients or AdamW moments for the body "
         "(this also saves memory).",
         "The batch size is the same; only what trains changes.",
         "Validation runs the whole model in both cases."),
    ),
    Question(
        "A CNN's backbone is frozen (requires_grad=False) and the model trains in train() mode. "
        "What happens to its BatchNorm layers?",
        ("Nothing: frozen layers never change",
         "Their running mean and variance still move towards the new data's statistics",
         "Their weights and biases are updated",
         "They are removed from the model"),
        1,
        ("requires_grad only stops gradient updates; BatchNorm's statistics are buffers, updated in every "
         "train-mode forward pass.",
         "Right: the 'frozen' backbone changes anyway. Keep frozen BatchNorm layers in eval mode "
         "(keep_frozen_batchnorm_in_eval) if you want it truly frozen.",
         "The weights have no gradient; what changes is the statistics, which are not parameters.",
         "Freezing does not change the architecture."),
    ),
    Question(
        "Gradual unfreezing (ULMFiT) trains the new head first and unfreezes lower blocks later. Why this order?",
        ("The lower blocks are the slowest to compute",
         "A random new head sends large, noisy gradients at first; letting it settle first protects the "
         "pretrained blocks, and the lowest blocks hold the most general features",
         "The embeddings cannot be trained at all",
         "It is the only order that PyTorch allows"),
        1,
        ("Each block costs about the same; the order is about what the gradients would do to them.",
         "Right: the blocks that need the least change are unfrozen last, when the gradients are already useful.",
         "They can (unfreeze_all trains them), they just need it least.",
         "Any parameter can be frozen or unfrozen, in any order."),
    ),
    Question(
        "With discriminative learning rates, which parameters get the smallest rate?",
        ("The new head", "The top block", "The embeddings and the lowest blocks", "All get the same rate"),
        2,
        ("The head is new and random: it needs the largest rate.",
         "The top block is the most task-specific: it gets the largest rate after the head.",
         "Right: they hold general features (words, syntax) that the task should barely change.",
         "Then they would not be discriminative: that is the plain recipe."),
    ),
    Question(
        "An LR finder curve falls from 1e-6 to 1e-3, is lowest at 1e-2 and shoots up after it. Which "
        "learning rate do you try first?",
        ("1e-6, where the loss is highest", "About 1e-3, where the loss falls fastest (or 1e-2 / 10)",
         "1e-2, where the loss is lowest", "1e-1, to train as fast as possible"),
        1,
        ("There the loss hardly moves at all: training would be very slow.",
         "Right: steep descent means the rate is large enough to learn and still well below the edge.",
         "The lowest point is already next to divergence, and the finder's loss lags the rate: it is too large.",
         "Beyond the minimum the loss explodes: training diverges."),
    ),
])
