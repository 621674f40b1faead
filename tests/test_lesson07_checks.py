"""Lesson 07's checks: a right answer passes, and each common slip gets its own hint."""
import math

import pytest
import torch

from ftlib.calibration import best_temperature, reliability_bins
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
    # the seed question: two single runs differ by noise of sqrt(2)·σ, and two of those is about 2.8σ
    assert round(math.sqrt(2), 1) == 1.4 and round(2 * math.sqrt(2), 1) == 2.8
    seed_question = next(q for q in lesson07.QUIZ.questions if "σ" in q.text)
    assert "2.8" in seed_question.options[seed_question.answer]


def test_precision_of_a_class_never_predicted_is_nan_or_zero():
    never = torch.tensor([[60, 0], [40, 0]])  # a barely trained model that always answers 'negative'
    lesson07.check_precision_recall(float("nan"), 0.0, never, 1)
    lesson07.check_precision_recall(torch.tensor(0) / torch.tensor(0), torch.tensor(0.0), never, 1)
    lesson07.check_precision_recall(0.0, 0.0, never, 1)
    assert "nan" in hint_of(lesson07.check_precision_recall, 0.0, float("nan"), never, 1)


# Exercise 3: the ECE from probabilities, and temperature scaling, written by the learner.
import torch.nn.functional as F  # noqa: E402

from ftlib.calibration import expected_calibration_error  # noqa: E402
from ftlib.exercises import check as run_check  # noqa: E402


def make_ece(*, weighted=True, true_class=False, absolute=True, answered=True):
    """Exercise 3a's function as a learner writes it, with the slips the tests need."""
    def my_ece(probs, labels, n_bins=10):
        if not answered:
            return ...
        probs = probs.double()
        confidence, predicted = probs.max(-1)
        correct = (predicted == labels).double()
        if true_class:
            confidence = probs.gather(1, labels[:, None]).squeeze(1)
        bin_of = (confidence * n_bins).long().clamp(max=n_bins - 1)
        parts = []
        for b in range(n_bins):
            in_bin = bin_of == b
            if in_bin.any():
                gap = correct[in_bin].mean() - confidence[in_bin].mean()
                parts.append((in_bin.double().mean(), gap.abs() if absolute else gap))
        if weighted:
            return float(abs(sum(w * g for w, g in parts)))
        return float(sum(g for _, g in parts) / len(parts))
    return my_ece


def lesson_probs():
    g = torch.Generator().manual_seed(5)
    labels = torch.randint(2, (90,), generator=g)
    return (3 * torch.randn(90, 2, generator=g)).softmax(-1), labels


def test_my_ece_right_answer_passes():
    fn = make_ece()
    probs, labels = lesson_probs()
    assert math.isclose(fn(probs, labels), expected_calibration_error(probs, labels), rel_tol=1e-9)
    lesson07.check_my_ece(fn(probs, labels), fn)


def test_my_ece_hints_name_the_slip():
    probs, labels = lesson_probs()
    for slip, words in (({"weighted": False}, "share of the predictions"), ({"true_class": True}, "*predicted*"),
                        ({"absolute": False}, "absolute value")):
        fn = make_ece(**slip)
        assert words in hint_of(lesson07.check_my_ece, fn(probs, labels), fn), slip
    fn = make_ece()
    assert "one number" in hint_of(lesson07.check_my_ece, "0.1", fn)


def test_my_ece_unanswered_says_so(capsys):
    fn = make_ece(answered=False)
    run_check(lesson07.check_my_ece, fn(*lesson_probs()), fn, strict=False)
    assert "Not answered yet" in capsys.readouterr().out


def test_my_ece_hints_never_give_the_answer():
    probs, labels = lesson_probs()
    for slip in ({"weighted": False}, {"true_class": True}, {"absolute": False}):
        fn = make_ece(**slip)
        hint = hint_of(lesson07.check_my_ece, fn(probs, labels), fn)
        assert "max(" not in hint and ".long()" not in hint and "n / total" not in hint and "sum(" not in hint


def make_fit(*, invert=False, answered=True):
    """Exercise 3b's function as a learner writes it."""
    def fit_temperature(logits, labels):
        if not answered:
            return ...
        logits = logits.double()
        candidates = torch.linspace(-3, 3, 1201, dtype=torch.float64).exp()
        losses = torch.stack([F.cross_entropy(logits / t, labels) for t in candidates])
        best = candidates[losses.argmin()].item()
        return 1 / best if invert else best
    return fit_temperature


def splits():
    """Validation predictions that want a high temperature, test ones that want a low one."""
    g = torch.Generator().manual_seed(2)
    out = []
    for scale, boost in ((5.0, 1.0), (0.8, 2.0)):
        labels = torch.randint(2, (200,), generator=g)
        logits = torch.randn(200, 2, generator=g)
        logits[torch.arange(200), labels] += boost
        out += [scale * logits, labels]
    return out


def test_temperature_right_answer_passes():
    val_logits, val_labels, test_logits, test_labels = splits()
    fit = make_fit()
    assert abs(fit(val_logits, val_labels) - best_temperature(val_logits, val_labels)) < 0.02
    lesson07.check_temperature(fit(val_logits, val_labels), fit, *splits())
    lesson07.check_temperature(best_temperature(val_logits, val_labels), fit, *splits())


def test_temperature_hints_name_the_slip():
    val_logits, val_labels, test_logits, test_labels = splits()
    fit = make_fit()
    assert "test set" in hint_of(lesson07.check_temperature, fit(test_logits, test_labels), fit, *splits())
    assert "upside down" in hint_of(lesson07.check_temperature, 1.0, make_fit(invert=True), *splits())
    assert "changes nothing" in hint_of(lesson07.check_temperature, 1.0, lambda lo, y: 1.0, *splits())
    assert "above 0" in hint_of(lesson07.check_temperature, 1.0, lambda lo, y: -2.0, *splits())
    assert "not the best one" in hint_of(lesson07.check_temperature, 7.0, fit, *splits())


def test_temperature_unanswered_says_so(capsys):
    fit = make_fit(answered=False)
    run_check(lesson07.check_temperature, fit(*splits()[:2]), fit, *splits(), strict=False)
    assert "Not answered yet" in capsys.readouterr().out


def test_temperature_hints_never_give_the_answer():
    val_logits, val_labels, test_logits, test_labels = splits()
    fit = make_fit()
    best = best_temperature(val_logits, val_labels)
    for args in ((fit(test_logits, test_labels), fit), (1.0, make_fit(invert=True)), (7.0, fit)):
        hint = hint_of(lesson07.check_temperature, *args, *splits())
        assert f"{best:.1f}" not in hint and "linspace" not in hint and "cross_entropy(" not in hint
