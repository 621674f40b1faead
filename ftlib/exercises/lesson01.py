"""Checks and knowledge test for lesson 01 (Choosing a pretrained model).

Each check raises :class:`~ftlib.exercises.Hint` with a pointer, never the answer.
"""
from __future__ import annotations

import math
import numbers

from . import Hint, Question, Quiz

__all__ = ["check_largest_batch", "check_probe_choice", "check_training_state_bytes", "largest_batch", "QUIZ"]


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise Hint(f"`{name}` should be a number, got {value!r}")
    return float(value)


def check_training_state_bytes(state_bytes, params: int) -> None:
    """Exercise 1: weights + gradients + AdamW state of full fp32 fine-tuning, in bytes."""
    value = _number(state_bytes, "state_bytes")
    near = lambda per_param: math.isclose(value, per_param * params, rel_tol=0.01)  # noqa: E731
    if near(16):
        return
    if near(16 / 1e9) or near(16 / 2**30) or near(16 / 1e6) or near(16 / 2**20):
        raise Hint("the right sum, but in GB or MB: give the answer in bytes")
    if near(16 * 8):
        raise Hint("that is bits: a byte holds 8 bits, and sizes here are in bytes")
    if near(4):
        raise Hint("that is the weights only; training also keeps a gradient for every trainable "
                   "parameter, and AdamW keeps its own numbers per parameter")
    if near(8):
        raise Hint("weights and gradients: AdamW also keeps two running averages per parameter (m and v)")
    if near(12):
        raise Hint("AdamW keeps *two* fp32 numbers per parameter (the first and the second moment)")
    if near(18):
        raise Hint("that is the mixed-precision figure (fp32 weights plus a half-precision copy); "
                   "this question is about plain fp32")
    if near(2) or near(6) or near(10):
        raise Hint("fp32 numbers take 4 bytes each, not 2: 2 bytes is fp16 / bf16")
    raise Hint("add up bytes per parameter: the weight, its gradient, and AdamW's two moments, "
               "all fp32 (4 bytes each); then multiply by `params`")


def largest_batch(model, *, seq_len: int, budget: float, precision: str, max_batch: int = 4096) -> int:
    """The largest batch size whose estimate fits in `budget` bytes (0 if not even 1 fits)."""
    from ..memory import estimate_training_memory

    def fits(b):
        return estimate_training_memory(model, batch_size=b, seq_len=seq_len, precision=precision).fits(budget)

    lo, hi = 0, max_batch  # invariant: lo fits (or is 0), hi + 1 does not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def check_largest_batch(batch, model, *, seq_len: int, budget: float, precision: str) -> None:
    """Exercise 2: the largest batch of `seq_len` tokens whose estimate fits in `budget`."""
    value = _number(batch, "batch")
    if value != int(value) or value < 0:
        raise Hint(f"a batch size is a whole number of sequences, got {batch}")
    value, truth = int(value), largest_batch(model, seq_len=seq_len, budget=budget, precision=precision)
    if value == truth:
        return
    if truth and value == largest_batch(model, seq_len=seq_len, budget=budget, precision="fp32"):
        raise Hint(f"that is the answer for fp32; a T4 trains in {precision} (mixed precision): "
                   "pass precision= to the estimate")
    if value > truth:
        raise Hint("the estimate for that batch is above the budget: look at est.total, "
                   "not at one part of it, and compare with the budget")
    raise Hint("that batch fits, but a larger one fits too (the largest need not be a power of two): "
               "loop over batch sizes and keep the last one for which "
               "estimate_training_memory(...).fits(budget) is True")


def check_probe_choice(choice, results) -> None:
    """Exercise 3: the candidate a linear probe says to fine-tune (a key of `results`)."""
    if not isinstance(choice, str):
        raise Hint(f"`choice` should be the name of a candidate (a string), got {type(choice).__name__}")
    if choice not in results:
        raise Hint(f"{choice!r} is not one of the candidates: choose one of {sorted(results)}")
    best = max(results, key=lambda name: results[name]["accuracy"])
    if results[choice]["accuracy"] == results[best]["accuracy"]:
        return
    by_train = max(results, key=lambda name: results[name]["train_accuracy"])
    if choice == by_train:
        raise Hint("you chose by training accuracy: a probe with many features can fit its training "
                   "examples whatever they mean; compare the held-out accuracy")
    raise Hint("compare the candidates' held-out probe accuracy (the 'accuracy' column): "
               "the higher, the better the frozen features separate the classes")


QUIZ = Quiz("Knowledge test: lesson 01", [
    Question(
        "You need to classify customer e-mails into five departments. Which family do you start from?",
        ("An encoder such as BERT or DistilBERT, with a classification head",
         "A vision backbone such as ResNet",
         "A causal LM, always: generation models are more capable",
         "Any model: the head decides everything"),
        0,
        ("Right: an encoder reads the whole text in both directions and a small head maps it to labels; "
         "it is small, fast and made for this.",
         "ResNet takes pixels, not text.",
         "A causal LM can classify too, but it is larger and slower for the same job; start small.",
         "The head only maps features to labels: the pretrained body decides how good the features are."),
    ),
    Question(
        "Full fine-tuning with AdamW in mixed precision (fp16) costs about how much per parameter, before "
        "activations?",
        ("2 bytes", "4 bytes", "about 18 bytes", "about 100 bytes"),
        2,
        ("That is only the half-precision copy of the weights.",
         "That is the fp32 weights alone.",
         "Right: fp32 weights 4 + half copy 2 + fp32 gradients 4 + AdamW's two moments 8.",
         "Far too much; the parts add up to under 20 bytes."),
    ),
    Question(
        "Doubling the batch size roughly doubles which part of training memory?",
        ("The weights", "The optimizer state", "The activations", "All of them"),
        2,
        ("Weights do not depend on the batch.",
         "The optimizer keeps numbers per parameter, not per example.",
         "Right: activations are kept for every token of every example in the batch.",
         "Only the activations grow with the batch; that is why a smaller batch (or gradient accumulation) "
         "is the first fix for an out-of-memory error."),
    ),
    Question(
        "A tokenizer splits your Korean sentences into 8 tokens per word, or produces many [UNK] tokens. "
        "What does that tell you?",
        ("Nothing: tokenization does not matter after fine-tuning",
         "The model saw little Korean when it was pretrained: expect weaker results and longer, costlier "
         "sequences; prefer a multilingual model",
         "Use a larger batch",
         "Remove the Korean sentences"),
        1,
        ("Fine-tuning cannot recover words the tokenizer maps to [UNK], and every extra token costs memory "
         "and time.",
         "Right: the vocabulary reflects the pretraining text; a poor fit is a warning sign.",
         "The batch size does not change how text is split.",
         "Only if you do not need them; usually the task needs them, so change the model instead."),
    ),
    Question(
        "Why run a linear probe before fine-tuning?",
        ("It replaces fine-tuning",
         "It ranks candidate models cheaply: frozen features, one forward pass each, and a tiny classifier",
         "It measures the memory a model needs",
         "It checks the model's licence"),
        1,
        ("Fine-tuning usually does better than a probe; the probe only compares starting points.",
         "Right: features are extracted once, and the candidate whose features separate the classes "
         "best is usually the better one to fine-tune.",
         "Memory comes from the estimate (or PeakMemory), not from the probe.",
         "The licence is in the model card: read it, no probe can check it."),
    ),
    Question(
        "Before choosing a model for a product, what must you read in its model card?",
        ("Only the download count",
         "The licence, the training data, the intended uses and limitations, and the evaluation results",
         "Nothing: models on the hub are free for any use",
         "The number of layers only"),
        1,
        ("Popularity says nothing about whether you may use it or whether it suits your data.",
         "Right: the licence says what you may do; the data, intended uses and results say whether it fits.",
         "Licences differ: some forbid commercial use or require attribution or sharing.",
         "The size is in the config; the card tells you what the model is for and what it may not be used for."),
    ),
])
