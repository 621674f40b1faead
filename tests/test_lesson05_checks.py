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


# Exercise 1: the adapter module, written by the learner.
import torch  # noqa: E402
from torch import nn  # noqa: E402


def make_adapter(*, residual=True, act=nn.GELU, zero_up=True, zero_down=False, where="between"):
    """The exercise's class as a learner writes it, with the slips the tests need."""
    class MyAdapter(nn.Module):
        def __init__(self, hidden, bottleneck=64):
            super().__init__()
            self.down, self.act, self.up = nn.Linear(hidden, bottleneck), act(), nn.Linear(bottleneck, hidden)
            if zero_up:
                nn.init.zeros_(self.up.weight)
                nn.init.zeros_(self.up.bias)
            if zero_down:
                nn.init.zeros_(self.down.weight)

        def forward(self, h):
            inner = self.up(self.act(self.down(h))) if where == "between" else self.act(self.up(self.down(h)))
            return h + inner if residual else inner

    torch.manual_seed(0)
    adapter = MyAdapter(32, bottleneck=8)
    h = torch.randn(2, 5, 32)
    return adapter(h), adapter, h


def test_my_adapter_right_answer_passes():
    lesson05.check_my_adapter(*make_adapter())


def test_my_adapter_hints_name_the_slip():
    check = lesson05.check_my_adapter
    assert "skip connection" in hint_of(check, *make_adapter(residual=False))
    assert "collapse into one linear map" in hint_of(check, *make_adapter(act=nn.Identity))
    assert "not ReLU" in hint_of(check, *make_adapter(act=nn.ReLU))
    assert "wrong place" in hint_of(check, *make_adapter(where="after"))
    assert "unchanged" in hint_of(check, *make_adapter(zero_up=False))
    assert "no gradient" in hint_of(check, *make_adapter(zero_down=True))
    out, adapter, h = make_adapter()
    assert "should return a tensor" in hint_of(check, None or 0.0, adapter, h)
    assert "as wide" in hint_of(check, out[..., :8], adapter, h)
    adapter.up = nn.Sequential(adapter.up)
    assert "`down` and `up`" in hint_of(check, out, adapter, h)


def test_my_adapter_unanswered_says_so(capsys):
    from ftlib.exercises import check

    _, adapter, h = make_adapter()
    check(lesson05.check_my_adapter, ..., adapter, h)
    assert "Not answered yet" in capsys.readouterr().out


def test_my_adapter_hints_never_give_the_answer():
    slips = ({"residual": False}, {"act": nn.Identity}, {"zero_up": False}, {"where": "after"})
    for slip in slips:
        hint = hint_of(lesson05.check_my_adapter, *make_adapter(**slip))
        assert "h +" not in hint and "self.up(" not in hint and "gelu(" not in hint.lower()
