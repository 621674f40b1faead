"""The learning-rate finder (lesson 04): the curve, the suggestion, and nothing left changed."""
import copy
import math

import pytest
import torch

import tiny
from ftlib.freezing import changed_weights, weights_snapshot
from ftlib.lr_finder import find_lr, suggest_lr
from ftlib.runtime import get_runtime


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def test_finder_records_a_rising_rate_and_restores_everything(tok):
    train, _ = tiny.loaders(tok, n_train=32)
    model = tiny.classifier()
    model.eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(**next(iter(train))).loss.backward()
    optimizer.step()  # the optimizer has state (moments) that the finder must not lose
    weights, state = weights_snapshot(model), copy.deepcopy(optimizer.state_dict())
    runtime = get_runtime("smoke", seed=0)
    rng = torch.get_rng_state()

    lrs, losses, suggestion = find_lr(model, train, runtime, start_lr=1e-5, end_lr=10.0,
                                      num_steps=12, optimizer=optimizer, diverge=1e9)
    assert len(lrs) == len(losses) == 12  # more steps than batches: the data is cycled
    assert lrs[0] == pytest.approx(1e-5) and lrs[-1] == pytest.approx(10.0)
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert ratios == pytest.approx([ratios[0]] * len(ratios))  # exponential steps
    assert lrs[0] / 10 <= suggestion <= lrs[-1] and all(math.isfinite(x) for x in losses)

    assert changed_weights(model, weights) == []
    restored = optimizer.state_dict()  # on the model's device now (a GPU, if there is one): compared on the CPU
    assert restored["param_groups"][0]["lr"] == 1e-3
    assert all(torch.equal(state["state"][i]["exp_avg"], restored["state"][i]["exp_avg"].cpu()) for i in state["state"])
    assert torch.equal(rng, torch.get_rng_state())  # later dropout and shuffling are unaffected
    assert not model.training


def test_finder_without_an_optimizer_moves_only_trainable_weights_and_stops_on_divergence(tok):
    train, _ = tiny.loaders(tok, n_train=32)
    model = tiny.classifier()
    model.bert.requires_grad_(False)
    weights = weights_snapshot(model)
    result = find_lr(model, train, get_runtime("smoke", seed=0), start_lr=1e-4, end_lr=1e4, num_steps=40,
                     diverge=1.5)
    assert len(result.lrs) < 40  # a rate of 1e4 makes the loss explode long before the end
    assert result.losses[-1] > 1.5 * min(result.losses)
    assert changed_weights(model, weights) == []


def test_suggestions_on_a_known_curve():
    lrs = [10.0 ** e for e in range(-6, 1)]  # 1e-6 ... 1
    losses = [1.0, 0.99, 0.9, 0.5, 0.4, 0.45, 3.0]  # steepest fall around 1e-3, lowest at 1e-2
    assert suggest_lr(lrs, losses) == pytest.approx(1e-3)
    assert suggest_lr(lrs, losses, "min/10") == pytest.approx(1e-3)
    assert suggest_lr(lrs, [1.0, 0.2, 0.15, 0.14, 0.13, 0.12, 0.11]) == pytest.approx(1e-5)
    # After the minimum the loss diverges; a noisy dip there (3.0 -> 2.0) must not be chosen.
    assert suggest_lr(lrs + [10.0, 100.0], losses[:-1] + [3.0, 2.0, 9.0]) == pytest.approx(1e-3)
    assert suggest_lr(lrs[:3], [0.5, 0.9, 1.0]) == pytest.approx(1e-7)  # no descent: min / 10
    assert suggest_lr(lrs, losses, "edge/10") == pytest.approx(1e-3)  # 0.45 is over 10 % above 0.4
    with pytest.raises(ValueError, match="steepest"):
        suggest_lr(lrs, losses, "valley")
    with pytest.raises(ValueError, match="at least 3"):
        suggest_lr(lrs[:2], losses[:2])


def test_edge_reading_of_a_flat_curve_ignores_its_noisy_lowest_point():
    lrs = [10.0 ** e for e in range(-7, 1)]  # 1e-7 ... 1
    flat = [0.690, 0.697, 0.694, 0.695, 0.699, 0.72, 0.80, 1.4]  # nothing learnt, then it blows up
    assert suggest_lr(lrs, flat, "min/10") == pytest.approx(1e-8)  # the noise at the very first step
    assert suggest_lr(lrs, flat, "edge/10") == pytest.approx(1e-3)  # last rate before 0.80 > 1.1 * 0.690
    assert suggest_lr(lrs[:6], flat[:6], "edge/10") == pytest.approx(1e-3)  # never rose: the last rate tried / 10
    assert suggest_lr(lrs, flat, "edge/10", rise=0.5) == pytest.approx(1e-2)


def test_bad_settings_are_refused(tok):
    model = tiny.classifier()
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        find_lr(model, [], get_runtime("smoke", seed=0), start_lr=1.0, end_lr=1e-3)
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        find_lr(model, [], get_runtime("smoke", seed=0))
