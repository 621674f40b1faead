"""Measuring a model: loss and classification metrics, predictions for new text.

Introduced in lesson 00, the subject of lesson 07. The metrics are written out here,
a few lines each, so that a learner can read what "macro-F1" computes.
"""
from __future__ import annotations

import torch

from .runtime import model_device, move_to

__all__ = ["classification_metrics", "confusion_matrix", "evaluate", "predict",
           "predict_proba", "seed_summary", "worst_errors"]


def confusion_matrix(y_true, y_pred, num_labels: int) -> torch.Tensor:
    """counts[i, j]: examples of true class i predicted as class j."""
    y_true, y_pred = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    flat = y_true * num_labels + y_pred
    return torch.bincount(flat, minlength=num_labels * num_labels).reshape(num_labels, num_labels)


def classification_metrics(y_true, y_pred, num_labels: int | None = None) -> dict[str, float]:
    """Accuracy, and precision, recall and F1 averaged over classes (macro: each class counts equally)."""
    y_true, y_pred = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    if num_labels is None:
        num_labels = int(max(y_true.max(), y_pred.max())) + 1
    cm = confusion_matrix(y_true, y_pred, num_labels).double()
    tp = cm.diag()
    precision = tp / cm.sum(0).clamp(min=1)  # of those predicted as c, how many are c
    recall = tp / cm.sum(1).clamp(min=1)  # of those that are c, how many were found
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    present = cm.sum(1) > 0  # classes absent from y_true do not count in the average
    return {
        "accuracy": (tp.sum() / cm.sum()).item(),
        "f1_macro": f1[present].mean().item(),
        "precision_macro": precision[present].mean().item(),
        "recall_macro": recall[present].mean().item(),
    }


@torch.no_grad()
def evaluate(model, loader, runtime) -> dict[str, float]:
    """Mean loss over `loader`, plus classification metrics when the model classifies.

    Runs on ``runtime.device`` (the model is moved there if it is elsewhere), like ``fit``.
    """
    model.to(runtime.device).eval()
    loss_sum, count, preds, labels = 0.0, 0, [], []
    for batch in loader:
        batch = move_to(batch, model_device(model))
        with runtime.autocast():
            out = model(**batch)
        n = batch["labels"].shape[0]
        loss_sum, count = loss_sum + out.loss.item() * n, count + n
        if out.logits.dim() == 2 and batch["labels"].dim() == 1:  # (B, num_labels): a classifier
            preds.append(out.logits.argmax(-1).cpu())
            labels.append(batch["labels"].cpu())
    metrics = {"loss": loss_sum / max(count, 1)}
    if preds:
        num_labels = getattr(model.config, "num_labels", None)
        metrics.update(classification_metrics(torch.cat(labels), torch.cat(preds), num_labels))
    return metrics


@torch.no_grad()
def predict(model, tokenizer, texts: list[str], runtime, *, batch_size: int = 32, max_length: int = 128):
    """Predicted label names and their probabilities for a list of texts, in order, computed on ``runtime.device``."""
    model.to(runtime.device).eval()
    labels, probs = [], []
    for start in range(0, len(texts), batch_size):
        enc = move_to(tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length,
                                padding=True, return_tensors="pt"), model_device(model))
        with runtime.autocast():
            p = model(**enc).logits.float().softmax(-1)
        best = p.max(-1)
        labels += [model.config.id2label[int(i)] for i in best.indices]
        probs += best.values.tolist()
    return labels, probs


def _dataset_order(loader) -> list[int] | None:
    """The dataset index of each example, in the order `loader` yields them (None: dataset order)."""
    sampler = getattr(loader, "batch_sampler", None)
    if hasattr(sampler, "batches"):  # ftlib's LengthGroupedBatchSampler sorts by length
        return [i for batch in sampler.batches() for i in batch]
    return None


@torch.no_grad()
def predict_proba(model, loader, runtime) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities (N, num_labels) and true labels (N,) for every example of `loader`.

    Introduced in lesson 07. Rows come back in the dataset's order, even when the loader
    groups batches by length, so that row i belongs to example i (its text, its domain).
    Computed on ``runtime.device``; the results come back on the CPU.
    """
    model.to(runtime.device).eval()
    probs, labels = [], []
    for batch in loader:
        batch = move_to(batch, model_device(model))
        with runtime.autocast():
            logits = model(**batch).logits
        probs.append(logits.float().softmax(-1).cpu())
        labels.append(batch["labels"].cpu())
    probs, labels = torch.cat(probs), torch.cat(labels)
    order = _dataset_order(loader)
    if order is not None and len(order) == len(labels):
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.as_tensor(order)] = torch.arange(len(order))
        probs, labels = probs[inverse], labels[inverse]
    return probs, labels


def worst_errors(probs, labels, texts, label_names, k: int = 5) -> list[dict]:
    """The `k` wrong predictions made with the most confidence, most confident first.

    Introduced in lesson 07: reading them shows what the model gets wrong (and, often,
    examples whose label is itself doubtful).
    """
    probs, labels = torch.as_tensor(probs), torch.as_tensor(labels)
    if not len(probs) == len(labels) == len(texts):
        raise ValueError(f"probs, labels and texts must be as long as one another, got {len(probs)}, "
                         f"{len(labels)} and {len(texts)}: pass them in the same (dataset) order")
    confidence, predicted = probs.max(-1)
    wrong = (predicted != labels).nonzero().flatten()
    ranked = wrong[confidence[wrong].argsort(descending=True)][:k]
    return [{"index": int(i), "text": texts[int(i)], "true": label_names[int(labels[i])],
             "predicted": label_names[int(predicted[i])], "confidence": float(confidence[i])} for i in ranked]


def seed_summary(values) -> dict[str, float]:
    """Mean, sample standard deviation (n - 1), minimum and maximum of one score over several seeds.

    Introduced in lesson 07. Needs at least two values: one run says nothing about the spread.
    """
    values = torch.as_tensor(list(values), dtype=torch.float64)
    if values.numel() < 2:
        raise ValueError(f"need the score of at least two seeds to measure a spread, got {values.numel()}: "
                         "run the same training with more seeds")
    return {"n": values.numel(), "mean": values.mean().item(), "std": values.std().item(),
            "min": values.min().item(), "max": values.max().item()}
