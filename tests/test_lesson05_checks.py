"""Lesson 05's checks: a right answer passes, and each common slip gets its own hint."""
import pytest

from ftlib.adapters import Adapter
from ftlib.exercises import Hint
from ftlib.exercises import lesson05


def hint_of(fn, *args):
    with pytest.raises(Hint) as info:
        fn(*args)
    return str(info.value)


D, B = 384, 64
TRUTH = sum(p.numel() for p in Adapter(D, B).parameters())


def test_adapter_params_right_answer_passes():
    assert TRUTH == 2 * D * B + B + D  # the check counts the real module
    lesson05.check_adapter_params(TRUTH, D, B)
    lesson05.check_adapter_params(float(TRUTH), D, B)
    lesson05.check_adapter_params(sum(p.numel() for p in Adapter(768, 16).parameters()), 768, 16)


def test_adapter_params_hints_name_the_slip():
    check = lesson05.check_adapter_params
    assert "biases" in hint_of(check, 2 * D * B, D, B)
    assert "one projection" in hint_of(check, D * B, D, B)
    assert "one projection" in hint_of(check, D * B + B, D, B)
    assert "d * d" in hint_of(check, D * D, D, B)
    assert "d * d" in hint_of(check, 2 * D * D + 2 * D, D, B)
    assert "of one projection only" in hint_of(check, 2 * D * B + D, D, B)
    assert "per *output*" in hint_of(check, 2 * D * B + 2 * B, D, B)
    assert "12 adapters" in hint_of(check, 12 * TRUTH, D, B)
    assert "number" in hint_of(check, "49600", D, B)
    assert "whole number" in hint_of(check, TRUTH + 0.5, D, B)


def test_adapter_params_hints_never_give_the_answer():
    check = lesson05.check_adapter_params
    for wrong in (2 * D * B, D * B, D * D, 2 * D * B + D, 2 * D * B + 2 * B, 12 * TRUTH, 12345):
        assert str(TRUTH) not in hint_of(check, wrong, D, B) and f"{TRUTH:,}" not in hint_of(check, wrong, D, B)


FULL, HEAD, ADAPTER = 22_713_986, 770, 605_954  # 22,713,986 / 605,954 = 37.48...
RESULTS = [
    {"method": "full", "trainable": FULL, "total": FULL, "percent": 100.0},
    {"method": "head", "trainable": HEAD, "total": FULL, "percent": 100 * HEAD / FULL},
    {"method": "adapter", "trainable": ADAPTER, "total": FULL + 595_200,
     "percent": 100 * ADAPTER / (FULL + 595_200)},
]


def test_files_per_full_model_right_answer_passes():
    lesson05.check_files_per_full_model(FULL // ADAPTER, RESULTS)
    lesson05.check_files_per_full_model(float(FULL // ADAPTER), RESULTS)


def test_files_per_full_model_hints_name_the_slip():
    check = lesson05.check_files_per_full_model
    assert "round down" in hint_of(check, FULL / ADAPTER, RESULTS)
    assert "rounded up" in hint_of(check, FULL // ADAPTER + 1, RESULTS)
    assert "wrong way round" in hint_of(check, ADAPTER / FULL, RESULTS)
    assert "wrong way round" in hint_of(check, ADAPTER // FULL, RESULTS)
    assert "head-only" in hint_of(check, FULL // HEAD, RESULTS)
    one_more = hint_of(check, int(100 / RESULTS[2]["percent"]), RESULTS)  # 38: rounded up, or 100 / percent
    assert "rounded up" in one_more and "'full' row" in one_more
    exact = [dict(r) for r in RESULTS]  # 1000 / 100 fits exactly 10 times; 100 / percent gives 12
    exact[0].update(trainable=1000, total=1000)
    exact[1].update(trainable=10, total=1000)
    exact[2].update(trainable=100, total=1200, percent=100 * 100 / 1200)
    check(10, exact)
    assert "'full' row" in hint_of(check, 12, exact) and "rounded up" not in hint_of(check, 12, exact)
    assert "'trainable'" in hint_of(check, 5, RESULTS)
    assert "int" in hint_of(check, "37", RESULTS)
    assert "no row with method 'adapter'" in hint_of(check, 37, RESULTS[:2])


def test_files_per_full_model_hints_never_give_the_answer():
    check = lesson05.check_files_per_full_model
    for wrong in (FULL / ADAPTER, FULL // ADAPTER + 1, ADAPTER / FULL, FULL // HEAD, 5):
        assert str(FULL // ADAPTER) not in hint_of(check, wrong, RESULTS)


def test_lesson05_quiz_is_complete():
    assert 4 <= len(lesson05.QUIZ.questions) <= 5
    for q in lesson05.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3
    assert "2 * d * b + b + d" in lesson05.QUIZ.as_text()
