"""Calibration: does a model that says "90 % sure" turn out right 90 % of the time?

Introduced in lesson 07. The predictions are sorted into bins by confidence (the
probability of the predicted class); in each bin, the share of right answers
(accuracy) is compared with the mean confidence. A reliability diagram draws the two
side by side; the expected calibration error (ECE) is their gap, averaged over the
bins and weighted by how many predictions each bin holds (Guo et al. 2017, "On
Calibration of Modern Neural Networks", arXiv 1706.04599):

    ECE = sum over bins b of  (n_b / N) * | accuracy(b) - confidence(b) |
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ReliabilityBins", "best_temperature", "confidence_and_correct", "expected_calibration_error",
           "reliability_bins"]


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics; bins that hold no prediction have count 0 and NaN accuracy and confidence."""

    edges: tuple[float, ...]  # n_bins + 1 edges from 0 to 1
    counts: tuple[int, ...]
    accuracy: tuple[float, ...]  # share of right predictions in each bin
    confidence: tuple[float, ...]  # mean confidence in each bin

    @property
    def ece(self) -> float:
        """The expected calibration error of these bins (0: perfectly calibrated)."""
        total = sum(self.counts)
        return sum(n / total * abs(a - c)
                   for n, a, c in zip(self.counts, self.accuracy, self.confidence) if n > 0)


def confidence_and_correct(probs, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """From class probabilities (N, C) and true labels (N,): the confidence of each prediction and whether it was right."""
    probs, labels = torch.as_tensor(probs, dtype=torch.float64), torch.as_tensor(labels)
    if probs.dim() != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"probs must be (N, num_classes) and labels (N,), got {tuple(probs.shape)} and "
                         f"{tuple(labels.shape)}: pass one row of probabilities per label")
    confidence, predicted = probs.max(-1)
    return confidence, predicted == labels


def reliability_bins(confidence, correct, n_bins: int = 10) -> ReliabilityBins:
    """Sort predictions into `n_bins` equal-width confidence bins and measure each bin.

    `confidence`: the probability each prediction gave its predicted class (N,);
    `correct`: whether each prediction was right (N,), booleans or 0/1.
    A confidence of exactly 1.0 falls in the last bin; the others in [lower, upper).
    """
    confidence = torch.as_tensor(confidence, dtype=torch.float64)
    correct = torch.as_tensor(correct).to(torch.float64)
    if confidence.numel() == 0 or confidence.shape != correct.shape:
        raise ValueError(f"need one confidence per prediction and at least one prediction, got shapes "
                         f"{tuple(confidence.shape)} and {tuple(correct.shape)}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}: 10 or 15 are usual")
    if confidence.min() < 0 or confidence.max() > 1:
        raise ValueError("confidences must lie in [0, 1]: pass probabilities (softmax), not logits")
    index = (confidence * n_bins).long().clamp(max=n_bins - 1)  # bin of each prediction
    counts = torch.bincount(index, minlength=n_bins)
    right = torch.bincount(index, weights=correct, minlength=n_bins)
    conf_sum = torch.bincount(index, weights=confidence, minlength=n_bins)
    safe = counts.clamp(min=1).to(torch.float64)
    nan = torch.full((n_bins,), float("nan"), dtype=torch.float64)
    return ReliabilityBins(
        edges=tuple((torch.arange(n_bins + 1, dtype=torch.float64) / n_bins).tolist()),
        counts=tuple(counts.tolist()),
        accuracy=tuple(torch.where(counts > 0, right / safe, nan).tolist()),
        confidence=tuple(torch.where(counts > 0, conf_sum / safe, nan).tolist()),
    )


def expected_calibration_error(probs, labels, n_bins: int = 10) -> float:
    """ECE (0 to 1) of class probabilities (N, C) against true labels (N,), with equal-width bins."""
    confidence, correct = confidence_and_correct(probs, labels)
    return reliability_bins(confidence, correct, n_bins).ece


def best_temperature(logits, labels) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 that minimises the cross-entropy of softmax(logits / T).

    Fit it on validation logits, then divide the test logits by it: the predicted classes stay the
    same, only the confidences change. Introduced in lesson 07 (exercise 3 writes it by hand).
    """
    logits, labels = torch.as_tensor(logits).double().cpu(), torch.as_tensor(labels).cpu()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)  # T = exp(log_t) stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return log_t.exp().item()
