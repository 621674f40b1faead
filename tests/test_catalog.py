"""ftlib.catalog: what each profile uses, and where the course data lives."""
import dataclasses
import re

import pytest
import torch

from ftlib import catalog
from ftlib.catalog import DATA_DIR, PROFILES, ModelSource, data_path, get_profile

OFFLINE = ["lite", "smoke"]


def sources(profile):
    """Every ModelSource a profile reaches, including a random model's tokenizer source."""
    found = []
    for src in (profile.text_model, profile.causal_lm):
        while src is not None:
            found.append(src)
            src = src.tokenizer_from
    return found


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_profiles_never_use_the_hub(name):
    profile = PROFILES[name]
    assert profile.text_model.kind != "hub"
    assert profile.causal_lm.kind != "hub"
    if profile.causal_lm.kind == "random":
        assert profile.causal_lm.tokenizer_from is not None
        assert profile.causal_lm.tokenizer_from.kind != "hub"
    assert all(src.kind in ("package", "gguf", "random") for src in sources(profile))


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_weight_files_are_pinned_by_sha256(name):
    checked = 0
    for src in sources(PROFILES[name]):
        if src.kind in ("package", "gguf"):
            assert re.fullmatch(r"[0-9a-f]{64}", src.sha256), (src.name, src.sha256)
            assert src.repo and src.filename, src.name
            checked += 1
    assert checked >= 1


def test_the_expected_models_per_profile():
    assert PROFILES["lite"].text_model is catalog.MINILM
    assert PROFILES["lite"].causal_lm is catalog.GEMMA3_GGUF  # reads Korean (issue 16)
    assert PROFILES["smoke"].causal_lm is catalog.TINY_GEMMA
    assert catalog.TINY_GEMMA.tokenizer_from is catalog.GEMMA3_GGUF  # the real tokenizer, random weights
    assert catalog.TINY_LLAMA.tokenizer_from is catalog.SMOLLM2_GGUF
    assert PROFILES["full"].text_model.kind == "hub"
    assert PROFILES["full"].causal_lm is catalog.QWEN25_05B and catalog.QWEN25_05B.license == "Apache-2.0"
    assert catalog.GEMMA3_GGUF.license == "Gemma Terms of Use" and len(catalog.GEMMA3_GGUF.parts) == 4
    assert set(PROFILES) == {"full", "lite", "smoke"}
    assert all(p.name == key for key, p in PROFILES.items())


def test_smoke_profile_is_small():
    smoke = PROFILES["smoke"]
    assert smoke.max_train == 48 and smoke.max_eval == 32 and smoke.epochs == 1


def test_get_profile_honours_the_environment(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("FTLIB_PROFILE", "smoke")
    assert get_profile() is PROFILES["smoke"]
    monkeypatch.setenv("FTLIB_PROFILE", "Full")
    assert get_profile() is PROFILES["full"]
    assert get_profile("lite") is PROFILES["lite"]  # an explicit name wins
    monkeypatch.delenv("FTLIB_PROFILE")
    assert get_profile() is PROFILES["lite"]  # automatic, no CUDA


def test_get_profile_unknown_name(monkeypatch):
    monkeypatch.setenv("FTLIB_PROFILE", "tiny")
    with pytest.raises(ValueError, match=r"unknown profile 'tiny': choose one of full, lite, smoke"):
        get_profile()


def test_with_overrides_returns_a_changed_copy():
    lite = PROFILES["lite"]
    before = (lite.epochs, lite.batch_size)
    changed = lite.with_overrides(epochs=1, batch_size=4)
    assert changed is not lite and before != (1, 4)
    assert (changed.epochs, changed.batch_size) == (1, 4)
    assert (lite.epochs, lite.batch_size) == before  # the original is untouched
    assert (PROFILES["lite"].epochs, PROFILES["lite"].batch_size) == before
    assert dataclasses.replace(changed, epochs=before[0], batch_size=before[1]) == lite  # nothing else changed


def test_with_overrides_rejects_an_unknown_field():
    with pytest.raises(TypeError, match="epoch"):
        PROFILES["lite"].with_overrides(epoch=1)


def test_profiles_and_sources_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILES["lite"].epochs = 10
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalog.MINILM.sha256 = "0" * 64


def test_model_source_defaults():
    src = ModelSource(name="x", kind="hub", repo="org/model")
    assert (src.filename, src.sha256, src.revision, src.tokenizer_from, src.config) == (
        "model.safetensors", "", None, None, {})


def test_data_path_finds_the_course_data(monkeypatch):
    monkeypatch.delenv("FTLIB_DATA", raising=False)
    path = data_path("reviews.csv")
    assert path == DATA_DIR / "reviews.csv"
    assert path.is_file()
    assert path.read_text(encoding="utf-8").startswith("id,")


def test_data_path_missing_file_says_how_to_fix_it(monkeypatch):
    monkeypatch.delenv("FTLIB_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"no-such-file\.csv not found: .*set FTLIB_DATA"):
        data_path("no-such-file.csv")


def test_data_path_honours_ftlib_data(monkeypatch, tmp_path):
    (tmp_path / "mine.csv").write_text("text,label\nok,positive\n", encoding="utf-8")
    monkeypatch.setenv("FTLIB_DATA", str(tmp_path))
    assert data_path("mine.csv") == tmp_path / "mine.csv"
    with pytest.raises(FileNotFoundError, match="FTLIB_DATA"):
        data_path("reviews.csv")  # only the override folder is searched
