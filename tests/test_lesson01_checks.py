"""Lesson 01's checks: a right answer passes, each common slip gets its own hint, no hint gives the answer."""
import re

import pytest
from transformers import AutoConfig

from ftlib import catalog
from ftlib.exercises import Hint, check
from ftlib.exercises import lesson01
from ftlib.memory import T4_BYTES, estimate_training_memory, model_on_meta


def hint_of(fn, *args, **kwargs):
    with pytest.raises(Hint) as info:
        fn(*args, **kwargs)
    return str(info.value)


P = 22_713_986  # the lite encoder's parameters with a 2-label head


def test_state_bytes_right_answer_passes():
    lesson01.check_training_state_bytes(16 * P, P)
    lesson01.check_training_state_bytes(float(16 * P), P)
    lesson01.check_training_state_bytes(16 * 1000, 1000)


def test_state_bytes_hints_name_the_slip():
    check_ = lesson01.check_training_state_bytes
    assert "weights only" in hint_of(check_, 4 * P, P)
    assert "two running averages" in hint_of(check_, 8 * P, P)
    assert "*two*" in hint_of(check_, 12 * P, P)
    assert "mixed-precision" in hint_of(check_, 18 * P, P)
    assert "in bytes" in hint_of(check_, 16 * P / 1e9, P)
    assert "in bytes" in hint_of(check_, 16 * P / 2**30, P)
    assert "bits" in hint_of(check_, 128 * P, P)
    assert "4 bytes each, not 2" in hint_of(check_, 2 * P, P)
    assert "add up" in hint_of(check_, 3 * P, P)
    assert "number" in hint_of(check_, "363 MB", P)


def test_state_bytes_hints_never_give_the_answer():
    for wrong in (4 * P, 8 * P, 12 * P, 18 * P, 128 * P, 2 * P, 3 * P):
        hint = hint_of(lesson01.check_training_state_bytes, wrong, P)
        assert " 16 " not in f" {hint} " and "16 bytes" not in hint and str(16 * P) not in hint


@pytest.fixture(scope="module")
def smol():
    return model_on_meta(AutoConfig.for_model(**catalog.SMOLLM2_360M.config))


def test_largest_batch_is_the_last_that_fits(smol):
    truth = lesson01.largest_batch(smol, seq_len=512, budget=T4_BYTES, precision="fp16")
    assert truth >= 1
    fits = lambda b: estimate_training_memory(smol, batch_size=b, seq_len=512, precision="fp16").fits(T4_BYTES)
    assert fits(truth) and not fits(truth + 1)
    assert lesson01.largest_batch(smol, seq_len=512, budget=1e6, precision="fp16") == 0


def test_largest_batch_check(smol):
    kw = dict(seq_len=512, budget=T4_BYTES, precision="fp16")
    truth = lesson01.largest_batch(smol, **kw)
    fp32 = lesson01.largest_batch(smol, seq_len=512, budget=T4_BYTES, precision="fp32")
    assert fp32 < truth
    lesson01.check_largest_batch(truth, smol, **kw)
    lesson01.check_largest_batch(float(truth), smol, **kw)
    assert "above the budget" in hint_of(lesson01.check_largest_batch, truth + 1, smol, **kw)
    assert "fp32" in hint_of(lesson01.check_largest_batch, fp32, smol, **kw)
    smaller = next(b for b in range(truth - 1, 0, -1) if b != fp32)
    assert "loop over batch sizes" in hint_of(lesson01.check_largest_batch, smaller, smol, **kw)
    assert "whole number" in hint_of(lesson01.check_largest_batch, 2.5, smol, **kw)
    for wrong in (truth + 1, fp32, smaller):
        assert not re.search(rf"\b{truth}\b", hint_of(lesson01.check_largest_batch, wrong, smol, **kw))


RESULTS = {
    "pretrained encoder": {"accuracy": 0.80, "train_accuracy": 0.90},
    "random-weight encoder": {"accuracy": 0.60, "train_accuracy": 0.97},
    "causal LM": {"accuracy": 0.70, "train_accuracy": 0.95},
}


def test_probe_choice():
    lesson01.check_probe_choice("pretrained encoder", RESULTS)
    assert "training accuracy" in hint_of(lesson01.check_probe_choice, "random-weight encoder", RESULTS)
    assert "held-out" in hint_of(lesson01.check_probe_choice, "causal LM", RESULTS)
    assert "not one of the candidates" in hint_of(lesson01.check_probe_choice, "bert", RESULTS)
    assert "string" in hint_of(lesson01.check_probe_choice, 0.8, RESULTS)
    for wrong in ("random-weight encoder", "causal LM", 0.8):
        assert "pretrained encoder" not in hint_of(lesson01.check_probe_choice, wrong, RESULTS)


def test_unanswered_exercises_say_not_answered_yet(capsys):
    check(lesson01.check_training_state_bytes, ..., P, strict=False)
    check(lesson01.check_probe_choice, ..., RESULTS, strict=False)
    assert capsys.readouterr().out.count("Not answered yet") == 2


def test_lesson01_quiz_is_complete():
    assert 4 <= len(lesson01.QUIZ.questions) <= 6
    for q in lesson01.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3
    assert "18" in lesson01.QUIZ.as_text()
