"""LoRA and adapters from scratch: agree with peft, start as the identity, train only themselves."""
import copy

import pytest
import torch
from peft import get_peft_model

import tiny
from ftlib.adapters import Adapter, add_adapters
from ftlib.freezing import changed_weights, count_parameters, trained_state_dict, weights_snapshot
from ftlib.lora import LoRALinear, add_lora, lora_scaling, merge_lora, peft_config
from ftlib.runtime import get_runtime
from ftlib.training import TrainConfig, fit


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


@pytest.fixture
def batch(tok):
    return dict(tok(["not bad at all", "the battery died in a week, sending it back"], padding=True,
                    return_tensors="pt"))


def logits(model, batch):
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("rslora", [False, True], ids=["alpha/r", "rslora"])
def test_our_lora_matches_peft_for_the_same_A_and_B(batch, rslora):
    base = tiny.classifier(dropout=0.0)
    config = peft_config(r=4, alpha=8, rslora=rslora)
    assert config.use_rslora is rslora
    ours, theirs = copy.deepcopy(base), get_peft_model(copy.deepcopy(base), config)
    add_lora(ours, r=4, alpha=8, rslora=rslora)
    torch.manual_seed(1)
    for name, module in ours.named_modules():
        if isinstance(module, LoRALinear):
            module.lora_B.data.normal_()  # non-zero B, so that the update matters
            peft_layer = theirs.base_model.model.get_submodule(name)
            assert module.scaling == peft_layer.scaling["default"] == (8 / 2 if rslora else 8 / 4)
            peft_layer.lora_A["default"].weight.data.copy_(module.lora_A)
            peft_layer.lora_B["default"].weight.data.copy_(module.lora_B)
    diff = (logits(ours, batch) - logits(theirs, batch)).abs().max().item()
    assert diff <= 1e-5, diff
    assert count_parameters(ours)[0] == theirs.get_nb_trainable_parameters()[0]
    assert diff == 0.0 or diff < 1e-6  # in practice the same operations, so (nearly) bit-identical


@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_at_initialisation_the_model_is_unchanged(batch, method):
    base = tiny.classifier(dropout=0.0)
    before = logits(base, batch)
    model = copy.deepcopy(base)
    add_lora(model, r=8, alpha=16) if method == "lora" else add_adapters(model, bottleneck=16)
    assert (logits(model, batch) - before).abs().max().item() <= 1e-6


@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_only_adapter_and_head_parameters_change(tok, method):
    train, _ = tiny.loaders(tok)
    model = tiny.classifier()
    add_lora(model, r=4) if method == "lora" else add_adapters(model, bottleneck=8)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    before = weights_snapshot(model)  # on the CPU: fit moves the model to the GPU, if there is one
    fit(model, train, runtime=get_runtime("smoke"), config=TrainConfig(epochs=1, lr=1e-2, progress=False))
    changed = set(changed_weights(model, before))
    assert changed and changed <= trainable
    expected = ("lora_", "classifier") if method == "lora" else ("adapter", "LayerNorm", "classifier")
    assert all(any(k in n for k in expected) for n in changed), sorted(changed)
    assert not any("query.base" in n or "word_embeddings" in n for n in changed)


def test_trainable_fraction_and_saved_size_are_small(batch):
    model = tiny.classifier()
    total = count_parameters(model)[1]
    add_lora(model, r=4)
    trainable, _ = count_parameters(model)
    saved = trained_state_dict(model)
    assert sum(t.numel() for t in saved.values()) == trainable
    assert set(saved) == {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable / total < 0.05  # most of this tiny model is its 30,522-word embedding


def test_rslora_scales_by_the_square_root_of_the_rank():
    layer = torch.nn.Linear(6, 5)
    for r in (1, 4, 16):
        assert LoRALinear(layer, r=r, alpha=8).scaling == 8 / r
        assert LoRALinear(layer, r=r, alpha=8, rslora=True).scaling == pytest.approx(8 / r ** 0.5)
    assert lora_scaling(16, 8, rslora=True) == 2.0 and lora_scaling(16, 8) == 0.5


@pytest.mark.parametrize("rslora", [False, True], ids=["alpha/r", "rslora"])
def test_merged_model_gives_the_same_outputs(batch, rslora):
    model = tiny.classifier(dropout=0.0)
    add_lora(model, r=4, alpha=8, rslora=rslora)
    for module in model.modules():
        if isinstance(module, LoRALinear):
            module.lora_B.data.normal_()
    unmerged = logits(model, batch)
    merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    torch.testing.assert_close(logits(model, batch), unmerged, rtol=1e-5, atol=1e-5)


def test_adapters_go_after_both_sublayers_of_every_block():
    model = tiny.classifier()
    names = add_adapters(model, bottleneck=8)
    assert names == ["bert.encoder.layer.0.attention.output.dense", "bert.encoder.layer.0.output.dense",
                     "bert.encoder.layer.1.attention.output.dense", "bert.encoder.layer.1.output.dense"]
    assert sum(isinstance(m, Adapter) for m in model.modules()) == 4


def test_distilbert_placement():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    model = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2,
                                                                 hidden_dim=64, num_labels=2))
    assert len(add_adapters(model, bottleneck=4)) == 4
    assert model.pre_classifier.weight.requires_grad and model.classifier.weight.requires_grad


def test_bad_targets_and_ranks_are_refused():
    with pytest.raises(ValueError, match="linear layers are named"):
        add_lora(tiny.classifier(), targets=("q_proj",))
    with pytest.raises(ValueError, match="rank r must be at least 1"):
        LoRALinear(torch.nn.Linear(4, 4), r=0)
    with pytest.raises(ValueError, match="bottleneck must be at least 1"):
        Adapter(8, bottleneck=0)
