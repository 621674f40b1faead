"""Lesson 07's checks: a right answer passes, and each common slip gets its own hint."""
import math

import pytest
import torch

from ftlib.calibration import reliability_bins
from ftlib.exercises import Hint
from ftlib.exercises import lesson07
from ftlib.qa import token_f1


def hint_of(fn, *args):
    with pytest.raises(Hint) as info:
        fn(*args)
    return str(info.value)


CM = torch.tensor([[70, 30],   # true negative: 70 right, 30 called positive
                   [10, 90]])  # true positive: 10 missed, 90 found
P = 1
PRECISION, RECALL = 90 / 120, 90 / 100  # 0.75 and 0.9


def test_precision_recall_right_answer_passes():
    lesson07.check_precision_recall(PRECISION, RECALL, CM, P)
    lesson07.check_precision_recall(torch.tensor(PRECISION), torch.tensor(RECALL), CM, P)  # 0-d tensors


def test_precision_recall_hints_name_the_slip():
    check = lesson07.check_precision_recall
    assert "swapped" in hint_of(check, RECALL, PRECISION, CM, P)
    assert "accuracy" in hint_of(check, 0.8, 0.8, CM, P)
    assert "other class" in hint_of(check, 70 / 80, 70 / 100, CM, P)
    assert "percentages" in hint_of(check, 75.0, 90.0, CM, P)
    assert "precision is right" in hint_of(check, PRECISION, 0.5, CM, P)
    assert "recall is right" in hint_of(check, 0.5, RECALL, CM, P)
    assert "one number" in hint_of(check, [0.75], RECALL, CM, P)
    assert "nan" in hint_of(check, float("nan"), RECALL, CM, P)
    assert "cm[p, p]" in hint_of(check, 0.3, 0.2, CM, P)


def test_precision_recall_hints_never_give_the_answer():
    check = lesson07.check_precision_recall
    for wrong in [(RECALL, PRECISION), (0.8, 0.8), (70 / 80, 0.7), (PRECISION, 0.5), (0.5, RECALL), (0.3, 0.2)]:
        hint = hint_of(check, *wrong, CM, P)
        assert "0.75" not in hint and "0.9" not in hint and "120" not in hint


BINS = reliability_bins([0.55, 0.65, 0.68, 0.92, 0.95, 0.97, 0.99, 0.99], [1, 0, 1, 1, 1, 0, 1, 1], n_bins=10)


def test_ece_right_answer_passes():
    total = sum(BINS.counts)
    ece = sum(n / total * abs(a - c) for n, a, c in zip(BINS.counts, BINS.accuracy, BINS.confidence) if n)
    lesson07.check_ece(ece, BINS)
    lesson07.check_ece(torch.tensor(ece), BINS)


def test_ece_hints_name_the_slip():
    check = lesson07.check_ece
    shown = [(n, a, c) for n, a, c in zip(BINS.counts, BINS.accuracy, BINS.confidence) if n]
    total = sum(n for n, _, _ in shown)
    assert "counted equally" in hint_of(check, sum(abs(a - c) for _, a, c in shown) / len(shown), BINS)
    assert "absolute value" in hint_of(check, sum(n / total * (a - c) for n, a, c in shown), BINS)
    assert "percentage" in hint_of(check, 100 * BINS.ece, BINS)
    assert "nothing left to divide" in hint_of(check, BINS.ece / 10, BINS)
    assert "divide its count by the total" in hint_of(check, sum(n * abs(a - c) for n, a, c in shown), BINS)
    assert "nan" in hint_of(check, float("nan"), BINS)
    assert "skip the empty bins" in hint_of(check, 0.5, BINS)


def test_ece_hints_never_give_the_answer():
    check = lesson07.check_ece
    for wrong in (0.5, 100 * BINS.ece, BINS.ece / 10):
        assert f"{BINS.ece:.3f}" not in hint_of(check, wrong, BINS)


def test_lesson07_quiz_is_complete_and_its_numbers_are_right():
    assert 4 <= len(lesson07.QUIZ.questions) <= 6
    for q in lesson07.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3
    assert token_f1("It is 56.", "56") == pytest.approx(0.5)  # the last question's answer
    assert math.isclose(80 / 100, 0.8) and math.isclose(80 / 160, 0.5)


def test_precision_of_a_class_never_predicted_is_nan_or_zero():
    never = torch.tensor([[60, 0], [40, 0]])  # a barely trained model that always answers 'negative'
    lesson07.check_precision_recall(float("nan"), 0.0, never, 1)
    lesson07.check_precision_recall(torch.tensor(0) / torch.tensor(0), torch.tensor(0.0), never, 1)
    lesson07.check_precision_recall(0.0, 0.0, never, 1)
    assert "nan" in hint_of(lesson07.check_precision_recall, 0.0, float("nan"), never, 1)
