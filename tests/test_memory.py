"""ftlib.memory and ftlib.peak_memory: the estimate's parts follow the byte rules, its activation count matches what
autograd really saves, and PeakMemory sees memory allocated inside the block and not before it."""
import psutil
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from ftlib import catalog, memory
from ftlib.memory import ACTIVATION_OVERHEAD, T4_BYTES, activation_bytes, device_budget, estimate_training_memory
from ftlib.peak_memory import PeakMemory, measure_training_peak
from ftlib.freezing import count_parameters

from tiny import classifier


def saved_bytes(model, batch, forward=None) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of `forward()` (default: `model(**batch)`)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in params:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        (forward or (lambda: model(**batch)))()
    return sum(seen.values())


def batch_of(b, s, vocab=1000, causal=False):
    ids = torch.randint(5, vocab, (b, s), generator=torch.Generator().manual_seed(0))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
            "labels": ids if causal else torch.zeros(b, dtype=torch.long)}


@pytest.mark.parametrize("b,s", [(4, 32), (2, 64)])
def test_activation_bytes_match_what_autograd_saves_for_bert(b, s):
    model = classifier().train()
    assert activation_bytes(model.config, batch_size=b, seq_len=s) == pytest.approx(
        saved_bytes(model, batch_of(b, s)), rel=0.03)


def test_activation_bytes_for_a_llama_count_the_logits_it_returns():
    config = AutoConfig.for_model(vocab_size=512, **catalog.TINY_LLAMA.config)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).train()
    b, s = 2, 32
    logits = b * s * config.vocab_size * 4  # returned to the caller, not saved by autograd
    estimate = activation_bytes(config, batch_size=b, seq_len=s)
    assert estimate - logits == pytest.approx(saved_bytes(model, batch_of(b, s, 512, causal=True)), rel=0.1)


def test_activation_bytes_with_logits_at_a_few_positions_match_what_autograd_saves():
    config = AutoConfig.for_model(vocab_size=512, **catalog.TINY_LLAMA.config)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).train()
    b, s, k = 2, 32, 4
    ids = batch_of(b, s, 512, causal=True)["input_ids"]

    def forward():  # the output layer at the last k positions only, and the loss on them
        logits = model(input_ids=ids, logits_to_keep=k).logits
        torch.nn.functional.cross_entropy(logits.reshape(-1, 512).float(), ids[:, -k:].reshape(-1))

    saved = saved_bytes(model, None, forward)
    estimate = activation_bytes(config, batch_size=b, seq_len=s, logit_positions=k)
    assert estimate - b * k * 512 * 4 == pytest.approx(saved, rel=0.1)  # minus the logits returned
    every = activation_bytes(config, batch_size=b, seq_len=s)
    assert every - estimate == b * (s - k) * 2 * 512 * 4
    assert activation_bytes(config, batch_size=b, seq_len=s, logit_positions=10 * s) == every


def test_full_fp32_adamw_is_16_bytes_per_parameter_plus_activations():
    model = classifier()
    _, params = count_parameters(model)
    est = estimate_training_memory(model, batch_size=8, seq_len=32)
    assert (est.weights, est.gradients, est.optimizer) == (4 * params, 4 * params, 8 * params)
    assert est.activations == int(ACTIVATION_OVERHEAD * activation_bytes(model.config, batch_size=8, seq_len=32))
    assert est.total == est.weights + est.gradients + est.optimizer + est.activations
    assert est.as_dict()["total"] == est.total
    assert est.fits(est.total) and not est.fits(est.total - 1)


def test_mixed_precision_is_18_bytes_per_parameter_and_halves_activations():
    model = classifier()
    _, params = count_parameters(model)
    fp32 = estimate_training_memory(model, batch_size=8, seq_len=32)
    fp16 = estimate_training_memory(model, batch_size=8, seq_len=32, precision="fp16")
    assert fp16.weights + fp16.gradients + fp16.optimizer == 18 * params
    assert fp16.activations == pytest.approx(fp32.activations / 2, rel=0.01)


def test_activations_scale_with_batch_and_optimizer_bytes():
    model = classifier()
    one = estimate_training_memory(model, batch_size=4, seq_len=32)
    two = estimate_training_memory(model, batch_size=8, seq_len=32)
    assert two.activations == pytest.approx(2 * one.activations, rel=0.001)
    assert estimate_training_memory(model, batch_size=4, seq_len=32, optimizer="sgd").optimizer == 0


def test_head_and_lora_train_fewer_parameters():
    model = classifier()
    _, params = count_parameters(model)
    full = estimate_training_memory(model, batch_size=8, seq_len=32)
    head = estimate_training_memory(model, batch_size=8, seq_len=32, method="head")
    lora = estimate_training_memory(model, batch_size=8, seq_len=32, method="lora")
    assert head.trainable == sum(p.numel() for p in model.classifier.parameters())
    h, layers = model.config.hidden_size, model.config.num_hidden_layers
    assert lora.trainable == head.trainable + layers * 8 * 4 * h  # rank 8 on query and value
    assert head.activations < full.activations and lora.activations == full.activations
    assert head.weights == full.weights and head.gradients == 4 * head.trainable
    assert estimate_training_memory(model, batch_size=8, seq_len=32, trainable=1000).gradients == 4000


def test_a_config_is_enough_for_the_full_profile_models():
    distilbert = AutoConfig.for_model(**catalog.DISTILBERT.config)
    est = estimate_training_memory(distilbert, batch_size=32, seq_len=128, precision="fp16")
    assert 66_000_000 < est.params < 68_000_000  # distilbert-base-uncased + a 2-label head
    assert est.fits(T4_BYTES)
    smol = AutoConfig.for_model(**catalog.SMOLLM2_360M.config)
    est = estimate_training_memory(smol, batch_size=32, seq_len=512, precision="fp16")
    assert 355_000_000 < est.params < 370_000_000 and not est.fits(T4_BYTES)
    assert "lite" not in str(est) and "GB" in str(est) and "activations" in str(est)


def test_bad_arguments_name_the_fix():
    model = classifier()
    with pytest.raises(ValueError, match="'fp32', 'fp16' or 'bf16'"):
        estimate_training_memory(model, batch_size=1, seq_len=8, precision="int4")
    with pytest.raises(ValueError, match="'full', 'head' or 'lora'"):
        estimate_training_memory(model, batch_size=1, seq_len=8, method="adapter")
    with pytest.raises(ValueError, match="adamw"):
        estimate_training_memory(model, batch_size=1, seq_len=8, optimizer="lion")
    with pytest.raises(ValueError, match="at least 1"):
        estimate_training_memory(model, batch_size=0, seq_len=8)
    llama = AutoConfig.for_model(vocab_size=512, **catalog.TINY_LLAMA.config)
    with pytest.raises(ValueError, match="trainable="):
        estimate_training_memory(llama, batch_size=1, seq_len=8, method="head")


def test_peak_memory_sees_what_the_block_allocates_and_not_what_came_before():
    before = torch.ones(50_000_000 // 4)  # 50 MB that exist at entry: not counted
    with PeakMemory("cpu") as peak:
        inside = torch.ones(200_000_000 // 4)  # 200 MB, touched
        del inside
    assert 150e6 < peak.bytes < 400e6
    with PeakMemory("cpu") as nothing:
        before.add_(1)
    assert nothing.bytes < 50e6


def test_device_budget_on_cpu_is_the_available_ram():
    assert 0 < device_budget("cpu") <= psutil.virtual_memory().total
    assert T4_BYTES == 15e9 and memory.GB == 1e9


def test_measure_training_peak_in_a_fresh_process():
    result = measure_training_peak(catalog.MINILM, batch_size=2, seq_len=16, steps=1)
    weights_grads_adam = 16 * result["params"]  # fp32 AdamW state alone, about 0.36 GB
    assert 0.8 * weights_grads_adam < result["peak_bytes"] < 4 * weights_grads_adam
    assert result["params"] == 22_713_986 and result["seconds"] > 0
