"""Using a fine-tune: load any run's model, predict a file of new texts, evaluate on a labelled file.

Behind ``python -m ftlib predict`` and ``python -m ftlib evaluate`` (README, "From the command
line"). :func:`load_for_inference` opens what ``finetune`` saved for every method: a whole
transformers model (full, head, freeze:K, ``--merge``), a peft LoRA adapter, ftlib's
bottleneck adapters, a ``--task qa`` run, or a ``--task preference`` run (its DPO adapter over
the SFT adapter of ``model/sft``, merged first); the pretrained model under an adapter is
rebuilt from the profile named in ``method.json`` (its hash checked as always).
Texts are sorted by length into batches (little padding), and the inputs go to the model's
device, so the same code runs on a GPU.
"""
from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .data import DataError, require_column
from .evaluation import classification_metrics, confusion_matrix
from .methods import load_finetuned, read_recipe

__all__ = ["classify_texts", "evaluate_classifier", "find_model_folder", "format_report", "load_for_inference",
           "texts_of"]


def find_model_folder(path: str | Path) -> Path:
    """The model folder of a run folder (``RUN/model``), or `path` itself when it holds a model."""
    path = Path(path)
    if (path / "model").is_dir():
        path = path / "model"
    known = ("config.json", "adapter_config.json", "trained.safetensors")
    if not path.is_dir() or not any((path / name).exists() for name in known):
        raise DataError(f"{path} holds no saved model: pass a run folder (the --out of finetune) or its "
                        "model/ folder")
    return path


def _is_qa(folder: Path, recipe: dict) -> bool:
    if recipe.get("task") == "qa":
        return True
    for name, key in (("adapter_config.json", "task_type"), ("config.json", "architectures")):
        if (folder / name).exists():
            value = json.loads((folder / name).read_text()).get(key) or ""
            return "CAUSAL_LM" in str(value) or "CausalLM" in str(value)
    return False


def load_for_inference(path: str | Path, *, profile: str | None = None):
    """(model, tokenizer, task, recipe) for any saved fine-tune; task is 'text-classification' or 'qa'."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .catalog import get_profile

    folder = find_model_folder(path)
    recipe = read_recipe(folder)
    whole = (folder / "config.json").exists()  # a whole transformers model: no pretrained base needed
    profile = profile or recipe.get("profile")
    if not whole and profile is None:
        raise DataError(f"{folder} holds only fine-tuned weights and does not say which pretrained model they "
                        "belong to: pass --profile (the profile it was trained with)")
    if not _is_qa(folder, recipe):
        source = None if whole else get_profile(profile).text_model
        model, tokenizer = load_finetuned(folder, source)
        return model, tokenizer, "text-classification", recipe
    if whole:
        model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    else:
        from peft import PeftModel

        from .models import load_causal_lm
        from .runtime import seed_everything

        seed_everything(recipe.get("seed", 0))  # a randomly initialised (smoke) base is rebuilt from its seed
        base, tokenizer = load_causal_lm(get_profile(profile).causal_lm)
        if (folder / "sft").is_dir():  # a --task preference run: DPO's adapter sits on the SFT model
            base = PeftModel.from_pretrained(base, folder / "sft").merge_and_unload()
        model = PeftModel.from_pretrained(base, folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, "qa", recipe


def texts_of(table, column: str, source) -> list[str]:
    """The `column` of a loaded table as strings; a blank cell is an error naming its row."""
    require_column(table, column, "text")
    texts = ["" if v is None else str(v) for v in table[column]]
    for i, text in enumerate(texts):
        if not text.strip():
            raise DataError(f"{source}: row {i + 1} has an empty {column!r}: fill it in or remove the row")
    return texts


@torch.no_grad()
def classify_texts(model, tokenizer, texts: list[str], *, batch_size: int = 64, max_length: int = 128,
                   autocast=nullcontext, progress: bool = False) -> tuple[torch.Tensor, int]:
    """Class probabilities (N, num_labels), in the order of `texts`, and how many texts were truncated."""
    model.eval()
    device = next(model.parameters()).device
    lengths = [len(ids) for ids in tokenizer(texts, verbose=False)["input_ids"]]  # before truncation
    order = sorted(range(len(texts)), key=lambda i: lengths[i])  # similar lengths together: little padding
    probs = torch.empty(len(texts), model.config.num_labels)
    for start in tqdm(range(0, len(order), batch_size), desc="predict", unit="batch",
                      disable=None if progress else True):  # None: a bar on a terminal, none in logs
        rows = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in rows], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt").to(device)
        with autocast():
            logits = model(**enc).logits  # (B, num_labels)
        probs[rows] = logits.float().softmax(-1).cpu()
    return probs, sum(n > max_length for n in lengths)


def evaluate_classifier(probs: torch.Tensor, labels: list[str], id2label: dict) -> dict:
    """Accuracy, macro scores, per-class precision / recall / F1 and the confusion matrix, as plain data."""
    names = [id2label[i] for i in range(len(id2label))]
    y_true, y_pred = torch.tensor([names.index(y) for y in labels]), probs.argmax(-1)
    cm = confusion_matrix(y_true, y_pred, len(names))
    per_class = {}
    for c, name in enumerate(names):
        tp, predicted, actual = cm[c, c].item(), cm[:, c].sum().item(), cm[c].sum().item()
        precision, recall = tp / max(predicted, 1), tp / max(actual, 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    return {"examples": len(labels), **classification_metrics(y_true, y_pred, len(names)), "per_class": per_class,
            "confusion_matrix": {"labels": names, "rows": "true label", "columns": "predicted label",
                                 "counts": cm.tolist()}}


def format_report(report: dict) -> str:
    """An evaluation report as a plain-text table: overall scores, per class, then the confusion matrix."""
    lines = [f"{report['examples']} examples  accuracy {report['accuracy']:.4f}  macro-F1 {report['f1_macro']:.4f}"]
    names = report["confusion_matrix"]["labels"]
    width = max(8, *(len(n) for n in names))
    lines += ["", f"{'class':<{width}}  precision  recall     f1  support"]
    for name, s in report["per_class"].items():
        lines.append(f"{name:<{width}}  {s['precision']:9.4f}  {s['recall']:6.4f}  {s['f1']:.4f}  {s['support']:7d}")
    lines += ["", "confusion matrix (rows: true label, columns: predicted label)",
              " " * width + "  " + "  ".join(f"{n:>{width}}" for n in names)]
    for name, row in zip(names, report["confusion_matrix"]["counts"]):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{n:>{width}d}" for n in row))
    return "\n".join(lines)
