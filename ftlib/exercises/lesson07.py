"""Checks and knowledge test for lesson 07 (Evaluating a fine-tuned model).

Each check raises :class:`~ftlib.exercises.Hint` with a pointer, never the answer.
"""
from __future__ import annotations

import math
import numbers

import torch

from ..calibration import best_temperature
from . import Hint, Question, Quiz

__all__ = ["check_ece", "check_my_ece", "check_precision_recall", "check_temperature", "QUIZ"]


def _number(name: str, value) -> float:
    """The learner's value as a float (a 0-d tensor is fine), or a hint."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise Hint(f"`{name}` should be one number, got {type(value).__name__}: "
                   "if you have a one-element tensor, .item() turns it into a number")
    if math.isnan(value):
        raise Hint(f"`{name}` is nan: a division by zero, or an empty bin's nan value, got into the sum")
    return float(value)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def check_precision_recall(precision, recall, cm, p: int) -> None:
    """Exercise 1: precision and recall of class `p` from the confusion matrix `cm` (rows true, columns predicted)."""
    cm = [[float(c) for c in row] for row in cm.tolist()] if hasattr(cm, "tolist") else cm
    k = len(cm)
    col = sum(cm[i][p] for i in range(k))
    row = sum(cm[p])
    if col == 0:  # the class is never predicted: precision is 0 / 0, undefined
        if hasattr(precision, "item"):
            precision = precision.item()
        if isinstance(precision, float) and math.isnan(precision):
            precision = 0.0  # nan is the honest answer here; 0 is the convention of classification_metrics
    precision, recall = _number("precision_positive", precision), _number("recall_positive", recall)
    true_p, true_r = cm[p][p] / max(col, 1), cm[p][p] / max(row, 1)
    if _close(precision, true_p) and _close(recall, true_r):
        return
    if precision > 1 or recall > 1:
        raise Hint("precision and recall are fractions between 0 and 1, not percentages")
    if _close(precision, true_r) and _close(recall, true_p):
        raise Hint("the two are swapped: precision divides by everything *predicted* as the class (a column), "
                   "recall by everything that truly *is* the class (a row)")
    accuracy = sum(cm[i][i] for i in range(k)) / max(sum(map(sum, cm)), 1)
    if _close(precision, accuracy) or _close(recall, accuracy):
        raise Hint("that is the accuracy (the whole diagonal over everything); precision and recall look at one "
                   "class: its diagonal cell over its column or its row")
    others = [c for c in range(k) if c != p]
    for o in others:
        o_col, o_row = sum(cm[i][o] for i in range(k)), sum(cm[o])
        if _close(precision, cm[o][o] / max(o_col, 1)) or _close(recall, cm[o][o] / max(o_row, 1)):
            raise Hint("that is computed for the other class: use index p, the class 'positive'")
    if _close(precision, true_p):
        raise Hint("the precision is right; the recall divides the same diagonal cell by its row: all the reviews "
                   "that truly are the class")
    if _close(recall, true_r):
        raise Hint("the recall is right; the precision divides the same diagonal cell by its column: all the "
                   "reviews predicted as the class")
    raise Hint("both start from the diagonal cell cm[p, p] (right predictions of the class); "
               "cm[:, p] is a column and cm[p, :] a row")


def check_ece(ece, bins) -> None:
    """Exercise 2: the expected calibration error of `bins` (a ReliabilityBins)."""
    ece = _number("ece", ece)
    shown = [(n, a, c) for n, a, c in zip(bins.counts, bins.accuracy, bins.confidence) if n > 0]
    total = sum(n for n, _, _ in shown)
    truth = bins.ece
    if _close(ece, truth):
        return
    if truth > 0 and _close(ece, 100 * truth):
        raise Hint("that is a percentage; the ECE here is a fraction between 0 and 1")
    if _close(ece, sum(abs(a - c) for _, a, c in shown) / len(shown)):
        raise Hint("every bin counted equally; weight each bin by its share of the predictions (count / total), "
                   "so that a bin of 3 predictions counts less than one of 300")
    if _close(ece, abs(sum(n / total * (a - c) for n, a, c in shown))) or _close(
            ece, sum(n / total * (a - c) for n, a, c in shown)):
        raise Hint("without the absolute value, over-confident and under-confident bins cancel out: take "
                   "|accuracy - confidence| in each bin before adding")
    if _close(ece, truth / len(bins.counts)) or _close(ece, truth / len(shown)):
        raise Hint("the weights count / total already sum to 1: there is nothing left to divide by")
    if _close(ece, sum(n * abs(a - c) for n, a, c in shown)):
        raise Hint("the weight of a bin is its share of the predictions: divide its count by the total")
    raise Hint("for each bin with predictions: its share of all predictions, times |accuracy - confidence|; "
               "then add them up (skip the empty bins: their values are nan)")


def _ece_cases():
    """Exercise 3's test sets, (probs, labels): three classes, over- and under-confident, some bins empty."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for n, scale, classes in ((300, 3.0, 3), (120, 0.7, 2), (57, 6.0, 4)):
        labels = torch.randint(classes, (n,), generator=g)
        logits = torch.randn(n, classes, generator=g)
        logits[torch.arange(n), labels] += 1.0  # better than chance
        cases.append(((scale * logits).softmax(-1), labels))
    return cases


def _ece_slips(probs, labels, n_bins=10):
    """What typical slips compute, by name."""
    from ..calibration import reliability_bins

    probs, labels = probs.double(), labels
    confidence, predicted = probs.max(-1)
    correct = predicted == labels
    bins = reliability_bins(confidence, correct, n_bins)
    shown = [(n, a, c) for n, a, c in zip(bins.counts, bins.accuracy, bins.confidence) if n > 0]
    true_class = probs.gather(1, labels[:, None]).squeeze(1)
    return {
        "unweighted": sum(abs(a - c) for _, a, c in shown) / len(shown),
        "true class": reliability_bins(true_class, correct, n_bins).ece,
        "no abs": abs(sum(n / len(labels) * (a - c) for n, a, c in shown)),  # = |overall accuracy - confidence|
    }


def check_my_ece(test_ece, my_ece) -> None:
    """Exercise 3a: `my_ece(probs, labels, n_bins)` against ftlib.calibration.expected_calibration_error.

    `test_ece` is what it returned on the lesson's test predictions (``...`` when not answered).
    """
    from ..calibration import expected_calibration_error

    _number("my_ece(...)", test_ece)
    for probs, labels in _ece_cases():
        got = my_ece(probs, labels)
        if got is Ellipsis:
            raise Hint("`my_ece` still returns `...`: set `ece` in the exercise cell")
        got = _number("my_ece(...)", got)
        truth = expected_calibration_error(probs, labels)
        if math.isclose(got, truth, rel_tol=1e-5, abs_tol=1e-7):
            continue
        slips = _ece_slips(probs, labels)
        if math.isclose(got, 100 * truth, rel_tol=1e-5):
            raise Hint("that is a percentage; the ECE here is a fraction between 0 and 1")
        if math.isclose(got, slips["unweighted"], rel_tol=1e-5, abs_tol=1e-7):
            raise Hint("every bin counted equally; weight each bin by its share of the predictions, so that a bin "
                       "of 3 predictions counts less than one of 300")
        if math.isclose(got, slips["true class"], rel_tol=1e-5, abs_tol=1e-7):
            raise Hint("the confidence you binned is the probability of the *true* class; calibration asks about "
                       "the probability the model gave the class it *predicted*, right or wrong")
        if math.isclose(got, slips["no abs"], rel_tol=1e-5, abs_tol=1e-7):
            raise Hint("over-confident and under-confident bins cancel out in your sum: take the size of the gap "
                       "in each bin (its absolute value) before adding, bin by bin")
        for n_bins in (5, 15, 20, 9, 11):
            if math.isclose(got, expected_calibration_error(probs, labels, n_bins), rel_tol=1e-5, abs_tol=1e-7):
                raise Hint("the bins are not the ones asked for: use `n_bins` equal-width bins between 0 and 1")
        raise Hint("on a test set of the check's, your ECE differs from ftlib's: sort each prediction into its "
                   "confidence bin (a confidence of exactly 1 goes into the last), then compare accuracy and mean "
                   "confidence inside each non-empty bin")


def _nll(logits, labels, t: float) -> float:
    logits, labels = torch.as_tensor(logits).double().cpu(), torch.as_tensor(labels).cpu()
    return torch.nn.functional.cross_entropy(logits / t, labels).item()


def _temperature_case():
    """Over-confident logits whose best temperature is well above 1."""
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(3, (400,), generator=g)
    logits = torch.randn(400, 3, generator=g)
    logits[torch.arange(400), labels] += 1.5
    return 4.0 * logits, labels


def check_temperature(temperature, fit_temperature, val_logits, val_labels, test_logits, test_labels) -> None:
    """Exercise 3b: `fit_temperature`, and `temperature`, which it should have fitted on the validation set."""
    logits, labels = _temperature_case()
    got = fit_temperature(logits, labels)
    if got is Ellipsis:
        raise Hint("`fit_temperature` still returns `...`: set `best` in the exercise cell")
    got = _number("fit_temperature(...)", got)
    if got <= 0:
        raise Hint(f"a temperature must be above 0, got {got:g}: search over positive values only")
    want = best_temperature(logits, labels)
    if _nll(logits, labels, got) > _nll(logits, labels, want) + 2e-3:
        if math.isclose(got, 1 / want, rel_tol=0.05):
            raise Hint("your temperature is upside down: the logits are *divided* by the temperature, so an "
                       "over-confident model needs one above 1")
        if math.isclose(got, 1.0, rel_tol=1e-3):
            raise Hint("on over-confident logits, `fit_temperature` returned 1, which changes nothing: did the "
                       "search move at all (its range, its steps, the loss it minimises)?")
        raise Hint("on over-confident logits of the check's, your temperature gives a clearly higher cross-entropy "
                   "than the best one: search a wider range, with finer steps, and minimise the cross-entropy "
                   "of the scaled logits against the labels")
    temperature = _number("temperature", temperature)
    best_val, best_test = best_temperature(val_logits, val_labels), best_temperature(test_logits, test_labels)
    if _nll(val_logits, val_labels, temperature) <= _nll(val_logits, val_labels, best_val) + 2e-3:
        return
    if _nll(test_logits, test_labels, temperature) <= _nll(test_logits, test_labels, best_test) + 2e-3:
        raise Hint("`temperature` was fitted on the test set: it is a choice, so it is made on validation, and the "
                   "test set only measures the result")
    raise Hint("`temperature` is not the best one for the validation predictions: fit it with your "
               "`fit_temperature` on `val_logits` and `val_labels`")


QUIZ = Quiz("Knowledge test: lesson 07", [
    Question(
        "You tried five learning rates and kept the one with the best test accuracy. What is wrong?",
        ("Nothing, as long as the test set is large",
         "The test set took part in a choice, so its score is now optimistic: choose on validation",
         "Five is too few learning rates",
         "Learning rates must be chosen on the training set"),
        1,
        ("A large test set makes the estimate precise, not unbiased: the choice still fits it.",
         "Right: every choice made on a set fits it a little; the test set must be looked at once, at the end.",
         "The number of tries is not the problem; where they are scored is.",
         "The training loss rewards whatever memorises best: it cannot judge generalisation."),
    ),
    Question(
        "Of 100 reviews the model calls positive, 80 are positive; there are 160 positive reviews in all. "
        "Precision and recall of 'positive'?",
        ("precision 0.8, recall 0.5", "precision 0.5, recall 0.8", "precision 0.8, recall 0.8",
         "precision 0.5, recall 0.5"),
        0,
        ("Right: 80 of 100 predictions are right (precision); 80 of the 160 positives are found (recall).",
         "Swapped: precision is about the predictions, recall about the true members of the class.",
         "Recall divides by all 160 true positives, not by the 100 predictions.",
         "Precision divides by the 100 predictions made."),
    ),
    Question(
        "Between seeds, your recipe's test accuracy varies with a standard deviation σ of 1 point. Method B, "
        "run once, beats method A, run once, by 2 points. What can you say?",
        ("B is better: 2 points is two standard deviations",
         "Not yet: the difference of two single runs varies by √2·σ, about 1.4 points, so 2 points is under the "
         "margin of about 2.8σ; run both with several seeds and compare the means",
         "A is better: a single run is always optimistic",
         "B is better by 1 point, once the noise is taken away"),
        1,
        ("Each run carries its own seed noise and the variances add: the difference varies by √2·σ, not σ, so "
         "two σ of one run is not two standard deviations of the difference.",
         "Right: two standard deviations of the difference is 2·√2·σ ≈ 2.8σ. With n seeds per method, the "
         "difference of the means varies by √(2/n)·σ, and the margin shrinks with it.",
         "One run is as likely to be lucky as unlucky.",
         "The noise in one difference cannot be subtracted; it can only be averaged away over more seeds."),
    ),
    Question(
        "A model's predictions with confidence around 0.95 are right 80 % of the time. It is...",
        ("well calibrated", "over-confident", "under-confident", "overfitting the validation set"),
        1,
        ("Calibrated would mean about 95 % right at 95 % confidence.",
         "Right: it claims more than it delivers; the point lies below the reliability diagram's diagonal.",
         "Under-confident is the reverse: right more often than it claims.",
         "Calibration is about the meaning of confidences, not about which set was used for choices."),
    ),
    Question(
        "Why does the ECE weight each bin by its share of the predictions?",
        ("So that it is always below 0.5",
         "So that a bin holding a handful of predictions does not count as much as one holding hundreds",
         "Because empty bins would otherwise count twice",
         "To make it equal to the accuracy"),
        1,
        ("The weighting does not bound it that way: a very over-confident model can have an ECE near 1.",
         "Right: the ECE is the expected gap for a randomly chosen prediction.",
         "Empty bins are skipped either way.",
         "Accuracy and calibration are different questions."),
    ),
    Question(
        "The model answers 'It is 56.' and the reference is '56'. Exact match and token F1?",
        ("1 and 1", "0 and 0", "0 and 0.5", "1 and 0.5"),
        2,
        ("Normalisation removes punctuation and case, not extra words.",
         "Token F1 gives credit for the shared word '56'.",
         "Right: not the same string (EM 0); the prediction's words are 'it', 'is', '56', one of which is the "
         "reference's only word: precision 1/3, recall 1, F1 = 2 * (1/3) * 1 / (1/3 + 1) = 0.5.",
         "An exact match of 1 would need the normalised strings to be equal."),
    ),
])
