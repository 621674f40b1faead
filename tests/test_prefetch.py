"""Pre-downloading the full profile for a workshop, then loading it with the network off.

Nothing here reaches the hub: a stand-in for ``snapshot_download`` writes tiny models in
the hub cache's own layout (models--org--name/snapshots/<commit>/, refs/main), which is
what the real download leaves behind.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import BertConfig, BertForSequenceClassification, LlamaConfig, LlamaForCausalLM

import tiny
from tools import course, prefetch
from ftlib.catalog import PROFILES, SMOLLM2_GGUF
from ftlib.models import load_tokenizer

FULL = PROFILES["full"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def tiny_model_for(repo: str):
    """A tiny model of the right family for each hub model of the full profile."""
    if repo == FULL.text_model.repo:
        return BertForSequenceClassification(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                                                        num_attention_heads=2, intermediate_size=64)), tiny.tokenizer()
    if repo == FULL.causal_lm.repo:
        tok = load_tokenizer(SMOLLM2_GGUF)  # the real SmolLM2 tokenizer, read from the offline package
        return LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                            num_hidden_layers=1, num_attention_heads=2)), tok
    image_model = getattr(FULL, "image_model", None)
    if image_model is not None and repo == image_model.repo:
        from transformers import ResNetConfig, ResNetForImageClassification

        model = ResNetForImageClassification(ResNetConfig(embedding_size=8, hidden_sizes=[8, 8], depths=[1, 1],
                                                          num_labels=3))
        return model, None  # no tokenizer: an image processor instead
    raise AssertionError(f"no tiny stand-in for {repo}")


def fake_download(calls):
    def download(repo, *, revision, cache_dir, allow_patterns):
        calls.append((repo, revision, tuple(allow_patterns)))
        root = Path(cache_dir) / f"models--{repo.replace('/', '--')}"
        folder = root / "snapshots" / COMMIT
        model, tok = tiny_model_for(repo)
        model.save_pretrained(folder)
        if tok is None:
            from transformers import ConvNextImageProcessor

            ConvNextImageProcessor().save_pretrained(folder)
        else:
            tok.save_pretrained(folder)
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / "main").write_text(COMMIT)
        return str(folder)
    return download


def test_hub_sources_are_the_full_profiles_hub_models_only():
    repos = [s.repo for s in prefetch.hub_sources(FULL)]
    assert FULL.text_model.repo in repos and FULL.causal_lm.repo in repos
    assert prefetch.hub_sources(PROFILES["lite"]) == []  # lite comes in PyPI packages
    assert len(repos) == len(set(repos))


def test_prefetch_then_everything_loads_from_the_cache_alone(tmp_path):
    calls = []
    folders = prefetch.prefetch(FULL, tmp_path, download=fake_download(calls))
    assert [c[0] for c in calls] == [s.repo for s in prefetch.hub_sources(FULL)]
    assert all("*.safetensors" in c[2] and "*.bin" not in c[2] for c in calls)  # no pickled weights
    assert len(folders) == len(calls)
    assert prefetch.verify_offline(FULL, tmp_path) == [c[0] for c in calls]

    # The course's own loader, in a fresh process with the network switched off.
    code = ("from ftlib.catalog import PROFILES; from ftlib.models import load_text_classifier;"
            "m, t = load_text_classifier(PROFILES['full'].text_model, ['neg', 'pos']);"
            "print(type(m).__name__, m.config.id2label)")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BertForSequenceClassification {0: 'neg', 1: 'pos'}" in out.stdout


def test_verify_offline_names_the_missing_model(tmp_path):
    calls = []
    download = fake_download(calls)
    download(FULL.text_model.repo, revision=None, cache_dir=tmp_path, allow_patterns=prefetch.ALLOW_PATTERNS)
    with pytest.raises(OSError, match=FULL.causal_lm.repo.replace(".", r"\.") + ".*download"):
        prefetch.verify_offline(FULL, tmp_path)


def test_download_command_for_lite_needs_nothing(capsys):
    assert course.main(["download", "--profile", "lite"]) == 0
    assert "PyPI packages" in capsys.readouterr().out
