"""Checks and knowledge test for lesson 04 (Freezing).

Each check raises :class:`~ftlib.exercises.Hint` with a pointer, never the answer.
"""
from __future__ import annotations

import math
import numbers

from . import Hint, Question, Quiz

__all__ = ["check_block_lrs", "check_top_k_params", "QUIZ"]


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


def _lr_truth(top_lr: float, factor: float, blocks: list[str]) -> dict:
    n = len(blocks)
    return {b: top_lr / factor ** (n - 1 - i) for i, b in enumerate(blocks)}


def _close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-6) for k in a)


def check_block_lrs(block_lrs, top_lr: float, factor: float, n_blocks: int) -> None:
    """Exercise 2: a learning rate per block, `top_lr` for the top one, divided by `factor` per step down."""
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
