"""GPU memory during training: the pre-flight estimate, and what ``fit`` does after running out.

Introduced in lesson 01 (memory) and used by ``fit`` on a GPU. Before training, ``preflight``
compares the estimate of ``ftlib.memory`` with the GPU's memory and says whether the step
will fit. If a step runs out of memory all the same, ``OutOfMemoryBackoff`` cuts every batch
into twice as many pieces and computes the step again: each piece needs less memory, and
because each piece's loss is weighted by its share of the batch, the gradient (and so the
training) is unchanged, only slower.
"""
from __future__ import annotations

import math

import torch

from .distributed import is_main
from .freezing import count_parameters
from .runtime import Runtime

__all__ = ["OutOfMemoryBackoff", "preflight"]


class OutOfMemoryBackoff:
    """Runs an optimizer step on pieces of its batches; after an out-of-memory error, on pieces half as big."""

    def __init__(self, pieces: int = 1):
        self.pieces = pieces  # pieces per batch (1: whole batches); kept for the rest of the run

    def split(self, batches: list[dict]) -> list[tuple[dict, float]]:
        """(piece, weight) pairs: every batch cut into ``self.pieces`` parts, each weighted by its share of the step."""
        pairs = []
        for batch in batches:
            n = len(batch["labels"])
            if self.pieces == 1:
                pairs.append((batch, 1.0 / len(batches)))
                continue
            for rows in torch.arange(n).chunk(min(self.pieces, n)):
                pairs.append(({k: v[rows] for k, v in batch.items()}, len(rows) / n / len(batches)))
        return pairs

    def retry(self, step, batches: list[dict]):
        """``step(self.split(batches))``, again with smaller pieces as long as the GPU runs out of memory."""
        while True:
            try:
                return step(self.split(batches))
            except torch.OutOfMemoryError:
                pass  # handled outside the except block, so that the failed step's tensors are freed
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            largest = max(len(batch["labels"]) for batch in batches)
            if self.pieces >= largest:
                raise torch.OutOfMemoryError(
                    "out of memory even with one example per micro-batch: lower max_length, train fewer "
                    "parameters (method 'lora' or 'head'), or choose a smaller model")
            self.pieces *= 2
            if is_main():
                print(f"Out of memory: each batch of {largest} now runs as {self.pieces} micro-batches of about "
                      f"{math.ceil(largest / self.pieces)}, with their gradients accumulated (the effective batch "
                      "is unchanged).")


def preflight(model, loader, runtime: Runtime) -> str:
    """A GPU memory estimate for the coming training step, and a warning when it will not fit.

    The estimate (``ftlib.memory``) takes the loader's batch size and longest example; a
    run that does not fit still trains, because ``fit`` splits batches after an
    out-of-memory error, but more slowly.
    """
    from .memory import device_budget, estimate_training_memory

    sampler = loader.batch_sampler
    try:
        estimate = estimate_training_memory(model, batch_size=sampler.batch_size, seq_len=max(sampler.lengths),
                                            precision=runtime.precision, trainable=count_parameters(model)[0],
                                            flash_attention=True)
    except (AttributeError, KeyError, TypeError, ValueError):  # not a transformer whose shape it knows
        return "Pre-flight: no memory estimate for this model."
    budget = device_budget(runtime.device)
    need, have = estimate.total / 1e9, budget / 1e9
    if estimate.total <= 0.9 * budget:
        return f"Pre-flight: about {need:.1f} GB of {have:.1f} GB GPU memory needed."
    return (f"Pre-flight warning: this step needs about {need:.1f} GB but the GPU has {have:.1f} GB. Training "
            "will split batches if it runs out of memory (slower); or lower batch_size or max_length, or "
            "train fewer parameters (LoRA).")
