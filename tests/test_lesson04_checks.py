"""Lesson 04's checks: a right answer passes, and each common slip gets its own hint."""
import pytest

from ftlib.exercises import Hint
from ftlib.exercises import lesson04

# The lite encoder's groups (MiniLM, BERT layout), and DistilBERT's (no pooler).
BERT = {"embeddings": 11_918_592, **{f"block {i}": 1_774_464 for i in range(6)}, "pooler": 147_840, "head": 770}
DISTIL = {"embeddings": 23_835_648, **{f"block {i}": 7_087_872 for i in range(6)}, "head": 592_130}


def hint_of(fn, *args):
    with pytest.raises(Hint) as info:
        fn(*args)
    return str(info.value)


def test_top_k_right_answer_passes():
    lesson04.check_top_k_params(3 * 1_774_464 + 147_840 + 770, BERT, 3)
    lesson04.check_top_k_params(float(3 * 1_774_464 + 147_840 + 770), BERT, 3)
    lesson04.check_top_k_params(3 * 7_087_872 + 592_130, DISTIL, 3)


def test_top_k_truth_matches_unfreeze_top():
    import tiny
    from ftlib.freezing import layer_groups, unfreeze_top

    model = tiny.classifier()
    sizes = {n: sum(p.numel() for p in ps) for n, ps in layer_groups(model).items()}
    lesson04.check_top_k_params(unfreeze_top(model, 1)[0], sizes, 1)


def test_top_k_hints_name_the_slip():
    check, block, truth = lesson04.check_top_k_params, 1_774_464, 3 * 1_774_464 + 147_840 + 770
    assert "top blocks only" in hint_of(check, 3 * block, BERT, 3)
    assert "pooler" in hint_of(check, 3 * block + 770, BERT, 3)
    assert "embeddings stay frozen" in hint_of(check, truth + 11_918_592, BERT, 3)
    assert "every parameter" in hint_of(check, sum(BERT.values()), BERT, 3)
    assert "head alone" in hint_of(check, 770, BERT, 3)
    assert "off by 1 block" in hint_of(check, truth - block, BERT, 3)
    assert "off by 1 block" in hint_of(check, truth + block, BERT, 3)
    assert "top blocks only" in hint_of(check, 3 * 7_087_872, DISTIL, 3)
    assert "whole number" in hint_of(check, truth + 0.5, BERT, 3)
    assert "number of parameters" in hint_of(check, "5471002", BERT, 3)
    assert "add the head" in hint_of(check, 12345, BERT, 3)


def test_top_k_hints_never_give_the_answer():
    truth = 3 * 1_774_464 + 147_840 + 770
    for wrong in (3 * 1_774_464, 3 * 1_774_464 + 770, truth + 11_918_592, 770, truth - 1_774_464, 12345):
        hint = hint_of(lesson04.check_top_k_params, wrong, BERT, 3)
        assert str(truth) not in hint and f"{truth:,}" not in hint


TOP, F, N = 1e-4, 2.6, 6
TRUTH = {f"block {i}": TOP / F ** (N - 1 - i) for i in range(N)}


def test_block_lrs_right_answer_passes():
    lesson04.check_block_lrs(TRUTH, TOP, F, N)
    lesson04.check_block_lrs({k: float(f"{v:.12g}") for k, v in TRUTH.items()}, TOP, F, N)


def test_block_lrs_hints_name_the_slip():
    check = lesson04.check_block_lrs
    assert "upside down" in hint_of(check, dict(zip(TRUTH, reversed(list(TRUTH.values())))), TOP, F, N)
    assert "divide by the factor instead" in hint_of(check, {f"block {i}": TOP * F ** (N - 1 - i) for i in range(N)},
                                                     TOP, F, N)
    assert "one factor too small" in hint_of(check, {k: v / F for k, v in TRUTH.items()}, TOP, F, N)
    assert "one factor too large" in hint_of(check, {k: v * F for k, v in TRUTH.items()}, TOP, F, N)
    assert "same rate" in hint_of(check, {k: TOP for k in TRUTH}, TOP, F, N)
    linear = {f"block {i}": TOP / (F * (N - 1 - i) or 1) for i in range(N)}
    assert "a power" in hint_of(check, linear, TOP, F, N)
    assert "missing ['block 5']" in hint_of(check, {k: v for k, v in TRUTH.items() if k != "block 5"}, TOP, F, N)
    assert "not expected ['block 6']" in hint_of(check, {**TRUTH, "block 6": 1.0}, TOP, F, N)
    assert "dict" in hint_of(check, list(TRUTH.values()), TOP, F, N)
    assert "positive number" in hint_of(check, {**TRUTH, "block 0": -1.0}, TOP, F, N)


def test_block_lrs_hints_never_give_the_answer():
    check = lesson04.check_block_lrs
    wrongs = [dict(zip(TRUTH, reversed(list(TRUTH.values())))), {k: v / F for k, v in TRUTH.items()},
              {k: TOP for k in TRUTH}]
    for wrong in wrongs:
        hint = hint_of(check, wrong, TOP, F, N)
        assert not any(f"{v:.2e}" in hint or f"{v:g}" in hint or repr(v) in hint for v in list(TRUTH.values())[:-1])


def test_lesson04_quiz_is_complete():
    assert 4 <= len(lesson04.QUIZ.questions) <= 6
    for q in lesson04.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3
    assert "running mean and variance" in lesson04.QUIZ.as_text()


# Exercise 2: freezing by hand, and two optimizer groups (the head at 10x).
import torch  # noqa: E402

LR = 1e-4


def by_hand(trains=("block 1", "head"), rates=(LR, 10 * LR)):
    """The exercise as a learner writes it on the tiny BERT (2 blocks), with the slips the tests need."""
    import tiny
    from ftlib.freezing import layer_groups

    model = tiny.classifier()
    groups = layer_groups(model)
    for name, params in groups.items():
        for p in params:
            p.requires_grad = name in trains
    optimizer = torch.optim.AdamW([{"params": groups["block 1"], "lr": rates[0]},
                                   {"params": groups["head"], "lr": rates[1]}])
    return optimizer, model


def test_freezing_by_hand_right_answer_passes():
    lesson04.check_freezing_by_hand(*by_hand(), LR)


def test_freezing_by_hand_matches_ftlib():
    import tiny
    from ftlib.freezing import count_parameters

    optimizer, model = by_hand()
    ref_optimizer, counts = lesson04.reference_top_and_head(tiny.classifier(), LR)
    assert count_parameters(model) == counts
    assert sorted(g["lr"] for g in ref_optimizer.param_groups) == sorted([LR, LR, 10 * LR, 10 * LR])


def test_freezing_by_hand_hints_name_the_slip():
    check = lesson04.check_freezing_by_hand
    assert "head is frozen too" in hint_of(check, *by_hand(trains=("block 1",)), LR)
    assert "same learning rate" in hint_of(check, *by_hand(rates=(LR, LR)), LR)
    assert "upside down" in hint_of(check, *by_hand(rates=(10 * LR, LR)), LR)
    assert "keep the rate" in hint_of(check, *by_hand(rates=(LR / 10, LR)), LR)
    assert "everything still trains" in hint_of(check, *by_hand(trains=("embeddings", "block 0", "block 1", "pooler",
                                                                        "head")), LR)
    assert "only the head trains" in hint_of(check, *by_hand(trains=("head",)), LR)
    assert "['block 0'] should be frozen" in hint_of(check, *by_hand(trains=("block 0", "head")), LR)
    assert "nothing trains" in hint_of(check, *by_hand(trains=()), LR)
    optimizer, model = by_hand()
    assert "torch optimizer" in hint_of(check, [LR, 10 * LR], model, LR)
    assert "not my_model's" in hint_of(check, by_hand()[0], model, LR)
    from ftlib.freezing import layer_groups
    _, model = by_hand()
    groups = layer_groups(model)
    partial = torch.optim.AdamW([{"params": groups["block 1"][:2], "lr": LR}, {"params": groups["head"], "lr": 10 * LR}])
    assert "in no group" in hint_of(check, partial, model, LR)
    everything = torch.optim.AdamW([{"params": groups["block 1"] + groups["block 0"], "lr": LR},
                                    {"params": groups["head"], "lr": 10 * LR}])
    assert "frozen weights" in hint_of(check, everything, model, LR)


def test_freezing_by_hand_unanswered_says_so(capsys):
    from ftlib.exercises import check

    check(lesson04.check_freezing_by_hand, ..., by_hand()[1], LR)
    assert "Not answered yet" in capsys.readouterr().out


def test_freezing_by_hand_hints_never_give_the_answer():
    for slip in ({"trains": ("block 1",)}, {"rates": (LR, LR)}, {"rates": (10 * LR, LR)}, {"trains": ("head",)}):
        hint = hint_of(lesson04.check_freezing_by_hand, *by_hand(**slip), LR)
        assert "requires_grad = " not in hint and "AdamW(" not in hint and f"{10 * LR:g}" not in hint
