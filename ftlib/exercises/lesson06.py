"""Checks and knowledge test for lesson 06 (LoRA)."""
from __future__ import annotations

import torch

from . import Hint, Question, Quiz

__all__ = ["QUIZ", "check_lora_forward", "check_lora_params", "check_chosen_rank"]


def check_lora_params(lora_params, d_in: int, d_out: int, r: int) -> None:
    """Exercise 1: trainable numbers LoRA adds to one d_in -> d_out linear layer at rank r."""
    if not isinstance(lora_params, int):
        raise Hint(f"`lora_params` should be a whole number, got {type(lora_params).__name__}")
    truth = r * (d_in + d_out)
    if lora_params == truth:
        return
    if lora_params in (r * d_in, r * d_out):
        raise Hint("that is one of the two matrices: LoRA trains both A and B")
    if lora_params == d_in * d_out:
        raise Hint("that is the size of the frozen weight W0 itself, which LoRA does not train")
    if lora_params in (r * r, 2 * r * r):
        raise Hint("A and B are not r x r: A maps d_in numbers down to r, B maps r back up to d_out")
    raise Hint("write down the shapes of A and B, then add up their entries")


def check_lora_forward(my_h, W0, A, B, x, alpha, r) -> None:
    """Exercise 2: h = W0·x + (alpha / r)·B·A·x, for a batch of row vectors x."""
    if not isinstance(my_h, torch.Tensor):
        raise Hint(f"`my_h` should be a tensor, got {type(my_h).__name__}")
    truth = x @ W0.T + (alpha / r) * (x @ A.T @ B.T)
    if my_h.shape != truth.shape:
        raise Hint(f"your result has shape {tuple(my_h.shape)}, expected {tuple(truth.shape)}: "
                   "x holds one example per row, so multiply by the transposed matrices")
    if torch.allclose(my_h, x @ W0.T + x @ A.T @ B.T, atol=1e-5) and alpha != r:
        raise Hint("the low-rank update is scaled: multiply it by alpha / r")
    if torch.allclose(my_h, (alpha / r) * (x @ A.T @ B.T), atol=1e-5):
        raise Hint("that is only the update: the frozen layer's own output W0·x is still there")
    if not torch.allclose(my_h, truth, atol=1e-5):
        raise Hint("not yet equal to W0·x + (alpha/r)·B·A·x: check the order A first, then B")


def check_chosen_rank(chosen_r, results) -> None:
    """Exercise 3: the smallest rank whose accuracy is within one point of the best."""
    ranks = {row["r"]: row["accuracy"] for row in results}
    if chosen_r not in ranks:
        raise Hint(f"choose one of the ranks that were run: {sorted(ranks)}")
    best = max(ranks.values())
    good = sorted(r for r, acc in ranks.items() if acc >= best - 0.01)
    if chosen_r not in good:
        raise Hint(f"rank {chosen_r} is more than one point below the best accuracy ({best:.3f})")
    if chosen_r != good[0]:
        raise Hint("a smaller rank is also within one point of the best: fewer parameters, same quality")


QUIZ = Quiz("Knowledge test: lesson 06", [
    Question(
        "Why is B initialised to zero (and not A)?",
        ("So that training is faster", "So that the adapted model starts exactly as the pretrained one, while gradients still reach B",
         "Because zeros use less memory", "It makes no difference"),
        1,
        ("Speed is the same; the reason is the starting point.",
         "Right: B·A = 0 at first, so outputs are unchanged; with A random, the gradient of B is not zero and training starts.",
         "A zero matrix takes as much memory as any other.",
         "If both were zero, no gradient would reach either, and LoRA would never train."),
    ),
    Question(
        "A 384 x 384 projection gets LoRA with r = 8. About how many numbers train there?",
        ("147,456", "6,144", "64", "3,072"),
        1,
        ("That is the frozen W0 (384 x 384).",
         "Right: A is 8 x 384 and B is 384 x 8, 2 x 8 x 384 = 6,144: about 4 % of W0.",
         "That is r x r; A and B connect r to the layer's width.",
         "That is only one of the two matrices."),
    ),
    Question(
        "After merging (W = W0 + (alpha/r)·B·A), what changes at prediction time?",
        ("Predictions get worse", "Nothing in the outputs, and the extra matrix multiplications disappear",
         "The model needs peft to run", "The adapter file becomes larger"),
        1,
        ("Merging is exact arithmetic: the outputs stay the same (up to rounding).",
         "Right: a merged model is an ordinary model, as fast as the original.",
         "A merged model is a plain transformers model.",
         "Merging does not touch the saved adapter; it changes the in-memory model."),
    ),
    Question(
        "In the rank sweep, accuracy barely changes from r = 4 to r = 64. What does that suggest?",
        ("LoRA is broken", "The update the task needs has a low rank: a few directions suffice",
         "A larger rank always overfits", "The learning rate was wrong for every run"),
        1,
        ("The runs learn: all are far above the untrained model.",
         "Right: Hu et al. found very small ranks enough on many tasks; the extra parameters add little.",
         "It can, but the sweep shows no sign of it here; the point is that small ranks suffice.",
         "One shared rate explains nothing about why ranks agree."),
    ),
    Question(
        "With alpha fixed, what does doubling r do to the scaling alpha / r?",
        ("Doubles it", "Halves it", "Nothing", "Squares it"),
        1,
        ("alpha / (2r) is half of alpha / r.",
         "Right: that is why alpha and r are usually tuned together (or alpha set to 2r).",
         "The scaling depends on r.",
         "It is a division, not a power."),
    ),
])
