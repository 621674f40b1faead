"""Lesson 09's checks: a right answer passes, each common slip gets its own hint, no hint gives the answer."""
import pytest
import torch

from ftlib.exercises import Hint, check
from ftlib.exercises import lesson09


def hint_of(fn, *args):
    with pytest.raises(Hint) as info:
        fn(*args)
    return str(info.value)


IDS = [1, 9, 21, 5, 17, 4, 33, 38, 2]  # 6 prompt tokens, then '5', '6', end of turn
N = 6
RIGHT = [-100] * N + IDS[N:]


def test_labels_right_answer_passes():
    lesson09.check_answer_labels(RIGHT, IDS, N)
    lesson09.check_answer_labels(torch.tensor(RIGHT), IDS, N)  # a tensor is fine too
    lesson09.check_answer_labels(tuple(RIGHT), IDS, N)


def test_labels_hints_name_the_slip():
    check_ = lesson09.check_answer_labels
    assert "unchanged" in hint_of(check_, IDS, IDS, N)
    assert "other way round" in hint_of(check_, IDS[:N] + [-100] * 3, IDS, N)
    assert "0 is a real token id" in hint_of(check_, [0] * N + IDS[N:], IDS, N)
    assert "nothing would be learned" in hint_of(check_, [-100] * len(IDS), IDS, N)
    assert "off by one" in hint_of(check_, [-100] * (N + 1) + IDS[N + 1:], IDS, N)
    assert "off by one" in hint_of(check_, [-100] * (N - 1) + IDS[N - 1:], IDS, N)
    assert "shift" in hint_of(check_, IDS[1:] + [-100], IDS, N)
    assert "one label per token" in hint_of(check_, RIGHT[:-1], IDS, N)
    assert "list of whole numbers" in hint_of(check_, "labels", IDS, N)
    assert "start from input_ids" in hint_of(check_, [-100] * N + [7, 7, 7], IDS, N)


def test_labels_hints_never_give_the_answer():
    wrong = [IDS, IDS[:N] + [-100] * 3, [0] * N + IDS[N:], [-100] * len(IDS), [-100] * (N + 1) + IDS[N + 1:],
             IDS[1:] + [-100], RIGHT[:-1], [-100] * N + [7, 7, 7]]
    for w in wrong:
        h = hint_of(lesson09.check_answer_labels, w, IDS, N)
        assert str(RIGHT) not in h and str(N) not in h.replace("-100", "")


SWEEP = [
    {"lr": 1e-3, "epoch": 1, "train_loss": 2.0, "val_loss": 1.50},
    {"lr": 1e-3, "epoch": 2, "train_loss": 1.2, "val_loss": 1.10},
    {"lr": 1e-3, "epoch": 3, "train_loss": 0.8, "val_loss": 1.20},
    {"lr": 3e-3, "epoch": 1, "train_loss": 1.5, "val_loss": 1.30},
    {"lr": 3e-3, "epoch": 2, "train_loss": 0.6, "val_loss": 1.25},
    {"lr": 3e-3, "epoch": 3, "train_loss": 0.2, "val_loss": 1.40},
]


def test_choice_right_answer_passes():
    lesson09.check_choice((1e-3, 2), SWEEP)
    lesson09.check_choice((0.001, 2), SWEEP)


def test_choice_hints_name_the_slip():
    check_ = lesson09.check_choice
    assert "*training* loss" in hint_of(check_, (3e-3, 3), SWEEP)
    assert "last epoch" in hint_of(check_, (1e-3, 3), SWEEP)
    assert "val_loss column" in hint_of(check_, (3e-3, 1), SWEEP)
    assert "learning rate first" in hint_of(check_, (2, 1e-3), SWEEP)
    assert "not in the sweep" in hint_of(check_, (1e-2, 2), SWEEP)
    assert "a pair" in hint_of(check_, 1e-3, SWEEP)
    assert "a float and an int" in hint_of(check_, (1e-3, 2.0), SWEEP)


def test_choice_hints_never_give_the_answer():
    for wrong in [(3e-3, 3), (1e-3, 3), (3e-3, 1), (2, 1e-3), (1e-2, 2)]:
        h = hint_of(lesson09.check_choice, wrong, SWEEP)
        assert "1.1" not in h and "(0.001, 2)" not in h


def test_unanswered_exercises_say_not_answered_yet(capsys):
    check(lesson09.check_answer_labels, ..., IDS, N, strict=False)
    check(lesson09.check_choice, ..., SWEEP, strict=False)
    assert capsys.readouterr().out.count("Not answered yet") == 2


def test_lesson09_quiz_is_complete():
    assert 4 <= len(lesson09.QUIZ.questions) <= 6
    for q in lesson09.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3
    assert "-100" in lesson09.QUIZ.as_text() and "DPO" in lesson09.QUIZ.as_text()
