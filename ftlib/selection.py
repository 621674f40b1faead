"""Comparing candidate models before fine-tuning any of them.

Introduced in lesson 01. Two cheap measurements:

- :func:`vocabulary_fit`: how well a tokenizer covers your text (unknown tokens, tokens per
  word). A model cannot learn much from words its tokenizer turns into ``[UNK]``, and every
  extra token per word costs memory and time.
- :func:`linear_probe`: freeze a model, average its last hidden states over each text's tokens
  (mean pooling), and train only a logistic regression on these features. The better the
  frozen features separate your classes, the better a starting point the model is; the probe
  ranks candidates in seconds instead of one fine-tuning run each.
"""
from __future__ import annotations

import bisect
import re
import time

import torch
from torch import nn

from .runtime import model_device, move_to

__all__ = ["extract_features", "linear_probe", "mean_pooled_features", "train_logistic_regression", "vocabulary_fit"]


def vocabulary_fit(tokenizer, texts) -> dict:
    """How a tokenizer handles `texts` (lesson 01).

    Words are what whitespace separates (in Korean, a word with its particles). Returns
    ``unk_rate`` (unknown tokens / tokens), ``unk_word_rate`` (words with at least one unknown
    token / words), ``tokens_per_word`` and the counts behind them. A tokenizer with no unknown
    token (byte-level BPE, as in GPT-2 or Llama) never produces one: its cost shows in
    ``tokens_per_word`` instead.
    """
    texts = [t for t in texts]
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a non-empty list of strings, e.g. dataset['text']")
    unk = tokenizer.unk_token_id
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    words = tokens = unk_tokens = unk_words = 0
    for text, ids, offsets in zip(texts, enc["input_ids"], enc["offset_mapping"]):
        spans = [m.span() for m in re.finditer(r"\S+", text)]
        words, tokens = words + len(spans), tokens + len(ids)
        hit = {bisect.bisect_right([a for a, _ in spans], start) - 1
               for token, (start, _) in zip(ids, offsets) if unk is not None and token == unk}
        unk_tokens += sum(unk is not None and token == unk for token in ids)
        unk_words += len(hit)
    return {
        "texts": len(texts), "words": words, "tokens": tokens, "unk_tokens": unk_tokens,
        "unk_rate": unk_tokens / max(tokens, 1), "unk_word_rate": unk_words / max(words, 1),
        "tokens_per_word": tokens / max(words, 1),
    }


@torch.no_grad()
def mean_pooled_features(model, tokenizer, texts, max_length: int = 128) -> torch.Tensor:
    """One batch of texts -> (len(texts), hidden): the mean of the last hidden states over each text's real tokens.

    The features a linear probe uses (lesson 01, where the learner writes the same function).
    Works for encoders and causal LMs alike (``output_hidden_states=True`` on ``model.base_model``,
    so that no head runs: Gemma 3's would score 262,144 tokens at every position); the inputs go to
    the model's device, padding (attention mask 0) does not count, texts are cut at `max_length`.
    """
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    enc = move_to(enc, model_device(model))
    body = model.base_model  # the network without its head: a causal LM's head would score its whole vocabulary
    hidden = body(**enc, output_hidden_states=True).hidden_states[-1].float()  # (B, T, H): the last layer
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1): 0 on padding
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


@torch.no_grad()
def extract_features(model, tokenizer, texts, runtime, *, max_length: int = 128, batch_size: int = 32,
                     features=None) -> torch.Tensor:
    """Features of every text, batch by batch: a (len(texts), hidden) float tensor on the CPU.

    `features(model, tokenizer, batch_of_texts, max_length)` computes one batch; the default is
    :func:`mean_pooled_features` (lesson 01 passes the learner's own). The model is left in eval
    mode on ``runtime.device``.
    """
    features = features or mean_pooled_features
    model.to(runtime.device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    texts = list(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths together: less padding
    out = torch.empty(0)
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        with runtime.autocast():
            pooled = features(model, tokenizer, [texts[i] for i in rows], max_length)
        pooled = pooled.detach().float().cpu()
        if pooled.shape[0] != len(rows):
            raise ValueError(f"the features function returned {pooled.shape[0]} rows for {len(rows)} texts: "
                             "one row per text")
        if not out.numel():
            out = torch.empty(len(texts), pooled.shape[1])
        out[rows] = pooled
    return out


def train_logistic_regression(x: torch.Tensor, y: torch.Tensor, num_labels: int, *, l2: float = 1e-3,
                              steps: int = 50) -> nn.Linear:
    """A linear classifier on standardised features, fitted by full-batch L-BFGS (deterministic).

    The features are standardised with the training mean and std, which are folded into the
    returned layer: apply it to raw features.
    """
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    z = (x - mean) / std
    layer = nn.Linear(x.shape[1], num_labels)
    nn.init.zeros_(layer.weight), nn.init.zeros_(layer.bias)
    optimizer = torch.optim.LBFGS(layer.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(layer(z), y) + l2 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():  # w·(x - mean)/std + b  ==  (w/std)·x + (b - w·(mean/std))
        layer.bias -= layer.weight @ (mean / std)
        layer.weight /= std
    return layer


def linear_probe(model, tokenizer, train_ds, eval_ds, runtime, *, text_column: str = "text",
                 label_column: str = "label", max_length: int = 128, batch_size: int = 32,
                 l2: float = 1e-3, features=None) -> dict:
    """Accuracy of a logistic regression on the frozen, mean-pooled features of `model` (lesson 01).

    The features of each split are extracted once; only the linear layer trains. Returns
    ``accuracy`` (on `eval_ds`) and its ``standard_error`` (sqrt(p(1-p)/n): differences between
    candidates smaller than about two of them are noise), ``train_accuracy``, ``features`` (their
    width) and ``seconds``. `features` computes one batch of features, as in :func:`extract_features`.
    """
    for name, ds in (("train_ds", train_ds), ("eval_ds", eval_ds)):
        missing = {text_column, label_column} - set(ds.column_names)
        if missing:
            raise ValueError(f"{name} has no column {sorted(missing)}: it has {ds.column_names}; "
                             "pass text_column= and label_column=")
    start = time.perf_counter()
    x_train, x_eval = (extract_features(model, tokenizer, ds[text_column], runtime, max_length=max_length,
                                        batch_size=batch_size, features=features) for ds in (train_ds, eval_ds))
    y_train, y_eval = (torch.as_tensor(ds[label_column]) for ds in (train_ds, eval_ds))
    num_labels = int(max(y_train.max(), y_eval.max())) + 1
    layer = train_logistic_regression(x_train, y_train, num_labels, l2=l2)
    with torch.no_grad():
        accuracy = (layer(x_eval).argmax(-1) == y_eval).float().mean().item()
        train_accuracy = (layer(x_train).argmax(-1) == y_train).float().mean().item()
    return {"accuracy": accuracy, "standard_error": (accuracy * (1 - accuracy) / len(eval_ds)) ** 0.5,
            "train_accuracy": train_accuracy, "features": x_train.shape[1],
            "train_examples": len(train_ds), "eval_examples": len(eval_ds),
            "seconds": time.perf_counter() - start}
