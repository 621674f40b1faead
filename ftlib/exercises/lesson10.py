"""Checks and knowledge test for lesson 10 (Capstone: which method, when).

Each check reads the learner's own comparison table (the rows of
``ftlib.compare.compare_methods``) and raises :class:`~ftlib.exercises.Hint` with a pointer,
never the answer.
"""
from __future__ import annotations

import math
import numbers

from . import Hint, Question, Quiz

__all__ = ["BUDGET", "QUIZ", "check_choice", "check_ratios"]

BUDGET = 0.05  # exercise 1: a saved fine-tune may take at most 5 % of a full checkpoint


def _row(rows, method: str) -> dict:
    for row in rows:
        if row.get("method") == method:
            return row
    raise Hint(f"the table has no row for {method!r}: run the comparison cell (compare_methods) above first")


def check_choice(choice, rows, budget: float = BUDGET) -> None:
    """Exercise 1: the most accurate method whose checkpoint is at most `budget` of the full checkpoint."""
    names = [r["method"] for r in rows]
    if not isinstance(choice, str):
        raise Hint(f"`choice` should be a method's name, a string from the table's first column, got "
                   f"{type(choice).__name__}: take the row's 'method', not the whole row or its accuracy")
    if choice not in names:
        close = [n for n in names if n.lower() == choice.strip().lower()]
        if close:
            raise Hint(f"{choice!r} is spelled differently from the table: use the 'method' value exactly")
        raise Hint(f"{choice!r} is not a method in the table; the methods compared are {names}")
    limit = budget * _row(rows, "full")["checkpoint_bytes"]
    affordable = [r for r in rows if r["checkpoint_bytes"] <= limit]
    best = max(r["accuracy"] for r in affordable)
    row = _row(rows, choice)
    if row in affordable and row["accuracy"] == best:
        return
    if row not in affordable:
        full = _row(rows, "full")
        share = row["checkpoint_bytes"] / full["checkpoint_bytes"]
        if row["trainable"] < full["trainable"]:
            whole = " (ftlib saves this method's fine-tunes whole)" if share > 0.9 else ""
            raise Hint(f"{choice} trains fewer parameters than full fine-tuning, but the budget is about the "
                       f"saved checkpoint: its checkpoint_bytes are {share:.0%} of the full one's{whole}. "
                       "Filter on checkpoint_bytes, not on trainable")
        if row["accuracy"] == max(r["accuracy"] for r in rows):
            raise Hint(f"{choice} has the best accuracy overall, but it is over the budget: keep only the rows "
                       f"whose checkpoint_bytes are at most {budget:.0%} of the full row's, then take the best")
        raise Hint(f"{choice}'s checkpoint is {share:.0%} of the full one's, over the {budget:.0%} budget")
    if row["trainable"] == min(r["trainable"] for r in affordable):
        raise Hint(f"{choice} fits the budget, but fewest parameters is not the question: another method within "
                   "the budget has a higher test accuracy (max over the affordable rows, key 'accuracy')")
    raise Hint(f"{choice} fits the budget, but another method within the budget has a higher test accuracy: "
               "take the max of the affordable rows by 'accuracy'")


def _close(a: float, b: float, rel: float = 0.02) -> bool:
    return b != 0 and abs(a - b) <= rel * abs(b)


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise Hint(f"`{name}` should be a number (a ratio), got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise Hint(f"`{name}` is {value}: a ratio of two positive numbers is positive and finite; "
                   "check that you divided two values from the table")
    return float(value)


def check_ratios(param_ratio, time_ratio, rows) -> None:
    """Exercise 2: full / LoRA, in trainable parameters and in training seconds."""
    p, t = _number(param_ratio, "param_ratio"), _number(time_ratio, "time_ratio")
    full, lora = _row(rows, "full"), _row(rows, "lora")
    true_p = full["trainable"] / lora["trainable"]
    true_t = full["train_seconds"] / lora["train_seconds"]
    if _close(p, true_p) and _close(t, true_t):
        return
    if _close(p, true_t) and _close(t, true_p):
        raise Hint("the two ratios are swapped: param_ratio compares 'trainable', time_ratio 'train_seconds'")
    if not _close(p, true_p):
        if _close(p, 1 / true_p):
            raise Hint("param_ratio is upside down: divide full's 'trainable' by LoRA's, so the result is above 1")
        if _close(p, full["total"] / lora["total"]):
            raise Hint("param_ratio compares the 'total' counts, which are almost equal: use 'trainable'")
        if _close(p, true_p / 100) or _close(p, true_p * 100):
            raise Hint("param_ratio is off by a factor of 100: a ratio of counts needs no percent")
        raise Hint("param_ratio: divide the 'trainable' count of the full row by that of the lora row")
    if _close(t, 1 / true_t):
        raise Hint("time_ratio is upside down: full's 'train_seconds' divided by LoRA's")
    for key, what in [("checkpoint_bytes", "checkpoint sizes"), ("peak_memory_bytes", "peak memories"),
                      ("accuracy", "accuracies")]:
        if full.get(key) and lora.get(key) and _close(t, full[key] / lora[key]) and not _close(t, true_t):
            raise Hint(f"time_ratio divides the {what}; time is the 'train_seconds' column")
    raise Hint("time_ratio: divide the 'train_seconds' of the full row by those of the lora row")


QUIZ = Quiz("Knowledge test: lesson 10", [
    Question(
        "Why does every method in the comparison get the same training examples, epochs and seed?",
        ("So that the runs take the same time",
         "So that a difference in the table comes from the method, not from the data, the budget or luck",
         "Because compare_methods cannot do anything else",
         "Because a different seed would give a different model architecture"),
        1,
        ("They do not take the same time, and that is one of the things we measure.",
         "Right: hold everything else fixed and change one thing. Only the learning rate differs, because each "
         "method needs its own, and the table states it.",
         "It takes epochs, learning rates and the seed as arguments; holding them equal is the point of a fair test.",
         "The seed changes the new head's initial weights and the dropout masks, not the architecture."),
    ),
    Question(
        "LoRA trains a tiny share of the parameters. Why is its training only a little faster than full fine-tuning?",
        ("Because LoRA's matrices are computed on the CPU",
         "Because the forward pass and the backward pass still go through every block of the model",
         "Because the optimizer still updates the frozen weights",
         "It is not: LoRA training is hundreds of times faster"),
        1,
        ("Every part of the model runs on the same device.",
         "Right: the cost of a step is mostly the passes through the model; LoRA saves the gradients and optimizer "
         "state of the frozen weights (memory), not the passes.",
         "Frozen weights get no gradient and no update.",
         "Look at the table's train s column: the time ratio is far smaller than the parameter ratio."),
    ),
    Question(
        "Which method shortens the backward pass itself?",
        ("LoRA", "Adapters", "Head only, or freezing the lower blocks", "Full fine-tuning"),
        2,
        ("LoRA's matrices sit in every block, so the gradient must reach the lowest one.",
         "The lowest adapter is in the first block: the backward pass goes all the way down.",
         "Right: with nothing trainable below block K, the backward pass can stop there; head-only training "
         "needs no backward pass through the encoder at all.",
         "Full fine-tuning needs gradients for every weight, down to the embeddings."),
    ),
    Question(
        "With AdamW in fp32, about how many bytes does each trainable parameter cost in training, "
        "activations not counted?",
        ("4: its weight", "8: weight and gradient", "16: weight, gradient and two optimizer moments",
         "2: it is stored in half precision"),
        2,
        ("The weight is only the start: training adds a gradient and the optimizer's state.",
         "AdamW also keeps two moments (running mean and variance) per parameter, 4 bytes each.",
         "Right: 4 + 4 + 8. A frozen parameter costs only its 4 bytes of weight, which is where parameter-efficient "
         "methods save memory.",
         "fp32 training stores 4-byte values; half precision needs a GPU and mixed precision, and even then the "
         "master weights, gradients and moments usually stay in fp32."),
    ),
    Question(
        "You ran the same fine-tune in the notebook and with `python -m ftlib finetune` on a CPU, "
        "same files, settings and seed. What should you expect?",
        ("Different accuracies: the command line uses another training loop",
         "The same accuracy and best epoch; training times that differ",
         "The same training time to the millisecond",
         "The same accuracy only if the command line also ran inside Jupyter"),
        1,
        ("Both call the same ftlib functions: apply_method, fit, evaluate and save_finetuned.",
         "Right: the same computation gives the same result; times depend on the machine's load, and the "
         "command line also writes checkpoints.",
         "Wall-clock time depends on what else the machine does, and on the checkpoints the command line writes.",
         "The process running the code does not change the computation."),
    ),
])
