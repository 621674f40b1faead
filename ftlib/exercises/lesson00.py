"""Checks and knowledge test for lesson 00 (Welcome: your first fine-tune).

Each check raises :class:`~ftlib.exercises.Hint` with a pointer, never the answer.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import numbers
from collections import Counter

import torch

from . import Hint, Question, Quiz

__all__ = ["check_label_counts", "check_training_epoch", "check_accuracy", "check_mistake", "reference_epoch", "QUIZ"]


def check_label_counts(train_counts, train_split, id2label) -> None:
    """Exercise 1: a dict from label *name* to the number of training examples with it."""
    if not isinstance(train_counts, dict):
        raise Hint(f"`train_counts` should be a dict, got {type(train_counts).__name__}")
    truth = {id2label[i]: n for i, n in Counter(train_split["label"]).items()}
    if set(train_counts) != set(truth):
        if all(isinstance(k, int) for k in train_counts):
            raise Hint("your keys are label ids (0, 1); use the label names: look them up in id2label")
        raise Hint(f"the keys should be the label names, {len(truth)} of them; yours are {sorted(map(str, train_counts))}")
    if sum(train_counts.values()) != len(train_split):
        raise Hint(f"your counts add up to {sum(train_counts.values())}, but the training split has "
                   f"{len(train_split)} examples: count the training split only, not the whole file")
    wrong = [k for k in truth if train_counts[k] != truth[k]]
    if wrong:
        raise Hint(f"the count for {wrong[0]!r} is off: count how often its id appears in train_split['label']")


def reference_epoch(start_model, batches, runtime, *, lr: float, seed: int = 0):
    """The course's loop on `batches`, from a copy of `start_model`: ``train_step`` once per batch.

    As in exercise 2: fit's optimizer (``make_optimizer``), full precision, no gradient clipping
    and a constant learning rate. Returns (the loss of each batch, the trained copy).
    """
    from ..optim import make_optimizer
    from ..runtime import seed_everything
    from ..training import train_step

    model = copy.deepcopy(start_model).train()
    optimizer = make_optimizer(model, lr=lr)
    constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    fp32 = dataclasses.replace(runtime, precision="fp32")  # no autocast, hence no GradScaler
    seed_everything(seed)  # the same dropout as the learner's loop
    losses = [train_step(model, [(batch, 1.0)], optimizer, constant, fp32, scaler=None, max_grad_norm=None)
              for batch in batches]
    return losses, model


def _without_zero_grad(start_model, batches, *, lr: float, seed: int):
    """The typical slip, replayed: the same loop, but the gradients are never cleared."""
    from ..optim import make_optimizer
    from ..runtime import model_device, move_to, seed_everything

    model = copy.deepcopy(start_model).train()
    optimizer = make_optimizer(model, lr=lr)
    seed_everything(seed)
    for batch in batches:
        model(**move_to(batch, model_device(model))).loss.backward()
        optimizer.step()
    return model


@torch.no_grad()
def _distance(a, b) -> float:
    """The L2 distance between the weights of two models of the same architecture."""
    return math.sqrt(sum((p.float() - q.float().to(p.device)).pow(2).sum().item()
                         for p, q in zip(a.parameters(), b.parameters())))


def check_training_epoch(my_losses, my_model, start_model, batches, runtime, lr: float, seed: int = 0) -> None:
    """Exercise 2: one epoch by hand; `my_model` trained from `start_model`'s weights, one loss per batch."""
    if not isinstance(my_losses, (list, tuple)):
        raise Hint(f"`my_losses` should be a list with one loss per batch, got {type(my_losses).__name__}")
    if len(my_losses) != len(batches):
        raise Hint(f"`my_losses` holds {len(my_losses)} losses for {len(batches)} batches: record the loss of "
                   "every batch, once, inside the loop")
    values = []
    for v in my_losses:
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise Hint(f"each entry of `my_losses` should be one batch's loss as a number, got {type(v).__name__}")
        values.append(float(v))
    moved = _distance(my_model, start_model)
    if moved == 0:
        raise Hint("the weights of `my_model` did not change: either no gradients were computed, or the "
                   "optimizer never applied them (or the loop trained another model)")
    ref_losses, ref_model = reference_epoch(start_model, batches, runtime, lr=lr, seed=seed)
    gap = _distance(my_model, ref_model) / max(_distance(ref_model, start_model), 1e-12)
    losses_agree = all(math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-4) for a, b in zip(values, ref_losses))
    if gap < 0.02 and losses_agree:
        return
    if gap < 0.02:
        raise Hint("the weights are right, but `my_losses` is not: record each batch's loss, the one its "
                   "forward pass computed, before the step")
    if _distance(my_model, _without_zero_grad(start_model, batches, lr=lr, seed=seed)) < 0.02 * moved:
        raise Hint("from the second batch on, your steps also used the gradients of the earlier batches: "
                   "gradients add up in .grad until something clears them")
    if math.isclose(values[0], ref_losses[0], rel_tol=1e-3, abs_tol=1e-4):
        raise Hint("the first loss is right but the weights end elsewhere than with the course's loop: do the "
                   "five steps once per batch, in the order of train_step above, with the optimizer you were given")
    raise Hint("already the first batch's loss differs from the course's: compute it with `my_model` in "
               "training mode, on the batch moved to the model's device, without changing anything else")


def check_accuracy(my_accuracy, preds, labels) -> None:
    """Exercise 3: accuracy computed by hand from two lists."""
    try:
        value = float(my_accuracy)
    except (TypeError, ValueError):
        raise Hint(f"`my_accuracy` should be a number between 0 and 1, got {my_accuracy!r}") from None
    correct = sum(int(p == y) for p, y in zip(preds, labels))
    truth = correct / len(labels)
    if abs(value - 100 * truth) < 1e-6 and truth not in (0.0, 0.01):
        raise Hint("that is a percentage; the course writes accuracy as a fraction between 0 and 1")
    if abs(value - correct) < 1e-9 and correct > 1:
        raise Hint("that is the number of correct predictions: divide by the number of examples")
    if abs(value - (1 - truth)) < 1e-9 and truth != 0.5:
        raise Hint("that is the error rate: you counted the predictions that differ from the labels")
    if abs(value - truth) > 1e-9:
        raise Hint("not the fraction of positions where the prediction equals the label: compare preds[i] with labels[i]")


def check_mistake(a_mistake, model_predict, test_texts, test_labels) -> None:
    """Exercise 4: the text of a test review that the fine-tuned model gets wrong."""
    if not isinstance(a_mistake, str):
        raise Hint(f"`a_mistake` should be the review's text (a str), got {type(a_mistake).__name__}")
    if a_mistake not in test_texts:
        raise Hint("that text is not in the test split: copy a review from test_split['text'] exactly")
    truth = test_labels[test_texts.index(a_mistake)]
    predicted = model_predict([a_mistake])[0]
    if predicted == truth:
        raise Hint(f"the model gets this one right (it says {predicted!r}): look for a review whose "
                   "prediction differs from its label")


QUIZ = Quiz("Knowledge test: lesson 00", [
    Question(
        "What does fine-tuning change?",
        ("Only the tokenizer's vocabulary",
         "The weights of a model that was already trained, using a smaller labelled dataset",
         "Only the learning rate schedule",
         "Nothing: it measures how good the pretrained model is"),
        1,
        ("The tokenizer stays as it is: it must match the embeddings the model learned.",
         "Right: training continues from pretrained weights, on data for your task.",
         "The schedule is a setting of training, not what training changes.",
         "That is evaluation. Fine-tuning trains."),
    ),
    Question(
        "The loading report says the classifier weights are MISSING and newly initialised. What does that mean?",
        ("The download failed and the model is broken",
         "The whole model is random",
         "The pretrained checkpoint has no head for your labels, so a new one starts from random values",
         "You must train from scratch"),
        2,
        ("Nothing failed: all body weights loaded; only the head is new.",
         "Only the small new head is random; the millions of weights of the body are pretrained.",
         "Right: the encoder was pretrained without your labels; fine-tuning trains the new head with it.",
         "No: the point of fine-tuning is to keep the pretrained body."),
    ),
    Question(
        "Why is the test split used only once, at the end?",
        ("It is too small to train on",
         "Every choice made by looking at it makes its score optimistic; the validation split is for choices",
         "Evaluating it is slow",
         "The library does not allow more"),
        1,
        ("Its size is not the reason: any data we choose with stops being an honest measurement.",
         "Right: choose settings on validation, then report test once.",
         "Evaluation is fast; the issue is honesty, not time.",
         "Nothing stops you, which is why discipline matters."),
    ),
    Question(
        "A bag-of-words model scores well below the fine-tuned encoder on the course reviews. Which reviews are hardest for it?",
        ("Short ones", "Ones with negation or contrast, like 'not bad at all' or 'great screen, awful battery'",
         "Ones about films", "Ones with typos"),
        1,
        ("Length alone is not the problem; how the words combine is.",
         "Right: the verdict depends on how a whole sentence is built. Counts of words and word pairs see "
         "'not bad' as a pair, but not which half of 'great screen, awful battery' decides.",
         "The domain matters less than how the sentence is built.",
         "Typos hurt both models a little; they do not explain the gap."),
    ),
    Question(
        "Your Colab session disconnects after epoch 2 of 3. What lets you continue instead of starting over?",
        ("Nothing: the GPU memory is lost",
         "A checkpoint_dir (on Google Drive) and resume=True in TrainConfig",
         "Re-running only the last cell",
         "Lowering the learning rate"),
        1,
        ("The GPU's memory is lost, but a checkpoint on disk is not.",
         "Right: fit saves model, optimizer, schedule and random state, and continues from the last checkpoint.",
         "The Python variables are gone after a disconnect; the model must be reloaded.",
         "That changes training, it does not recover it."),
    ),
])
