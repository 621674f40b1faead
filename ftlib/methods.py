"""Fine-tuning methods by name: choose what trains, save only that, and load it back.

Introduced in lessons 05 and 06, used by the command line's ``--method``:

    full       every parameter trains
    head       only the new task head trains
    freeze:K   the embeddings and the first K blocks are frozen
    adapter    bottleneck adapters in every block (ftlib/adapters.py)
    lora       low-rank updates of the attention projections (ftlib/lora.py)

For adapter and lora, a saved fine-tune is only the trained weights plus a recipe
(``method.json``): the pretrained model is loaded again and the recipe re-applied.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from safetensors.torch import load_file, save_file

from .adapters import add_adapters
from .freezing import freeze_all_but_head, freeze_bottom
from .lora import add_lora
from .models import load_text_classifier, trained_state_dict

__all__ = ["METHODS", "apply_method", "check_method", "load_finetuned", "save_finetuned"]

METHODS = ("full", "head", "freeze:K", "adapter", "lora")


def check_method(method: str) -> str:
    if method in ("full", "head", "adapter", "lora") or re.fullmatch(r"freeze:\d+", method):
        return method
    raise ValueError(f"invalid method {method!r}: choose full, head, freeze:K (e.g. freeze:4), adapter or lora")


def apply_method(model, method: str, *, lora_r: int = 8, lora_alpha: float = 16, lora_targets=None,
                 adapter_size: int = 64) -> None:
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


def save_finetuned(model, tokenizer, folder: str | Path, method: str, **settings) -> int:
    """Save a fine-tune; for adapter and lora only what trained. Returns the bytes of weights written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    if method in ("adapter", "lora"):
        weights = {k: v.contiguous() for k, v in trained_state_dict(model).items()}
        save_file(weights, folder / "trained.safetensors")
        recipe = {"method": method, "labels": [model.config.id2label[i] for i in range(model.config.num_labels)],
                  **settings}
        (folder / "method.json").write_text(json.dumps(recipe, indent=2))
        return (folder / "trained.safetensors").stat().st_size
    model.save_pretrained(folder)
    return sum(f.stat().st_size for f in folder.glob("*.safetensors"))


def load_finetuned(folder: str | Path, source):
    """Load a fine-tune saved by :func:`save_finetuned`: the pretrained `source` plus the saved part."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(folder)
    if not (folder / "method.json").exists():  # a whole model
        model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
        return model, AutoTokenizer.from_pretrained(folder)
    recipe = json.loads((folder / "method.json").read_text())
    model, tokenizer = load_text_classifier(source, recipe.pop("labels"))
    apply_method(model, recipe.pop("method"), **recipe)
    missing = set(trained_state_dict(model)) - set(saved := load_file(folder / "trained.safetensors"))
    if missing:
        raise ValueError(f"{folder} does not fit this model: {len(missing)} trained weights are missing "
                         f"(e.g. {sorted(missing)[0]}); load it with the model it was trained from")
    model.load_state_dict(saved, strict=False)
    return model, tokenizer
