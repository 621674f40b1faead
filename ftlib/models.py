"""Loading pretrained models from a :class:`~ftlib.catalog.ModelSource`, safely.

Introduced in lesson 00. Every source, hub or offline, ends in the same
``from_pretrained(folder_or_id)`` call; the offline ones are hash-checked first, and
the GGUF one is de-quantized once and cached as safetensors. ``trust_remote_code`` is
never switched on.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from .catalog import ModelSource
from .freezing import count_parameters, trained_state_dict  # noqa: F401 (used here; their home is freezing)

__all__ = [
    "IntegrityError",
    "cache_dir",
    "load_causal_lm",
    "load_text_classifier",
    "load_tokenizer",
    "publish_cache",
    "resolve",
    "sha256_file",
]


class IntegrityError(RuntimeError):
    """A weight file is not the one the catalog names (tampered, truncated or replaced)."""


def cache_dir() -> Path:
    """Where derived weights are cached: ``$FTLIB_CACHE`` or ``~/.cache/ftlib``."""
    return Path(os.environ.get("FTLIB_CACHE") or Path.home() / ".cache" / "ftlib")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, expected: str, fix: str | None = None) -> None:
    actual = sha256_file(path)
    if actual != expected:
        fix = fix or ("reinstall it (make setup, or pip install --no-deps --force-reinstall "
                      "the package that ships it)")
        raise IntegrityError(
            f"{path} has sha256 {actual[:16]}..., expected {expected[:16]}...: the file was "
            f"modified or is incomplete; {fix}"
        )


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise ModuleNotFoundError(
            f"the offline model package {pip_name!r} is not installed: run "
            f"`pip install --no-deps {pip_name}` (make setup does it for you)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve(source: ModelSource) -> str:
    """A folder (or hub id) that ``from_pretrained`` can load; verifies offline weights."""
    if source.kind == "hub":
        return source.repo
    if source.kind == "package":
        folder = _package_dir(source.repo) / source.subdir
        _verify(folder / source.filename, source.sha256)
        return str(folder)
    if source.kind == "gguf":
        return str(_dequantized_gguf(source))
    raise ValueError(f"model source kind {source.kind!r} has no folder to load from")


def _gguf_cache(source: ModelSource) -> Path:
    return cache_dir() / f"{Path(source.filename).stem}-{source.sha256[:12]}"


def _gguf_file(source: ModelSource) -> Path:
    """The verified GGUF file: inside its package, or joined once from the packages in `source.parts`."""
    if not source.parts:
        path = _package_dir(source.repo) / source.filename
        _verify(path, source.sha256)
        return path
    path = cache_dir() / "gguf" / source.filename
    fix = f"delete {path} and it will be joined again from the packages {', '.join(source.parts)}"
    if not path.exists():
        chunks = [chunk for package in source.parts
                  for chunk in sorted(_package_dir(package).rglob(f"{source.filename}.part*"))]
        if len(chunks) != len(source.parts):
            raise IntegrityError(f"expected one piece of {source.filename} in each of {source.parts}, found "
                                 f"{len(chunks)}: reinstall them with `pip install --no-deps --force-reinstall`")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".joining")
        with open(tmp, "wb") as out:
            for chunk in chunks:  # part00, part01, ...: the packages are listed in order
                with open(chunk, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        _verify(tmp, source.sha256, fix="reinstall the packages " + ", ".join(source.parts))
        os.replace(tmp, path)
    _verify(path, source.sha256, fix=fix)
    return path


def _dequantized_gguf(source: ModelSource) -> Path:
    """De-quantize a GGUF model once (17 s for SmolLM2, 31 s for Gemma 3 on 2 cores) and cache it as safetensors."""
    target = _gguf_cache(source)
    manifest = target / "ftlib-manifest.json"
    if manifest.exists():
        expected = json.loads(manifest.read_text())["model.safetensors"]
        _verify(target / "model.safetensors", expected,
                fix=f"delete the cache folder {target} and it will be rebuilt from the GGUF file")
        return target
    gguf_path = _gguf_file(source)
    print(f"De-quantizing {source.filename} once; cached in {target}")
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    tokenizer = load_tokenizer(source)
    # The tensors are plain fp32 now; drop the GGUF marker so that it saves as safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return publish_cache(target, lambda tmp: (model.save_pretrained(tmp), tokenizer.save_pretrained(tmp)))


def _gguf_tokenizer(source: ModelSource) -> Path:
    """The tokenizer of a GGUF model, read from the file once (15 s for Gemma's 262 k tokens) and cached."""
    target = cache_dir() / f"{Path(source.filename).stem}-{source.sha256[:12]}-tokenizer"
    if (target / "ftlib-manifest.json").exists():
        expected = json.loads((target / "ftlib-manifest.json").read_text())["tokenizer.json"]
        _verify(target / "tokenizer.json", expected, fix=f"delete the cache folder {target} and it will be rebuilt")
        return target
    gguf_path = _gguf_file(source)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    return publish_cache(target, tokenizer.save_pretrained, checked="tokenizer.json")


def publish_cache(target: Path, write, manifest_extra: dict | None = None, checked: str = "model.safetensors") -> Path:
    """Build a cache folder atomically: `write(tmp)` fills a temporary folder (with the file `checked`),
    a manifest records its sha256, and the folder is renamed into place, so a killed run leaves no
    half-written cache. Used for the de-quantized GGUF, its tokenizer and the pre-trained course CNN."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        write(tmp)
        digest = sha256_file(tmp / checked)
        (tmp / "ftlib-manifest.json").write_text(json.dumps({checked: digest, **(manifest_extra or {})},
                                                            indent=1))
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "ftlib-manifest.json").exists():  # another process may have won the race
            raise
    return target


def load_tokenizer(source: ModelSource):
    """Only the tokenizer of `source`: for a GGUF model, read from the file without de-quantizing."""
    if source.kind == "random":  # a tiny test model borrows a real model's tokenizer
        if source.tokenizer_from is None:
            raise ValueError(f"{source.name} has no tokenizer: give it tokenizer_from=<a real model source>")
        return load_tokenizer(source.tokenizer_from)
    if source.kind == "gguf":
        return AutoTokenizer.from_pretrained(_gguf_tokenizer(source))
    return AutoTokenizer.from_pretrained(resolve(source), revision=source.revision)


def _check_tokenizer(model, tokenizer) -> None:
    vocab = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > vocab:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's embedding has {vocab}: "
            "they come from different models; load both from the same source"
        )


def load_text_classifier(source: ModelSource, labels: list[str]):
    """A pretrained encoder with a new classification head for `labels`, and its tokenizer.

    The head's weights do not exist in the checkpoint, so transformers initialises them
    at random and reports them as MISSING: that report is expected (lesson 03).
    """
    if not labels:
        raise ValueError("labels is empty: pass the list of class names, e.g. ['negative', 'positive']")
    id2label = dict(enumerate(labels))
    label2id = {name: i for i, name in id2label.items()}
    if source.kind == "random":
        raise ValueError("the text classifier has no random source; use the lite encoder")
    where = resolve(source)
    tokenizer = AutoTokenizer.from_pretrained(where, revision=source.revision)
    model = AutoModelForSequenceClassification.from_pretrained(
        where, revision=source.revision, num_labels=len(labels),
        id2label=id2label, label2id=label2id, use_safetensors=True,  # never unpickle weights
    )
    _check_tokenizer(model, tokenizer)
    return model, tokenizer


def load_causal_lm(source: ModelSource):
    """A causal language model and its tokenizer (with a pad token set for batching)."""
    if source.kind == "random":
        tokenizer = load_tokenizer(source.tokenizer_from)
        config = AutoConfig.for_model(
            vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
            **source.config,
        )
        model = AutoModelForCausalLM.from_config(config)
    else:
        where = resolve(source)
        tokenizer = AutoTokenizer.from_pretrained(where, revision=source.revision)
        model = AutoModelForCausalLM.from_pretrained(where, revision=source.revision, use_safetensors=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    _check_tokenizer(model, tokenizer)
    return model, tokenizer
