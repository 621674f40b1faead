"""Checks and knowledge test for lesson 08 (Overfitting and early stopping).

Each check raises :class:`~ftlib.exercises.Hint` with a pointer, never the answer.
"""
from __future__ import annotations

import math
import numbers

import torch

from . import Hint, Question, Quiz

__all__ = ["check_early_stop", "check_my_early_stopping", "check_epochs_saved", "FtlibRule", "replay", "QUIZ"]


def _simulate(scores, patience: int, *, ties_improve: bool = False) -> tuple[int, int]:
    """(epoch after which training stops, best epoch) for validation scores, as ftlib's EarlyStopping decides."""
    from ..training import EarlyStopping

    if ties_improve:  # the slip: counting an equal score as an improvement
        best, best_epoch, bad = -math.inf, None, 0
        for epoch, s in enumerate(scores, 1):
            best, best_epoch, bad = (s, epoch, 0) if s >= best else (best, best_epoch, bad + 1)
            if bad >= patience:
                return epoch, best_epoch
        return len(scores), best_epoch
    stopper = EarlyStopping("eval_accuracy", patience)
    for epoch, s in enumerate(scores, 1):
        stopper.update({"epoch": epoch, "eval_accuracy": s})
        if stopper.should_stop:
            return epoch, stopper.best_epoch
    return len(scores), stopper.best_epoch


def _is_epoch(value) -> bool:
    return (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
            and value == int(value))


def check_early_stop(stop_epoch, restored_epoch, scores, patience: int) -> None:
    """Exercise 1: after which epoch early stopping ends the run, and whose weights it restores."""
    for name, value in (("stop_epoch", stop_epoch), ("restored_epoch", restored_epoch)):
        if not _is_epoch(value):
            raise Hint(f"`{name}` should be an epoch number (a whole number, counting from 1), got {value!r}")
    stop_epoch, restored_epoch = int(stop_epoch), int(restored_epoch)
    stop, best = _simulate(scores, patience)
    tie_stop, tie_best = _simulate(scores, patience, ties_improve=True)
    if not 1 <= stop_epoch <= len(scores) or not 1 <= restored_epoch <= len(scores):
        raise Hint(f"epochs are numbered from 1 to {len(scores)} here (the first score is epoch 1)")
    if restored_epoch > stop_epoch:
        raise Hint("the restored weights come from an epoch that has already run: it cannot be after the stop")
    if (stop_epoch, restored_epoch) == (stop, best):
        return
    if restored_epoch == stop_epoch and stop_epoch == stop:
        raise Hint("the stop is right, but fit does not keep the last epoch's weights: it restores the best epoch's")
    equal_to_best = restored_epoch != best and scores[restored_epoch - 1] == scores[best - 1]
    if (stop_epoch, restored_epoch) == (tie_stop, tie_best) or restored_epoch == tie_best != best or equal_to_best:
        raise Hint("an epoch that only equals the best score is not an improvement: EarlyStopping.update "
                   "needs a strictly greater value (`value > self.best`)")
    if restored_epoch == best and stop_epoch in (stop - 1, stop + 1):
        raise Hint("the best epoch is right; count again when the stop comes: it is after `patience` epochs "
                   "in a row without improvement, counted from the epoch after the best one")
    if restored_epoch == best:
        raise Hint("the best epoch is right; for the stop, count the epochs without a strictly better score "
                   "after it, until there are `patience` of them")
    if stop_epoch == len(scores):
        raise Hint("training stops before the last epoch here: look for `patience` epochs in a row after a "
                   "best score that do not beat it")
    raise Hint("go through the scores one epoch at a time, keeping the best so far and a count of epochs "
               "since it improved; the run stops when that count reaches `patience`")


class FtlibRule:
    """ftlib's EarlyStopping behind exercise 2's interface: the lesson's stand-in until the exercise is answered."""

    def __init__(self, patience: int):
        from ..training import EarlyStopping

        self._rule, self.best_epoch, self.best_weights = EarlyStopping("eval_accuracy", patience), None, None

    def update(self, epoch: int, score: float, weights: dict) -> bool:
        if self._rule.update({"epoch": epoch, "eval_accuracy": score}):
            self.best_weights = {k: v.detach().clone() for k, v in weights.items()}
        self.best_epoch = self._rule.best_epoch
        return self._rule.should_stop


def replay(stopper, scores, device="cpu") -> tuple[int, dict]:
    """Feed a recorded validation curve to `stopper`, epoch by epoch, until it says stop.

    The weights it sees are a stand-in: one tensor holding the epoch number, changed in place each
    epoch as training changes a model's tensors. Returns (the last epoch run, the stand-in).
    """
    weights = {"epoch": torch.zeros((), device=device)}
    for epoch, score in enumerate(scores, 1):
        with torch.no_grad():
            weights["epoch"].fill_(epoch)
        if stopper.update(epoch, score, weights) is True:
            return epoch, weights
    return len(scores), weights


# Exercise 2's test curves, (scores, patience): a tie with the best, a patience of 1, one that never stops,
# one that improves late and one that stops as soon as it can.
_CURVES = (
    ([0.70, 0.78, 0.81, 0.79, 0.83, 0.82, 0.83, 0.81, 0.84, 0.80], 2),
    ([0.70, 0.78, 0.81, 0.79, 0.83, 0.82, 0.83, 0.81, 0.84, 0.80], 1),
    ([0.60, 0.65, 0.64, 0.66, 0.63, 0.67, 0.62, 0.61, 0.60, 0.59], 3),
    ([0.50, 0.55, 0.60, 0.62, 0.64, 0.66, 0.68, 0.70], 2),
    ([0.80, 0.80, 0.80, 0.79, 0.78], 2),
    ([0.50, 0.52, 0.51, 0.53, 0.52, 0.54, 0.53, 0.55, 0.51, 0.50, 0.49, 0.48], 3),
)


def _slip(scores, patience: int, slip: str | None = None) -> tuple[int, int, int]:
    """(stop epoch, best epoch, epoch of the kept weights) for the right rule (`slip=None`) or a typical slip."""
    best, best_epoch, kept, bad = -math.inf, None, None, 0
    for epoch, s in enumerate(scores, 1):
        if s > best or (slip == "ties" and s >= best):
            best, best_epoch, kept = s, epoch, epoch
            bad = bad if slip == "no reset" else 0
        else:
            bad += 1
        if slip == "every epoch":
            kept = epoch
        limit = patience + 1 if slip == "late" else max(patience - 1, 1) if slip == "early" else patience
        if bad >= limit:
            return epoch, best_epoch, kept
    return len(scores), best_epoch, kept


def _run_learner(cls, scores, patience: int) -> tuple[int, object, object, bool]:
    """(stop epoch, best epoch, epoch of the kept weights, whether they are the live tensors) for the learner's class."""
    stopper = cls(patience)
    weights = {"weight": torch.zeros(3)}  # one tensor, changed in place each epoch as training changes a model's
    stop = len(scores)
    for epoch, s in enumerate(scores, 1):
        with torch.no_grad():
            weights["weight"].fill_(epoch)
        decision = stopper.update(epoch, s, weights)
        if decision is Ellipsis:
            raise Hint("`update` still returns `...`: set `stop` in the exercise cell")
        if not isinstance(decision, bool):
            raise Hint(f"`update` should return True or False (stop or go on), got {type(decision).__name__}")
        if decision:
            stop = epoch
            break
    best_epoch = getattr(stopper, "best_epoch", None)
    kept = getattr(stopper, "best_weights", None)
    if not isinstance(kept, dict) or not isinstance(kept.get("weight"), torch.Tensor):
        raise Hint("`self.best_weights` should hold the weights of the best epoch, the dict that `update` received "
                   f"(a state_dict); after a run it is {type(kept).__name__}")
    alias = kept["weight"].data_ptr() == weights["weight"].data_ptr()
    return stop, best_epoch, int(kept["weight"][0].item()), alias


def check_my_early_stopping(first_decision, cls) -> None:
    """Exercise 2: the learner's early-stopping class, replayed on recorded curves against ftlib's EarlyStopping.

    `first_decision` is what a new stopper's ``update`` returned for a first epoch (``...`` when not answered).
    """
    if not isinstance(first_decision, bool):
        raise Hint(f"`update` should return True or False (stop or go on), got {type(first_decision).__name__}")
    runs = [(_run_learner(cls, scores, patience), scores, patience) for scores, patience in _CURVES]
    for (_, best, _, _), _, _ in runs:
        if isinstance(best, bool) or not isinstance(best, numbers.Integral):
            raise Hint(f"`self.best_epoch` should be the number of the best epoch (an int), got {best!r}: "
                       "set it when a better score arrives")
    got = [r[:3] for r, _, _ in runs]
    want = [(stop, best, best) for stop, best in (_simulate(s, p) for _, s, p in runs)]  # ftlib's EarlyStopping
    if got == want:
        return
    same = lambda slip: got == [_slip(s, p, slip) for _, s, p in runs]
    stops_ok = all(g[0] == w[0] for g, w in zip(got, want))
    bests_ok = all(g[1] == w[1] for g, w in zip(got, want))
    if stops_ok and bests_ok:
        if any(alias for (_, _, _, alias), _, _ in runs):
            raise Hint("the stop and the best epoch are right, but the weights you keep change after the best epoch: "
                       "a state_dict holds the model's own tensors, which training goes on changing; keep a copy "
                       "that nothing else touches")
        if same("every epoch"):
            raise Hint("the stop and the best epoch are right, but the weights kept are the last epoch's: keep "
                       "them only when the score improves")
        raise Hint("the stop and the best epoch are right, but `self.best_weights` is not the best epoch's: keep "
                   "the weights in the same place where you record the best epoch")
    if same("ties"):
        raise Hint("an epoch that only equals the best score is not an improvement: the best must be strictly beaten")
    if same("late"):
        raise Hint("your rule stops one epoch late: it should stop as soon as the count of epochs without "
                   "improvement reaches `patience`, not once it has gone past it")
    if same("early"):
        raise Hint("your rule stops one epoch early: wait until the count of epochs without improvement reaches "
                   "`patience`")
    if same("no reset"):
        raise Hint("your rule stops too soon on curves that improve again: the count of epochs without improvement "
                   "starts again from zero whenever a better score arrives")
    if bests_ok and all(g[0] == len(s) for g, (s, _) in zip(got, _CURVES)):
        raise Hint("the best epoch is right, but `update` never says stop: it should return True once `patience` "
                   "epochs in a row have not improved")
    if bests_ok:
        raise Hint("the best epoch is right, but the stop comes at the wrong epoch: count the epochs without a "
                   "better score since the best one, and stop when that count reaches `patience`")
    if stops_ok:
        raise Hint("the stop is right, but `self.best_epoch` is not the epoch of the best score: record it when "
                   "a better score arrives")
    raise Hint("replayed on recorded curves, your rule disagrees with ftlib's EarlyStopping: keep the best score "
               "so far, and a count of epochs since it last improved; compare each new score with the best")


def check_epochs_saved(epochs_saved, history, max_epochs: int) -> None:
    """Exercise 2: the fraction of the maximum epochs that early stopping did not run."""
    if isinstance(epochs_saved, bool) or not isinstance(epochs_saved, numbers.Real) or not math.isfinite(epochs_saved):
        raise Hint(f"`epochs_saved` should be a number (a fraction between 0 and 1), got {epochs_saved!r}")
    run = len(history)
    truth = 1 - run / max_epochs
    if math.isclose(epochs_saved, truth, abs_tol=1e-6):
        return
    if math.isclose(epochs_saved, 100 * truth, abs_tol=1e-4) and truth != 0:
        raise Hint("that is a percentage; the exercise asks for a fraction between 0 and 1")
    if math.isclose(epochs_saved, run / max_epochs, abs_tol=1e-6):
        raise Hint("that is the fraction of epochs that ran; the saving is the rest")
    best = getattr(history, "best_epoch", None)
    if best is not None and math.isclose(epochs_saved, 1 - best / max_epochs, abs_tol=1e-6) and best != run:
        raise Hint("that counts up to the best epoch, but training ran on after it for `patience` more epochs: "
                   "use the number of epochs that ran, len(history)")
    if math.isclose(epochs_saved, max_epochs - run, abs_tol=1e-6):
        raise Hint("that is a number of epochs; divide it by the maximum to get a fraction")
    if not 0 <= epochs_saved <= 1:
        raise Hint("a fraction of the maximum epochs lies between 0 and 1")
    raise Hint("compare the number of epochs that ran, len(history), with the maximum, profile.overfit_epochs")


QUIZ = Quiz("Knowledge test: lesson 08", [
    Question(
        "Training loss keeps falling, validation loss has been rising for three epochs. What is happening?",
        ("The model is underfitting: train longer",
         "The model is memorising its training examples: it overfits",
         "The learning rate is too small",
         "The validation set is too easy"),
        1,
        ("Underfitting shows as both losses staying high; here the training loss is still falling.",
         "Right: what it learns now holds for the training reviews only; the gap between the curves grows.",
         "A small learning rate slows both curves; it does not make them diverge.",
         "An easy validation set would give a low validation loss, not a rising one."),
    ),
    Question(
        "Why can the validation loss rise while the validation accuracy stays about the same?",
        ("Because accuracy is computed on a different set",
         "Because cross-entropy grows when the model is confidently wrong, even if the share of right "
         "answers hardly changes",
         "Because the loss includes the weight decay term",
         "It cannot: they always move together"),
        1,
        ("Both are computed on the same validation examples.",
         "Right: an overfitting model grows more confident everywhere, and its few mistakes become costly.",
         "fit's reported loss is the cross-entropy of the predictions; weight decay is applied by the optimizer.",
         "They often diverge: accuracy only asks whether the top class is right, the loss asks how sure."),
    ),
    Question(
        "Early stopping with patience 3 stopped at epoch 9 of 20. Which weights does the model have afterwards?",
        ("Those of epoch 9", "Those of epoch 6, the best validation score", "Those of epoch 20",
         "The average of epochs 6 to 9"),
        1,
        ("That is the last epoch run; fit puts the best epoch's weights back at the end.",
         "Right: three epochs without improvement after epoch 6 triggered the stop, and epoch 6's weights "
         "are restored.",
         "Epochs 10 to 20 never ran: that is the saving.",
         "No averaging: the best epoch's weights are copied and restored as they were."),
    ),
    Question(
        "You used the test set to decide when to stop. What is wrong with the test score you report?",
        ("Nothing: any held-out set will do",
         "It is optimistic: the test set helped choose the model, so it is no longer unseen",
         "It is pessimistic: early stopping always lowers the test score",
         "It is exactly the validation score"),
        1,
        ("The stopping epoch was chosen to maximise that set's score: it is part of training now.",
         "Right: choose on validation, report on a test set that took no part in any choice (lesson 07).",
         "Choosing on the test set biases its score upwards, not downwards.",
         "Only if the two sets were the same; the point is that they must not be."),
    ),
    Question(
        "Fine-tuning with AdamW and weight decay 0.1: towards what does the decay pull each weight matrix?",
        ("Towards the pretrained weights the run started from",
         "Towards zero, which in fine-tuning means away from the pretrained weights",
         "Towards the weights of the best validation epoch",
         "Nowhere: it only lowers the learning rate"),
        1,
        ("That is what L2-SP does (Li, Grandvalet & Davoine 2018): it penalises the distance to the starting "
         "point. Plain weight decay knows nothing of where training began.",
         "Right: each step multiplies the weights by 1 - lr × weight_decay. L2-SP pulls towards the pretrained "
         "starting point instead.",
         "Restoring the best epoch is early stopping's job, after training; the decay acts at every step.",
         "The learning rate is unchanged; the decay shrinks the weights themselves, by lr × weight_decay of "
         "their size per step."),
    ),
    Question(
        "Which change does NOT reduce overfitting?",
        ("Training fewer parameters (LoRA, a frozen body)",
         "Augmenting the training images",
         "Flipping 20 % of the training labels to a wrong class",
         "Stopping at the best validation epoch"),
        2,
        ("Less capacity to memorise with: it usually narrows the gap.",
         "Each epoch sees new variants, so single images are harder to memorise.",
         "Right: noisy labels give the model wrong answers to memorise; its validation accuracy drops.",
         "Early stopping keeps the model from the epochs where it memorises."),
    ),
])
