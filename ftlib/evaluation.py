"""Measuring a model: loss and classification metrics, predictions for new text.

Introduced in lesson 00, the subject of lesson 07. The metrics are written out here,
a few lines each, so that a learner can read what "macro-F1" computes.
"""
from __future__ import annotations

import torch

__all__ = ["classification_metrics", "confusion_matrix", "evaluate", "predict"]


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
    """Mean loss over `loader`, plus classification metrics when the model classifies."""
    model.eval()
    loss_sum, count, preds, labels = 0.0, 0, [], []
    for batch in loader:
        batch = {k: v.to(runtime.device) for k, v in batch.items()}
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
    """Predicted label names and their probabilities for a list of texts, in order."""
    model.eval()
    labels, probs = [], []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length,
                        padding=True, return_tensors="pt").to(runtime.device)
        with runtime.autocast():
            p = model(**enc).logits.float().softmax(-1)
        best = p.max(-1)
        labels += [model.config.id2label[int(i)] for i in best.indices]
        probs += best.values.tolist()
    return labels, probs
