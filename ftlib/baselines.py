"""Baselines a fine-tuned model has to beat: the majority class and bag-of-words.

Introduced in lesson 00, used again in lesson 07. A bag-of-words model sees which
words occur and nothing about their order, so "not bad at all" and "bad, not at all
what I wanted" look almost the same to it.
"""
from __future__ import annotations

import re
from collections import Counter

import torch

__all__ = ["BagOfWords", "majority_baseline"]

_WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']", re.IGNORECASE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def majority_baseline(train_labels, test_labels) -> float:
    """Accuracy of always predicting the most common training label."""
    most_common = Counter(train_labels).most_common(1)[0][0]
    return sum(y == most_common for y in test_labels) / len(test_labels)


class BagOfWords:
    """Logistic regression on word counts (unigrams and bigrams), trained with L-BFGS."""

    def __init__(self, min_count: int = 2, l2: float = 1e-3, bigrams: bool = True):
        self.min_count, self.l2, self.bigrams = min_count, l2, bigrams

    def _features(self, text: str) -> list[str]:
        words = _words(text)
        return words + ([f"{a} {b}" for a, b in zip(words, words[1:])] if self.bigrams else [])

    def _matrix(self, texts) -> torch.Tensor:
        X = torch.zeros(len(texts), len(self.vocab))
        for row, text in enumerate(texts):
            for f in self._features(text):
                if f in self.vocab:
                    X[row, self.vocab[f]] += 1
        return torch.log1p(X)  # dampen repeated words

    def fit(self, texts, labels) -> "BagOfWords":
        counts = Counter(f for t in texts for f in set(self._features(t)))
        self.vocab = {f: i for i, f in enumerate(sorted(f for f, c in counts.items() if c >= self.min_count))}
        X, y = self._matrix(texts), torch.as_tensor(labels)
        self.linear = torch.nn.Linear(X.shape[1], int(y.max()) + 1)
        opt = torch.optim.LBFGS(self.linear.parameters(), max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.linear(X), y) + self.l2 * self.linear.weight.square().sum()
            loss.backward()
            return loss

        opt.step(closure)
        return self

    @torch.no_grad()
    def predict(self, texts) -> list[int]:
        return self.linear(self._matrix(texts)).argmax(-1).tolist()

    def accuracy(self, texts, labels) -> float:
        return sum(int(p == y) for p, y in zip(self.predict(texts), labels)) / len(labels)
