import pytest
import torch

from ftlib.exercises import Hint
from ftlib.exercises import lesson06


def hint_of(fn, *args):
    with pytest.raises(Hint) as info:
        fn(*args)
    return str(info.value)


def test_lora_param_count_hints():
    lesson06.check_lora_params(8 * (384 + 1536), 384, 1536, 8)
    assert "both A and B" in hint_of(lesson06.check_lora_params, 8 * 384, 384, 1536, 8)
    assert "frozen weight" in hint_of(lesson06.check_lora_params, 384 * 1536, 384, 1536, 8)
    assert "not r x r" in hint_of(lesson06.check_lora_params, 64, 384, 1536, 8)
    assert "whole number" in hint_of(lesson06.check_lora_params, 15360.0, 384, 1536, 8)
    assert "15360" not in hint_of(lesson06.check_lora_params, 1, 384, 1536, 8)


def test_lora_forward_hints():
    torch.manual_seed(1)
    W0, A, B, x, alpha, r = torch.randn(6, 5), torch.randn(2, 5), torch.randn(6, 2), torch.randn(3, 5), 4.0, 2
    lesson06.check_lora_forward(x @ W0.T + (alpha / r) * (x @ A.T @ B.T), W0, A, B, x, alpha, r)
    assert "scaled" in hint_of(lesson06.check_lora_forward, x @ W0.T + x @ A.T @ B.T, W0, A, B, x, alpha, r)
    assert "W0·x is still there" in hint_of(lesson06.check_lora_forward, (alpha / r) * (x @ A.T @ B.T), W0, A, B, x, alpha, r)
    assert "shape" in hint_of(lesson06.check_lora_forward, W0 @ x.T, W0, A, B, x, alpha, r)
    assert "tensor" in hint_of(lesson06.check_lora_forward, [1.0], W0, A, B, x, alpha, r)


def test_chosen_rank_hints():
    results = [{"r": 1, "accuracy": 0.80}, {"r": 4, "accuracy": 0.845}, {"r": 16, "accuracy": 0.85}, {"r": 64, "accuracy": 0.848}]
    lesson06.check_chosen_rank(4, results)
    assert "more than one point below" in hint_of(lesson06.check_chosen_rank, 1, results)
    assert "smaller rank" in hint_of(lesson06.check_chosen_rank, 16, results)
    assert "ranks that were run" in hint_of(lesson06.check_chosen_rank, 8, results)


def test_quiz_is_complete():
    assert len(lesson06.QUIZ.questions) >= 4
    for q in lesson06.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3
