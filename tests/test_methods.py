"""What trains under each method, and fine-tunes saved small and loaded back identical."""
import json
import subprocess
import sys

import pytest
import torch

import tiny
from ftlib import catalog
from ftlib.freezing import freeze_all_but_head, freeze_bottom, transformer_blocks
from ftlib.methods import apply_method, check_method, load_finetuned, save_finetuned
from ftlib.freezing import count_parameters
from ftlib.models import load_text_classifier


def test_head_only_trains_the_head():
    model = tiny.classifier()
    trainable, total = freeze_all_but_head(model)
    assert trainable == 32 * 2 + 2 and total == count_parameters(tiny.classifier())[1]


def test_freezing_more_blocks_trains_fewer_parameters():
    counts = [freeze_bottom(tiny.classifier(), k)[0] for k in range(3)]
    assert counts[0] > counts[1] > counts[2] > 66
    model = tiny.classifier()
    freeze_bottom(model, 1)
    blocks = transformer_blocks(model)
    assert not any(p.requires_grad for p in blocks[0].parameters())
    assert all(p.requires_grad for p in blocks[1].parameters())
    assert not model.bert.embeddings.word_embeddings.weight.requires_grad
    with pytest.raises(ValueError, match="between 0 and 2"):
        freeze_bottom(tiny.classifier(), 3)


@pytest.mark.parametrize("method", ["full", "head", "freeze:1", "adapter", "lora"])
def test_every_method_applies(method):
    model = tiny.classifier()
    apply_method(model, method, lora_r=4, adapter_size=8)
    trainable, total = count_parameters(model)
    assert 0 < trainable <= total
    assert (trainable == total) == (method == "full")


def test_unknown_method():
    with pytest.raises(ValueError, match="invalid method 'prefix'"):
        check_method("prefix")


@pytest.fixture(scope="module")
def minilm_batch():
    _, tok = load_text_classifier(catalog.MINILM, ["negative", "positive"])
    return dict(tok(["not bad at all", "awful, sent it back"], padding=True, return_tensors="pt"))


def pretend_it_trained(model):
    """Move every trainable weight a little, as training would (B = 0 would hide a wrong LoRA scale)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)


@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_saved_and_reloaded_fine_tune_answers_the_same(tmp_path, minilm_batch, method):
    model, tok = load_text_classifier(catalog.MINILM, ["negative", "positive"])
    settings = {"lora_r": 4, "lora_alpha": 8} if method == "lora" else {"adapter_size": 16}
    apply_method(model, method, **settings)
    pretend_it_trained(model)
    model.eval()
    with torch.no_grad():
        before = model(**minilm_batch).logits
    size = save_finetuned(model, tok, tmp_path, method, **settings)
    assert not (tmp_path / "model.safetensors").exists()
    weights = "adapter_model.safetensors" if method == "lora" else "trained.safetensors"
    assert size == (tmp_path / weights).stat().st_size
    assert size < 0.05 * count_parameters(model)[1] * 4  # under 5 % of the full fp32 model
    again, _ = load_finetuned(tmp_path, catalog.MINILM)
    again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(**minilm_batch).logits, before, rtol=0, atol=1e-6)


def test_command_line_lora_saves_only_what_trained(tmp_path):
    rows = "".join(f'"{t}",{y}\n' for t, y in [("lovely", "positive"), ("dreadful", "negative")] * 6)
    (tmp_path / "d.csv").write_text("text,label\n" + rows)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "ftlib", "finetune", "--task", "text-classification", "--train",
                           tmp_path / "d.csv", "--eval", tmp_path / "d.csv", "--profile", "smoke", "--epochs", "1",
                           "--method", "lora", "--lora-r", "4", "--lora-targets", "query,key,value", "--quiet",
                           "--out", out], capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "lora" and metrics["trainable_params"] < 0.02 * metrics["total_params"]
    assert metrics["saved_bytes"] == (out / "model" / "adapter_model.safetensors").stat().st_size  # peft's format
    recipe = json.loads((out / "model" / "method.json").read_text())
    assert recipe["lora_targets"] == ["query", "key", "value"] and recipe["lora_r"] == 4
    assert recipe["profile"] == "smoke"  # which pretrained model to rebuild under the adapter
    adapter = json.loads((out / "model" / "adapter_config.json").read_text())
    assert len(adapter["target_modules"]) == 3 * 6 and adapter["r"] == 4  # q, k, v of MiniLM's 6 blocks


def test_an_rslora_fine_tune_comes_back_with_its_own_scale(tmp_path, minilm_batch):
    from ftlib.lora import add_lora, lora_scaling

    model, tok = load_text_classifier(catalog.MINILM, ["negative", "positive"])
    add_lora(model, r=4, alpha=8, rslora=True)
    pretend_it_trained(model)
    model.eval()
    with torch.no_grad():
        before = model(**minilm_batch).logits
    save_finetuned(model, tok, tmp_path, "lora", lora_r=4, lora_alpha=8)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["use_rslora"] is True
    again, _ = load_finetuned(tmp_path, catalog.MINILM)
    again.eval()
    scales = {m.scaling for m in again.modules() if hasattr(m, "lora_A")}
    assert scales == {lora_scaling(4, 8, rslora=True)}  # 8 / 2, not 8 / 4
    with torch.no_grad():
        torch.testing.assert_close(again(**minilm_batch).logits, before, rtol=0, atol=1e-6)
