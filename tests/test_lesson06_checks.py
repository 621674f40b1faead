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


def rank_results(val, test):
    return [{"r": r, "val_accuracy": v, "accuracy": t} for r, v, t in zip((1, 4, 16, 64), val, test)]


def test_chosen_rank_hints():
    results = rank_results(val=(0.80, 0.845, 0.85, 0.848), test=(0.83, 0.80, 0.81, 0.84))
    lesson06.check_chosen_rank(4, results)
    assert "*test* accuracy" in hint_of(lesson06.check_chosen_rank, 1, results)  # chosen on test
    assert "more than one point below" in hint_of(lesson06.check_chosen_rank, 64, rank_results(
        val=(0.80, 0.845, 0.85, 0.70), test=(0.80, 0.845, 0.85, 0.86)))
    assert "smaller rank" in hint_of(lesson06.check_chosen_rank, 16, results)
    assert "ranks that were run" in hint_of(lesson06.check_chosen_rank, 8, results)
    assert "0.85" not in hint_of(lesson06.check_chosen_rank, 16, results)


def test_chosen_rank_on_the_lessons_sweep():
    """The lesson's `results`: the alpha = 2r line at r = 1, 8, 64, rows as run_lora makes them."""
    rows = [{"r": r, "alpha": 2 * r, "rslora": False, "scale": 2.0, "where": "attention", "seed": 0,
             "trainable": 1000 * r, "val_accuracy": v, "accuracy": t}
            for r, v, t in zip((1, 8, 64), (0.84, 0.853, 0.86), (0.87, 0.85, 0.84))]
    lesson06.check_chosen_rank(8, rows)
    assert "ranks that were run" in hint_of(lesson06.check_chosen_rank, ..., rows)  # the unanswered stub
    assert "*test* accuracy" in hint_of(lesson06.check_chosen_rank, 1, rows)
    assert "smaller rank" in hint_of(lesson06.check_chosen_rank, 64, rows)
    assert "0.86" not in hint_of(lesson06.check_chosen_rank, 64, rows)


def test_quiz_is_complete():
    assert len(lesson06.QUIZ.questions) >= 4
    for q in lesson06.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3


# Exercises 1 and 3: the LoRA layer and its injection, written by the learner.
import math  # noqa: E402

from torch import nn  # noqa: E402

from ftlib.exercises import check as run_check  # noqa: E402
from ftlib.lora import LoRALinear  # noqa: E402


def make_layer_class(slip=None):
    """Exercise 1's class as a learner writes it, with the slips the tests need."""
    class MyLoRALinear(nn.Module):
        def __init__(self, base, r=8, alpha=16):
            super().__init__()
            self.base = base.requires_grad_(False)
            self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
            self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            self.r, self.alpha = r, alpha

        def forward(self, x):
            if slip == "unanswered":
                return ...
            scale = {"no scale": 1.0, "inverted": self.r / self.alpha}.get(slip, self.alpha / self.r)
            if slip == "swapped":
                update = x @ self.lora_B @ self.lora_A
            else:
                update = x @ self.lora_A.T @ self.lora_B.T
            if slip == "no base":
                return scale * update
            if slip == "no bias":
                return x @ self.base.weight.T + scale * update
            return self.base(x) + scale * update

    return MyLoRALinear


def layer_args(slip=None, width=12):
    torch.manual_seed(0)
    base, x = nn.Linear(width, width), torch.randn(3, width)
    layer = make_layer_class(slip)(base, r=2, alpha=6)
    return layer(x), layer, x


def test_my_lora_linear_right_answer_passes():
    lesson06.check_my_lora_linear(*layer_args())


def test_my_lora_linear_hints_name_the_slip():
    check = lesson06.check_my_lora_linear
    assert "not scaled" in hint_of(check, *layer_args("no scale"))
    assert "upside down" in hint_of(check, *layer_args("inverted"))
    assert "only the low-rank update" in hint_of(check, *layer_args("no base"))
    assert "bias is missing" in hint_of(check, *layer_args("no bias"))
    assert "swapped" in hint_of(check, *layer_args("swapped"))
    out, layer, x = layer_args()
    assert "should return a tensor" in hint_of(check, 0.0, layer, x)
    assert "shape" in hint_of(check, out[:, :4], layer, x)


def test_my_lora_linear_unanswered_says_so(capsys):
    run_check(lesson06.check_my_lora_linear, *layer_args("unanswered"), strict=False)
    assert "Not answered yet" in capsys.readouterr().out


def test_my_lora_linear_hints_never_give_the_answer():
    for slip in ("no scale", "inverted", "no base", "no bias", "swapped"):
        hint = hint_of(lesson06.check_my_lora_linear, *layer_args(slip))
        assert "alpha / r" not in hint and "alpha/r" not in hint and "@" not in hint and ".T" not in hint
        assert "self.base(" not in hint and "B·A" not in hint


def make_inject(slip=None, layer_class=None):
    """Exercise 3's function as a learner writes it, with the slips the tests need."""
    from ftlib.freezing import freeze_all_but_head

    cls = layer_class or make_layer_class()

    def my_add_lora(model, targets, r=8, alpha=16):
        freeze_all_but_head(model)
        if slip == "unanswered":
            return ...
        replaced = []
        for name, module in list(model.named_modules()):
            hit = slip == "all linear" or name.rsplit(".", 1)[-1] in targets
            if isinstance(module, nn.Linear) and hit and "classifier" not in name:
                parent, _, child = name.rpartition(".")
                if slip == "dotted setattr":
                    setattr(model, name, cls(module, r=r, alpha=alpha))
                else:
                    setattr(model.get_submodule(parent), child, cls(module, r=r, alpha=alpha))
                if slip != "no names":
                    replaced.append(name)
        return replaced

    return my_add_lora


def inject_args(slip=None, layer_class=None):
    fn = make_inject(slip, layer_class)
    model = lesson06._tiny_bert()
    return fn(model, ("query", "value")), fn


def test_my_add_lora_right_answer_passes():
    lesson06.check_my_add_lora(*inject_args())
    lesson06.check_my_add_lora(*inject_args(layer_class=LoRALinear))  # ftlib's layer is fine too


def test_my_add_lora_hints_name_the_slip():
    check = lesson06.check_my_add_lora
    assert "not among the targets" in hint_of(check, *inject_args("all linear"))
    assert "dotted name" in hint_of(check, *inject_args("dotted setattr"))
    assert "`replaced` should list" not in hint_of(check, *inject_args("no names"))
    assert "does not name them" in hint_of(check, *inject_args("no names"))
    assert "exercise" in hint_of(check, *inject_args(layer_class=make_layer_class("no scale")))
    assert "list of the names" in hint_of(check, "query", make_inject())


def test_my_add_lora_unanswered_says_so(capsys):
    run_check(lesson06.check_my_add_lora, *inject_args("unanswered"), strict=False)
    assert "Not answered yet" in capsys.readouterr().out


def test_my_add_lora_hints_never_give_the_answer():
    for slip in ("all linear", "dotted setattr", "no names"):
        hint = hint_of(lesson06.check_my_add_lora, *inject_args(slip))
        assert "setattr(" not in hint and "rpartition" not in hint and "get_submodule" not in hint
