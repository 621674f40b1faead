"""Lesson 08's checks: a right answer passes, and each common slip gets its own hint."""
import pytest

from ftlib.exercises import Hint
from ftlib.exercises import lesson08
from ftlib.training import History


def hint_of(fn, *args):
    with pytest.raises(Hint) as info:
        fn(*args)
    return str(info.value)


SCORES = [0.70, 0.78, 0.81, 0.79, 0.83, 0.82, 0.83, 0.81, 0.84, 0.80]  # the notebook's sequence
STOP, BEST = 7, 5


def test_early_stop_right_answer_passes():
    lesson08.check_early_stop(STOP, BEST, SCORES, 2)
    lesson08.check_early_stop(7.0, 5.0, SCORES, 2)
    lesson08.check_early_stop(4, 3, SCORES, 1)  # patience 1: 0.79 at epoch 4 ends it
    lesson08.check_early_stop(10, 9, SCORES, 5)  # never 5 bad epochs in a row: runs to the end


def test_early_stop_hints_name_the_slip():
    check = lesson08.check_early_stop
    assert "strictly greater" in hint_of(check, 10, 9, SCORES, 2)  # a tie counted as an improvement
    assert "strictly greater" in hint_of(check, 9, 7, SCORES, 2)
    assert "restores the best" in hint_of(check, 7, 7, SCORES, 2)
    assert "count again" in hint_of(check, 8, 5, SCORES, 2)
    assert "count again" in hint_of(check, 6, 5, SCORES, 2)
    assert "cannot be after the stop" in hint_of(check, 5, 7, SCORES, 2)
    assert "numbered from 1" in hint_of(check, 0, 0, SCORES, 2)
    assert "whole number" in hint_of(check, 6.5, 5, SCORES, 2)
    assert "whole number" in hint_of(check, "7", 5, SCORES, 2)
    assert "stops before the last epoch" in hint_of(check, 10, 3, SCORES, 2)


def test_early_stop_hints_never_give_the_answer():
    check = lesson08.check_early_stop
    for wrong in [(10, 9), (9, 7), (7, 7), (8, 5), (6, 5), (5, 7), (10, 3), (2, 1)]:
        hint = hint_of(check, *wrong, SCORES, 2)
        assert "7" not in hint and "5" not in hint


def history(n_run, best):
    h = History({"epoch": e} for e in range(1, n_run + 1))
    h.best_epoch = best
    return h


def test_epochs_saved_right_answer_passes():
    lesson08.check_epochs_saved(1 - 7 / 12, history(7, 4), 12)
    lesson08.check_epochs_saved(0.0, history(12, 12), 12)


def test_epochs_saved_hints_name_the_slip():
    check = lesson08.check_epochs_saved
    h = history(7, 4)
    assert "percentage" in hint_of(check, 100 * 5 / 12, h, 12)
    assert "epochs that ran" in hint_of(check, 7 / 12, h, 12)
    assert "len(history)" in hint_of(check, 1 - 4 / 12, h, 12)
    assert "divide" in hint_of(check, 5, h, 12)
    assert "between 0 and 1" in hint_of(check, -0.5, h, 12)
    assert "a number" in hint_of(check, "0.4", h, 12)
    assert "overfit_epochs" in hint_of(check, 0.3, h, 12)


def test_epochs_saved_hints_never_give_the_answer():
    check = lesson08.check_epochs_saved
    h = history(7, 4)
    for wrong in (100 * 5 / 12, 7 / 12, 1 - 4 / 12, 5, 0.3):
        hint = hint_of(check, wrong, h, 12)
        assert "0.41" not in hint and "42" not in hint and "5 " not in hint


def test_lesson08_quiz_is_complete():
    assert 4 <= len(lesson08.QUIZ.questions) <= 6
    for q in lesson08.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3


# Exercise 2: the early-stopping rule, written by the learner.
import copy  # noqa: E402
import math  # noqa: E402

import torch  # noqa: E402

from ftlib.exercises import check as run_check  # noqa: E402


def make_stopper(*, ties=False, late=False, reset=True, keep="best", copy_weights=True, answered=True):
    """The exercise's class as a learner writes it, with the slips the tests need."""
    class MyEarlyStopping:
        def __init__(self, patience):
            self.patience = patience
            self.best_score, self.best_epoch, self.best_weights = -math.inf, None, None
            self.bad_epochs = 0

        def update(self, epoch, score, weights):
            if not answered:
                return ...
            kept = copy.deepcopy(weights) if copy_weights else weights
            if score > self.best_score or (ties and score == self.best_score):
                self.best_score, self.best_epoch, self.best_weights = score, epoch, kept
                if reset:
                    self.bad_epochs = 0
            else:
                self.bad_epochs += 1
            if keep == "last":
                self.best_weights = kept
            return self.bad_epochs > self.patience if late else self.bad_epochs >= self.patience

    return MyEarlyStopping


def first(cls):
    return cls(2).update(1, 0.7, {"weight": torch.zeros(3)})


def test_my_early_stopping_right_answer_passes():
    cls = make_stopper()
    lesson08.check_my_early_stopping(first(cls), cls)
    cls = lesson08.FtlibRule  # the lesson's stand-in behaves as the exercise asks
    lesson08.check_my_early_stopping(first(cls), cls)


def test_my_early_stopping_reference_is_ftlibs():
    for scores, patience in lesson08._CURVES:
        stop, best = lesson08._simulate(scores, patience)
        assert lesson08._slip(scores, patience) == (stop, best, best)


def test_my_early_stopping_hints_name_the_slip():
    def hint(**slip):
        cls = make_stopper(**slip)
        return hint_of(lesson08.check_my_early_stopping, first(cls), cls)

    assert "one epoch late" in hint(late=True)
    assert "strictly" in hint(ties=True)
    assert "starts again from zero" in hint(reset=False)
    assert "last epoch's" in hint(keep="last")
    assert "own tensors" in hint(copy_weights=False)
    cls = make_stopper()
    assert "True or False" in hint_of(lesson08.check_my_early_stopping, "no", cls)


def test_my_early_stopping_unanswered_says_so(capsys):
    cls = make_stopper(answered=False)
    run_check(lesson08.check_my_early_stopping, first(cls), cls, strict=False)
    assert "Not answered yet" in capsys.readouterr().out


def test_my_early_stopping_hints_never_give_the_answer():
    slips = ({"late": True}, {"ties": True}, {"reset": False}, {"keep": "last"}, {"copy_weights": False})
    for slip in slips:
        cls = make_stopper(**slip)
        hint = hint_of(lesson08.check_my_early_stopping, first(cls), cls)
        assert ">=" not in hint and "deepcopy" not in hint and "bad_epochs" not in hint and "clone" not in hint


def test_replay_uses_the_stand_in_weights():
    stopper = lesson08.FtlibRule(2)
    stop, weights = lesson08.replay(stopper, SCORES)
    assert (stop, stopper.best_epoch, int(stopper.best_weights["epoch"])) == (STOP, BEST, BEST)
