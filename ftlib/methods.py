"""Fine-tuning methods by name: choose what trains, save only that, and load it back.

Introduced in lessons 05 and 06, used by the command line's ``--method``:

    full       every parameter trains
    head       only the new task head trains
    freeze:K   the embeddings and the first K blocks are frozen
    adapter    bottleneck adapters in every block (ftlib/adapters.py)
    lora       low-rank updates of the attention projections (ftlib/lora.py)

A saved fine-tune is a folder with the tokenizer and a recipe (``method.json``: method,
labels, profile, settings), plus the weights in the ecosystem's format where there is one:

    full, head, freeze:K   a whole transformers model (``save_pretrained``): ``pipeline(...)`` loads it
    lora                   a peft adapter: ``adapter_config.json`` + ``adapter_model.safetensors``, the
                           new head in ``modules_to_save``; ``PeftModel.from_pretrained(base, folder)``
                           loads it, and :func:`save_merged` writes it as a whole transformers model
    adapter                only the trained weights, ``trained.safetensors``: bottleneck adapters have
                           no peft equivalent, so ``load_finetuned(folder, source)`` rebuilds the model
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from safetensors.torch import load_file, save_file

from . import adapters, lora
from .adapters import WithAdapter, add_adapters
from .files import share
from .freezing import freeze_all_but_head, freeze_bottom
from .lora import LoRALinear, add_lora, merge_lora, peft_config
from .models import load_text_classifier, trained_state_dict

__all__ = ["METHODS", "apply_method", "check_method", "load_finetuned", "method_lr", "method_settings", "read_recipe",
           "save_finetuned", "save_merged"]

_PEFT_PREFIX = "base_model.model."  # peft's names: the wrapped model's names behind this prefix

METHODS = ("full", "head", "freeze:K", "adapter", "lora")


def check_method(method: str) -> str:
    if method in ("full", "head", "adapter", "lora") or re.fullmatch(r"freeze:\d+", method):
        return method
    raise ValueError(f"invalid method {method!r}: choose full, head, freeze:K (e.g. freeze:4), adapter or lora")


def method_settings(method: str, *, adapter_size: int = adapters.BOTTLENECK, lora_r: int = lora.R,
                    lora_alpha: float = lora.ALPHA, lora_targets=None) -> dict:
    """The settings `method` needs (:func:`apply_method`'s keywords) and nothing else; they go into method.json.

    The defaults are the course's, written once in ``ftlib.lora`` and ``ftlib.adapters``.
    """
    check_method(method)
    if method == "adapter":
        return {"adapter_size": adapter_size}
    if method == "lora":
        return {"lora_r": lora_r, "lora_alpha": lora_alpha, "lora_targets": lora_targets}
    return {}


def method_lr(profile, method: str) -> float:
    """The profile's learning rate for `method`: what the command line, ``compare`` and the lessons use."""
    check_method(method)
    if method == "head":
        return profile.head_lr  # only a small new layer trains: a large step is safe
    if method in ("adapter", "lora"):
        return profile.peft_lr  # mostly new weights
    return profile.lr  # full and freeze:K move pretrained weights: small steps


def apply_method(model, method: str, *, lora_r: int = lora.R, lora_alpha: float = lora.ALPHA, lora_targets=None,
                 adapter_size: int = adapters.BOTTLENECK) -> None:
    """Decide, in place, which parameters of `model` train."""
    check_method(method)
    if method == "head":
        freeze_all_but_head(model)
    elif method.startswith("freeze:"):
        freeze_bottom(model, int(method.split(":")[1]))
    elif method == "adapter":
        add_adapters(model, bottleneck=adapter_size)
    elif method == "lora":
        add_lora(model, lora_targets, r=lora_r, alpha=lora_alpha)


def _save_peft_lora(model, folder: Path) -> Path:
    """ftlib's LoRA layers and trained head as a peft adapter folder; returns the weights file."""
    layers = {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}
    if not layers:
        raise ValueError("the model has no LoRA layers: apply_method(model, 'lora') before saving it as lora")
    shapes = {(m.r, m.alpha, m.rslora) for m in layers.values()}
    if len(shapes) > 1:
        raise ValueError(f"the LoRA layers have different (r, alpha, rslora) {sorted(shapes)}: "
                         "peft's format needs one")
    (r, alpha, rslora), = shapes
    weights, heads = {}, set()
    for name, p in trained_state_dict(model).items():
        module, _, leaf = name.rpartition(".")
        if leaf in ("lora_A", "lora_B"):  # peft keeps them as nn.Linear: 'lora_A.weight'
            weights[f"{_PEFT_PREFIX}{module}.{leaf}.weight"] = p.contiguous()
        else:  # the new head (and anything else that trained): peft's modules_to_save
            weights[_PEFT_PREFIX + name] = p.contiguous()
            heads.add(module)
    config = peft_config(sorted(layers), r=r, alpha=alpha, rslora=rslora, train_also=sorted(heads))
    config.base_model_name_or_path = getattr(model.config, "name_or_path", None)
    config.save_pretrained(str(folder))
    save_file(weights, folder / "adapter_model.safetensors")
    return folder / "adapter_model.safetensors"


def save_finetuned(model, tokenizer, folder: str | Path, method: str, *, profile: str | None = None,
                   **settings) -> int:
    """Save a fine-tune in the ecosystem's format (module docstring); returns the bytes of weights written.

    `profile` (the profile whose model was fine-tuned) goes into ``method.json``, so that
    ``python -m ftlib predict`` can rebuild the pretrained model under a LoRA or adapter run.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    if method == "lora":
        weights = [_save_peft_lora(model, folder)]
    elif method == "adapter":
        save_file({k: v.contiguous() for k, v in trained_state_dict(model).items()}, folder / "trained.safetensors")
        weights = [folder / "trained.safetensors"]
    else:
        model.save_pretrained(folder)
        weights = list(folder.glob("*.safetensors"))
    recipe = {"method": method, "labels": [model.config.id2label[i] for i in range(model.config.num_labels)],
              **({"profile": profile} if profile else {}), **settings}
    (folder / "method.json").write_text(json.dumps(recipe, indent=2))
    share(folder)  # safetensors writes owner-only files
    return sum(f.stat().st_size for f in weights)


def read_recipe(folder: str | Path) -> dict:
    """``method.json`` of a saved fine-tune ({} if there is none, e.g. a model from the hub)."""
    path = Path(folder) / "method.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _from_peft(folder: Path, model) -> None:
    """Put a peft LoRA folder's weights into ftlib's LoRA layers (added here to `model`), in place."""
    config = json.loads((folder / "adapter_config.json").read_text())
    targets = config["target_modules"]
    add_lora(model, [targets] if isinstance(targets, str) else targets, r=config["r"], alpha=config["lora_alpha"],
             rslora=config.get("use_rslora", False), train_also=config.get("modules_to_save") or ())
    saved = {}
    for key, value in load_file(folder / "adapter_model.safetensors").items():
        name = key.removeprefix(_PEFT_PREFIX)
        saved[name.removesuffix(".weight") if ".lora_" in name else name] = value
    _load_trained(model, saved, folder)


def _load_trained(model, saved: dict, folder: Path) -> None:
    missing = set(trained_state_dict(model)) - set(saved)
    if missing:
        raise ValueError(f"{folder} does not fit this model: {len(missing)} trained weights are missing "
                         f"(e.g. {sorted(missing)[0]}); load it with the model it was trained from")
    model.load_state_dict(saved, strict=False)


def load_finetuned(folder: str | Path, source):
    """Load a fine-tune saved by :func:`save_finetuned`: the pretrained `source` plus the saved part.

    A LoRA fine-tune comes back with ftlib's own LoRA layers (``ftlib.lora``), exactly as it trained.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(folder)
    recipe = read_recipe(folder)
    if not ((folder / "adapter_config.json").exists() or (folder / "trained.safetensors").exists()):
        model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)  # a whole model
        return model, AutoTokenizer.from_pretrained(folder)
    if not recipe:
        raise ValueError(f"{folder} has no method.json: it was not saved by ftlib; load a peft adapter with "
                         "peft.PeftModel.from_pretrained(base_model, folder)")
    model, tokenizer = load_text_classifier(source, recipe["labels"])
    if (folder / "adapter_config.json").exists():
        _from_peft(folder, model)
        return model, tokenizer
    settings = {k: v for k, v in recipe.items() if k in ("lora_r", "lora_alpha", "lora_targets", "adapter_size")}
    apply_method(model, recipe["method"], **settings)  # adapter (or LoRA saved before the peft format)
    _load_trained(model, load_file(folder / "trained.safetensors"), folder)
    return model, tokenizer


def save_merged(model, tokenizer, folder: str | Path) -> int:
    """Save `model` as a plain transformers model, LoRA merged into the weights; returns the bytes written.

    Works on a copy, so `model` keeps its LoRA layers. ``pipeline("text-classification", model=folder)``
    then loads it like any other model. Adapters add layers a plain model does not have: they cannot merge.
    """
    import copy

    if hasattr(model, "merge_and_unload"):  # a peft model (the --task qa runs)
        plain = copy.deepcopy(model).merge_and_unload()
    else:
        if any(isinstance(m, WithAdapter) for m in model.modules()):
            raise ValueError("adapters add layers that a plain transformers model does not have, so they cannot "
                             "be merged: keep the adapter folder and load it with ftlib.methods.load_finetuned")
        plain = merge_lora(copy.deepcopy(model))
    folder = Path(folder)
    plain.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    share(folder)
    return sum(f.stat().st_size for f in folder.glob("*.safetensors"))
