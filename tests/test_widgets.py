"""The explorers: their numbers agree with what really happens to the model."""
import copy

import pytest

import tiny
from ftlib import widgets
from ftlib.freezing import freeze_bottom
from ftlib.lora import add_lora
from ftlib.freezing import count_parameters


@pytest.mark.parametrize("r", [1, 4, 8])
def test_lora_footprint_matches_the_injected_layers(r):
    model = tiny.classifier()
    predicted = widgets.lora_footprint(model, r, alpha=2 * r)
    injected = copy.deepcopy(model)
    add_lora(injected, r=r, train_also=())  # nothing else trains: only the LoRA matrices count
    assert predicted["trainable"] == count_parameters(injected)[0]
    assert predicted["adapter_bytes"] == 4 * predicted["trainable"]
    assert predicted["scaling"] == 2.0 and predicted["layers"] == 4  # query and value in 2 blocks
    assert count_parameters(model)[0] == count_parameters(tiny.classifier())[0]  # the model was not changed


def test_lora_footprint_refuses_a_bad_rank_or_target():
    with pytest.raises(ValueError, match="at least 1"):
        widgets.lora_footprint(tiny.classifier(), 0)
    with pytest.raises(ValueError, match="no linear layer"):
        widgets.lora_footprint(tiny.classifier(), 4, targets=["nothing_named_so"])


@pytest.mark.parametrize("k", [0, 1, 2])
def test_freeze_plan_matches_freeze_bottom(k):
    model = tiny.classifier()
    rows = widgets.freeze_plan(model, k)
    assert [r["group"] for r in rows] == ["embeddings", "block 0", "block 1", "other (pooler)", "head"]
    assert sum(r["params"] for r in rows) == count_parameters(model)[1]
    trainable, _ = freeze_bottom(copy.deepcopy(model), k)
    assert sum(r["params"] for r in rows if r["trains"]) == trainable


def test_freeze_plan_refuses_k_out_of_range():
    with pytest.raises(ValueError, match="between 0 and 2"):
        widgets.freeze_plan(tiny.classifier(), 3)


def test_explorers_print_a_table_when_headless(capsys):
    widgets.lora_explorer(tiny.classifier(), ranks=(2, 8))
    widgets.freeze_explorer(tiny.classifier())
    out = capsys.readouterr().out
    assert "rank 2" in out and "rank 8" in out and "KiB" in out
    assert "✗ frozen  block 0" in out and "trainable:" in out


def test_explorers_build_widgets_that_react(monkeypatch):
    shown = []
    monkeypatch.setattr(widgets, "interactive", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    widgets.lora_explorer(tiny.classifier())
    rank, alpha, out = shown[-1].children[1:]
    assert "rank 8" in out.value
    rank.value = 32
    assert "rank 32" in out.value and "scaling alpha/r = 0.50" in out.value
    widgets.freeze_explorer(tiny.classifier())
    depth, out = shown[-1].children[1:]
    depth.value = 0
    assert "✓ trains  block 0" in out.value


def test_memory_calculator_agrees_with_the_estimator_and_reacts(monkeypatch):
    from ftlib.memory import T4_BYTES, estimate_training_memory

    models = widgets._calculator_models()
    assert {"distilbert-base-uncased", "Gemma 3 270M", "Qwen2.5-0.5B-Instruct"} <= set(models)
    smol = models["Qwen2.5-0.5B-Instruct"]
    small = widgets.fit_report(smol, method="lora", precision="fp16", batch_size=1, seq_len=64, budget=T4_BYTES)
    huge = widgets.fit_report(smol, method="full", precision="fp32", batch_size=128, seq_len=2048, budget=T4_BYTES)
    assert "=> fits" in small and "does NOT fit" in huge
    total = estimate_training_memory(smol, batch_size=1, seq_len=64, precision="fp16", method="lora",
                                     flash_attention=True).total
    assert f"{total / 1e9:.2f} GB" in small

    shown = []
    monkeypatch.setattr(widgets, "interactive", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    widgets.memory_calculator()
    pick, method, precision, batch, length, scored, out = shown[-1].children[1:]
    pick.value = "Qwen2.5-0.5B-Instruct"
    batch.value, length.value, precision.value = 128, 2048, "fp32"
    assert "does NOT fit" in out.value
    # the output layer at 16 answer positions: exactly the estimator's figure with logit_positions=16
    batch.value, length.value, precision.value, method.value = 8, 512, "fp16", "lora"
    every = out.value
    scored.value = 16
    answers_only = estimate_training_memory(smol, batch_size=8, seq_len=512, precision="fp16", method="lora",
                                            flash_attention=True, logit_positions=16).total
    assert f"{answers_only / 1e9:.2f} GB" in out.value and out.value != every
    method.value = "head"  # a causal LM has no classification head: said, not raised
    assert out.value.startswith("<pre>no estimate")


def test_memory_calculator_prints_when_headless(capsys):
    widgets.memory_calculator()
    out = capsys.readouterr().out
    assert "distilbert-base-uncased" in out and "=> " in out
