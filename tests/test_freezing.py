"""Layer groups, freezing by group, discriminative learning rates and frozen BatchNorm (lesson 04)."""
import copy

import pytest
import torch
from torch import nn
from transformers.modeling_outputs import ImageClassifierOutput

import tiny
from ftlib import freezing
from ftlib.freezing import count_parameters
from ftlib.runtime import get_runtime
from ftlib.optim import make_optimizer
from ftlib.training import TrainConfig, fit


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def test_layer_groups_of_bert_in_order_and_complete():
    model = tiny.classifier()
    groups = freezing.layer_groups(model)
    assert list(groups) == ["embeddings", "block 0", "block 1", "pooler", "head"]
    assert sum(p.numel() for ps in groups.values() for p in ps) == count_parameters(model)[1]
    assert all(p is q for p, q in zip(groups["head"], model.classifier.parameters()))
    assert all(p is q for p, q in zip(groups["block 1"], model.bert.encoder.layer[1].parameters()))


def test_set_trainable_trains_exactly_the_named_groups():
    model = tiny.classifier()
    trainable, total = freezing.set_trainable(model, ["block 1", "head"])
    expected = sum(p.numel() for m in (model.bert.encoder.layer[1], model.classifier) for p in m.parameters())
    assert (trainable, total) == (expected, count_parameters(model)[1])
    assert not any(p.requires_grad for p in model.bert.embeddings.parameters())
    with pytest.raises(ValueError, match="no layer group named \\['block 7'\\]"):
        freezing.set_trainable(model, ["block 7"])


def test_unfreeze_top_matches_the_older_functions():
    model, n = tiny.classifier(), 2
    assert freezing.unfreeze_top(model, 0) == freezing.freeze_all_but_head(copy.deepcopy(model))
    for k in range(1, n + 1):
        assert freezing.unfreeze_top(model, k) == freezing.freeze_bottom(copy.deepcopy(model), n - k)
    assert freezing.unfreeze_top(model, 2)[0] < freezing.unfreeze_all(model)[0] == count_parameters(model)[1]
    with pytest.raises(ValueError, match="between 0 and 2"):
        freezing.unfreeze_top(model, 3)


def test_discriminative_lrs_fall_by_the_factor_per_block():
    lrs = freezing.discriminative_lrs(tiny.classifier(), 1e-3, factor=2.0)
    assert lrs == pytest.approx({"head": 1e-3, "pooler": 1e-3, "block 1": 5e-4, "block 0": 2.5e-4,
                                 "embeddings": 1.25e-4})
    with pytest.raises(ValueError, match="factor at least 1"):
        freezing.discriminative_lrs(tiny.classifier(), 1e-3, factor=0.5)


def test_group_lrs_reach_the_optimizer_and_default_is_unchanged():
    model = tiny.classifier()
    plain = make_optimizer(model, lr=1e-3)
    assert [g["weight_decay"] for g in plain.param_groups] == [0.01, 0.0]  # as before lesson 04
    rates = freezing.discriminative_lrs(model, 1e-3, factor=2.0)
    optimizer = make_optimizer(model, lr=1e-3, group_lrs=rates)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    for name, params in freezing.layer_groups(model).items():
        assert [lr_of[id(p)] for p in params] == pytest.approx([rates[name]] * len(params)), name
    assert optimizer.param_groups[0]["lr"] == 1e-3  # highest first: the history's "lr" is the head's
    partial = make_optimizer(model, lr=1e-3, group_lrs={"embeddings": 1e-5})
    assert sorted({g["lr"] for g in partial.param_groups}) == [1e-5, 1e-3]  # unnamed groups use lr
    with pytest.raises(ValueError, match="unknown groups \\['encoder'\\]"):
        make_optimizer(model, lr=5e-5, group_lrs={"encoder": 1e-5})


def test_fit_with_group_lrs_moves_lower_groups_less(tok):
    train, _ = tiny.loaders(tok, n_train=32)
    model = tiny.classifier(dropout=0.0)
    before = copy.deepcopy(model)
    rates = {"embeddings": 1e-9, "block 0": 1e-9, "block 1": 1e-3, "pooler": 1e-3, "head": 1e-3}
    fit(model, train, runtime=get_runtime("smoke", seed=0),
        config=TrainConfig(epochs=1, lr=1e-3, group_lrs=rates, progress=False))
    moved = {n: max((p.detach().cpu() - q).abs().max().item() for p, q in zip(ps, freezing.layer_groups(before)[n]))
             for n, ps in freezing.layer_groups(model).items()}
    assert moved["block 0"] < 1e-6 < moved["block 1"] and moved["embeddings"] < 1e-6


class TinyCNN(nn.Module):
    """Two conv blocks with BatchNorm and a linear head, shaped like ftlib.small_cnn.SmallCNN."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()) for c_in in (1, 8))
        self.classifier = nn.Linear(8, 2)

    def forward(self, pixel_values, labels=None):
        h = pixel_values
        for block in self.blocks:
            h = block(h)
        logits = self.classifier(h.mean(dim=(2, 3)))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)


def _image_loader():
    g = torch.Generator().manual_seed(0)
    x = 3.0 + 2.0 * torch.randn(32, 1, 6, 6, generator=g)  # statistics far from the stored (0, 1)
    data = [{"pixel_values": x[i], "labels": torch.tensor(i % 2)} for i in range(32)]
    return torch.utils.data.DataLoader(data, batch_size=8)


def _running_stats(model):
    return [b.detach().cpu().clone() for n, b in model.named_buffers() if "running" in n]  # CPU copies: fit may move the model


@pytest.mark.parametrize("fix", [False, True])
def test_frozen_batchnorm_keeps_its_statistics_only_with_the_fix(fix):
    model = TinyCNN()
    freezing.freeze_all_but_head(model)
    if fix:
        assert freezing.keep_frozen_batchnorm_in_eval(model) == 2
    before = _running_stats(model)
    fit(model, _image_loader(), runtime=get_runtime("smoke", seed=0), config=TrainConfig(epochs=1, lr=1e-2, progress=False))
    unchanged = all(torch.equal(a, b) for a, b in zip(before, _running_stats(model)))
    assert unchanged == fix  # without the fix, a "frozen" backbone still drifts
    assert model.training  # fit leaves the model in train mode; only frozen BatchNorm layers are in eval mode
    assert all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d)) == fix


def test_unfrozen_batchnorm_trains_again_after_the_fix():
    model = TinyCNN()
    freezing.freeze_all_but_head(model)
    freezing.keep_frozen_batchnorm_in_eval(model)
    freezing.keep_frozen_batchnorm_in_eval(model)  # twice is harmless: one hook per layer
    assert all(len(m._forward_pre_hooks) == 1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert freezing.unfreeze_top(model, 1) == (sum(p.numel() for p in model.blocks[1].parameters()) + 18,
                                               count_parameters(model)[1])
    top_before, bottom_before = model.blocks[1][1].running_mean.clone(), model.blocks[0][1].running_mean.clone()
    model.train()
    model(next(iter(_image_loader()))["pixel_values"])
    assert not torch.equal(model.blocks[1][1].running_mean, top_before)  # unfrozen: updates its statistics
    assert torch.equal(model.blocks[0][1].running_mean, bottom_before)  # still frozen: keeps them
