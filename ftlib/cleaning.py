"""Cleaning a text dataset: duplicates, leakage between splits, and what padding costs.

Introduced in lesson 02. Texts are compared through a *normalised* form (case folded,
punctuation dropped), so that "Great film!" and "great film" count as the same text.
Near duplicates are pairs whose sets of words overlap a lot: their Jaccard similarity
|A ∩ B| / |A ∪ B| is at least a threshold (0.7 by default, the value used to build
``data/reviews.csv``). Leakage is a test example that is also, exactly or nearly, in the
training data: a model that memorised it scores well for the wrong reason.

Padding: a batch of token ids is a rectangle as wide as its longest sequence, so every
shorter sequence is filled with padding that the model computes on and then ignores.
:func:`padding_stats` counts how much of that rectangle is real text.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass

from .data import DataError, LengthGroupedBatchSampler

__all__ = [
    "NEAR_DUPLICATE_THRESHOLD",
    "Leak",
    "PaddingStats",
    "Pair",
    "clean_text",
    "find_exact_duplicates",
    "find_leakage",
    "find_near_duplicates",
    "jaccard",
    "measure_padding",
    "normalize_text",
    "padding_stats",
    "word_set",
]

NEAR_DUPLICATE_THRESHOLD = 0.7  # word-set Jaccard; the threshold that data/README.md used
_APOSTROPHES = re.compile("['\u2019\u02bc]")  # can't, can’t, canʼt -> cant
_PUNCTUATION = re.compile(r"[^\w\s]|_")  # \w keeps letters and digits of every script (Hangul too)


def clean_text(text: str) -> str:
    """The text a model should see: Unicode NFKC (full-width letters, ligatures), one space between words."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def normalize_text(text: str) -> str:
    """A key for comparing texts, not for training: cleaned, case folded, punctuation removed."""
    text = _APOSTROPHES.sub("", clean_text(text).casefold())
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def word_set(text: str, k: int = 1) -> frozenset[str]:
    """The distinct k-word sequences (shingles) of the normalised text; k=1: its distinct words."""
    words = normalize_text(text).split()
    if k == 1 or not words:
        return frozenset(words)
    return frozenset(" ".join(words[i:i + k]) for i in range(max(1, len(words) - k + 1)))


def jaccard(a: frozenset, b: frozenset) -> float:
    """|a ∩ b| / |a ∪ b|: 1.0 for the same set, 0.0 for nothing in common (or two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


@dataclass(frozen=True)
class Pair:
    """Two texts of one collection (first < second) and their similarity (1.0: the same words)."""

    first: int
    second: int
    similarity: float


@dataclass(frozen=True)
class Leak:
    """A test example that is also, exactly or nearly, in the training data."""

    train_index: int
    test_index: int
    similarity: float


def find_exact_duplicates(texts: list[str]) -> list[list[int]]:
    """Groups (two or more indices) of texts whose normalised forms are equal, in order of first appearance."""
    groups = defaultdict(list)
    for i, text in enumerate(texts):
        groups[normalize_text(text)].append(i)
    return [idx for idx in groups.values() if len(idx) > 1]


def _check_threshold(threshold: float) -> None:
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}: a Jaccard similarity such as 0.7")


def _similar_pairs(sets_a: list, sets_b: list, threshold: float, same: bool) -> list[tuple[int, int, float]]:
    """(i, j, similarity) for every pair with jaccard(sets_a[i], sets_b[j]) >= threshold.

    Exact, without comparing all pairs (prefix filtering): order each set's words from
    the rarest to the most common. If J(A, B) >= t, the sets share at least ceil(t·|A|)
    words, so they must share one among the |A| - ceil(t·|A|) + 1 rarest words of A (and
    likewise for B). Only pairs that share such a word are compared.
    """
    counts = Counter(w for s in sets_a + ([] if same else sets_b) for w in s)

    def prefix(s):
        keep = len(s) - math.ceil(threshold * len(s) - 1e-9) + 1  # - 1e-9: 0.28 * 25 is 7.000000000000001
        return sorted(s, key=lambda w: (counts[w], w))[:keep]

    index = defaultdict(list)  # word -> the i whose prefix holds it
    for i, s in enumerate(sets_a):
        for w in prefix(s):
            index[w].append(i)
    candidates = {(i, j) for j, s in enumerate(sets_b) for w in prefix(s) for i in index[w] if not same or i < j}
    found = [(i, j, jaccard(sets_a[i], sets_b[j])) for i, j in candidates]
    return sorted((p for p in found if p[2] >= threshold), key=lambda p: (-p[2], p[0], p[1]))


def find_near_duplicates(texts: list[str], *, threshold: float = NEAR_DUPLICATE_THRESHOLD,
                         k: int = 1) -> list[Pair]:
    """Pairs of texts whose word sets (k-word shingles) have Jaccard similarity >= `threshold`, most similar first.

    Exact duplicates are included (similarity 1.0), and so are texts with the same words in another order.
    """
    _check_threshold(threshold)
    sets = [word_set(t, k) for t in texts]
    return [Pair(i, j, s) for i, j, s in _similar_pairs(sets, sets, threshold, same=True)]


def _texts(data, column: str, what: str) -> list[str]:
    """The texts of a datasets.Dataset, a list of dicts or a list of strings."""
    if hasattr(data, "column_names"):
        if column not in data.column_names:
            raise DataError(f"the {what} data has no column {column!r} (it has {data.column_names}): pass column=...")
        return list(data[column])
    rows = list(data)
    if rows and isinstance(rows[0], dict):
        if column not in rows[0]:
            raise DataError(f"the {what} records have no key {column!r} (they have {list(rows[0])}): pass column=...")
        return [r[column] for r in rows]
    return rows


def find_leakage(train, test, column: str = "text", *, threshold: float | None = None) -> list[Leak]:
    """Test examples that are also in the training data: one :class:`Leak` per (train, test) pair.

    `train` and `test` are ``datasets.Dataset`` objects, lists of dicts or lists of strings.
    threshold=None finds exact copies (equal normalised text); a number, e.g. 0.7, also
    finds near copies (word-set Jaccard similarity at least that).
    """
    train_texts, test_texts = _texts(train, column, "training"), _texts(test, column, "test")
    if threshold is None:
        where = defaultdict(list)
        for i, text in enumerate(train_texts):
            where[normalize_text(text)].append(i)
        return [Leak(i, j, 1.0) for j, text in enumerate(test_texts) for i in where.get(normalize_text(text), [])]
    _check_threshold(threshold)
    sets_train, sets_test = [word_set(t) for t in train_texts], [word_set(t) for t in test_texts]
    return [Leak(i, j, s) for i, j, s in _similar_pairs(sets_train, sets_test, threshold, same=False)]


@dataclass(frozen=True)
class PaddingStats:
    """Tokens over one epoch: `real` ones (attention mask 1) among `total` positions computed."""

    real: int
    total: int
    batches: int

    @property
    def fraction_real(self) -> float:
        return self.real / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (f"{self.real:,} real tokens in {self.total:,} positions over {self.batches} batches: "
                f"{100 * self.fraction_real:.1f} % real, {100 * (1 - self.fraction_real):.1f} % padding")


def padding_stats(lengths: list[int], batch_size: int, *, group_by_length: bool = True,
                  max_length: int | None = None, shuffle: bool = True, seed: int = 0,
                  epoch: int = 0) -> PaddingStats:
    """How much of an epoch's batches is real text, from the token count of every example.

    The batches are those of ``ftlib.data.make_loader`` with the same arguments
    (``LengthGroupedBatchSampler``). Each batch is padded to its longest example (dynamic
    padding) or, with `max_length`, to that fixed length.
    """
    lengths = [int(n) for n in lengths]
    if max_length is not None and max(lengths, default=0) > max_length:
        raise ValueError(f"an example has {max(lengths)} tokens, more than max_length={max_length}: "
                         "tokenize with truncation=True and the same max_length first")
    sampler = LengthGroupedBatchSampler(lengths, batch_size, shuffle=shuffle, group_by_length=group_by_length,
                                        seed=seed)
    sampler.set_epoch(epoch)
    real = total = 0
    batches = sampler.batches()
    for batch in batches:
        width = max_length if max_length is not None else max(lengths[i] for i in batch)
        real += sum(lengths[i] for i in batch)
        total += width * len(batch)
    return PaddingStats(real=real, total=total, batches=len(batches))


def measure_padding(loader) -> PaddingStats:
    """The same count, measured on the batches a DataLoader really yields (from their attention masks)."""
    real = total = batches = 0
    for batch in loader:
        mask = batch["attention_mask"]
        real += int(mask.sum())
        total += mask.numel()
        batches += 1
    return PaddingStats(real=real, total=total, batches=batches)
