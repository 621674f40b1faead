"""Checks and knowledge test for lesson 01 (Choosing a pretrained model).

Each check raises :class:`~ftlib.exercises.Hint` with a pointer, never the answer.
"""
from __future__ import annotations

import math
import numbers

import torch

from . import Hint, Question, Quiz

__all__ = ["check_largest_batch", "check_my_features", "check_probe_choice", "check_training_state_bytes",
           "largest_batch", "QUIZ"]


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise Hint(f"`{name}` should be a number, got {value!r}")
    return float(value)


def check_training_state_bytes(state_bytes, params: int) -> None:
    """Exercise 1: weights + gradients + AdamW state of full fp32 fine-tuning, in bytes."""
    value = _number(state_bytes, "state_bytes")
    near = lambda per_param: math.isclose(value, per_param * params, rel_tol=0.01)  # noqa: E731
    if near(16):
        return
    if near(16 / 1e9) or near(16 / 2**30) or near(16 / 1e6) or near(16 / 2**20):
        raise Hint("the right sum, but in GB or MB: give the answer in bytes")
    if near(16 * 8):
        raise Hint("that is bits: a byte holds 8 bits, and sizes here are in bytes")
    if near(4):
        raise Hint("that is the weights only; training also keeps a gradient for every trainable "
                   "parameter, and AdamW keeps its own numbers per parameter")
    if near(8):
        raise Hint("weights and gradients: AdamW also keeps two running averages per parameter (m and v)")
    if near(12):
        raise Hint("AdamW keeps *two* fp32 numbers per parameter (the first and the second moment)")
    if near(18):
        raise Hint("that is the mixed-precision figure (fp32 weights plus a half-precision copy); "
                   "this question is about plain fp32")
    if near(2) or near(6) or near(10):
        raise Hint("fp32 numbers take 4 bytes each, not 2: 2 bytes is fp16 / bf16")
    raise Hint("add up bytes per parameter: the weight, its gradient, and AdamW's two moments, "
               "all fp32 (4 bytes each); then multiply by `params`")


def largest_batch(model, *, seq_len: int, budget: float, precision: str, max_batch: int = 4096) -> int:
    """The largest batch size whose estimate fits in `budget` bytes (0 if not even 1 fits)."""
    from ..memory import estimate_training_memory

    def fits(b):
        return estimate_training_memory(model, batch_size=b, seq_len=seq_len, precision=precision).fits(budget)

    lo, hi = 0, max_batch  # invariant: lo fits (or is 0), hi + 1 does not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def check_largest_batch(batch, model, *, seq_len: int, budget: float, precision: str) -> None:
    """Exercise 2: the largest batch of `seq_len` tokens whose estimate fits in `budget`."""
    value = _number(batch, "batch")
    if value != int(value) or value < 0:
        raise Hint(f"a batch size is a whole number of sequences, got {batch}")
    value, truth = int(value), largest_batch(model, seq_len=seq_len, budget=budget, precision=precision)
    if value == truth:
        return
    if truth and value == largest_batch(model, seq_len=seq_len, budget=budget, precision="fp32"):
        raise Hint(f"that is the answer for fp32; a T4 trains in {precision} (mixed precision): "
                   "pass precision= to the estimate")
    if value > truth:
        raise Hint("the estimate for that batch is above the budget: look at est.total, "
                   "not at one part of it, and compare with the budget")
    raise Hint("that batch fits, but a larger one fits too (the largest need not be a power of two): "
               "loop over batch sizes and keep the last one for which "
               "estimate_training_memory(...).fits(budget) is True")


# Texts the feature check adds to the lesson's: a one-word review (much padding) and one longer than any
# max_length the profiles use (128 tokens), yet shorter than every course model's positions (512).
_SHORT = "Wonderful."
_LONG = ("The first hour of this film drifts along without much purpose, and I kept checking the time, "
         "but the second half gathers every loose thread into something quietly moving. The lead actor "
         "carries long silent scenes with nothing but his face, the music never tells you what to feel, "
         "and the small town looks lived in rather than built for the camera. Some of the dialogue is "
         "stiff, a subplot about a missing dog goes nowhere, and the ending is a little too tidy for a "
         "story this patient. Still, I left the cinema thinking about my own father, which is more than "
         "most films manage, and I would happily sit through the slow start again to get to the last "
         "twenty minutes. Bring patience, a warm coat for the outdoor scenes, and perhaps a handkerchief.")


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-3, atol=1e-4)


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


def _error_hint(error: Exception, name: str) -> Hint:
    text = str(error)
    if "same device" in text or "Expected all tensors" in text:
        return Hint(f"with the {name} your function stopped: the tokenizer's tensors start on the CPU, and a model "
                    "computes only on inputs on its own device")
    if "padding" in text or "Unable to create tensor" in text or "same length" in text:
        return Hint(f"with the {name} your function stopped: the texts of a batch have different lengths, and a "
                    "tensor needs rows of one length; the tokenizer can make them so (and say which positions are "
                    "real)")
    if "last_hidden_state" in text or "hidden_states" in text:
        return Hint(f"with the {name} your function stopped ({type(error).__name__}: {text[:120]}): not every "
                    "model's output has the same fields; every transformers model returns the hidden states of "
                    "all its layers when you ask it to")
    if isinstance(error, IndexError) or "index out of range" in text or "size of tensor" in text:
        return Hint(f"with the {name} your function stopped ({type(error).__name__}: {text[:120]}): a text longer "
                    "than `max_length` tokens must be cut, and the shapes of the hidden states and the mask must "
                    "line up, (batch, tokens, hidden) against (batch, tokens)")
    return Hint(f"with the {name} your function raised {type(error).__name__}: {text[:200]}")


def check_my_features(my_out, my_features, models: dict, texts, max_length: int) -> None:
    """Exercise 3: the learner's features for one batch, against ``ftlib.selection.mean_pooled_features``.

    `models` maps a name to ``(model, tokenizer)``; `my_out` is the learner's output for the first of
    them on `texts` (``None`` or ``...`` when not answered). The check runs `my_features` with every
    model on a batch of the lesson's texts and a one-word review, then with the first model on a
    long review alone.
    """
    # Two batches: the short texts together, with every model (padding matters), then the long one alone, with
    # the first model (cutting matters); apart, the short texts are not padded to the long one's length.
    first = dict([next(iter(models.items()))])
    for batch, pairs in ((list(texts) + [_SHORT], models), ([_LONG], first)):
        for name, (model, tokenizer) in pairs.items():
            model.eval()  # as the probe does: no dropout
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            try:
                got = my_features(model, tokenizer, batch, max_length)
            except Hint:
                raise
            except Exception as error:  # noqa: BLE001 - a learner's error becomes a hint that names its likely cause
                raise _error_hint(error, name) from error
            if got is None or got is Ellipsis:
                raise Hint("`my_features` returns nothing yet: it should end by returning the features")
            if not isinstance(got, torch.Tensor):
                raise Hint(f"`my_features` should return a tensor (one row per text), got {type(got).__name__}")
            got = got.detach().float().cpu()
            _compare(got, model, tokenizer, batch, max_length, name)


@torch.no_grad()
def _compare(got: torch.Tensor, model, tokenizer, batch: list[str], max_length: int, name: str) -> None:
    from ..runtime import model_device, move_to

    def run(truncate: bool):
        enc = tokenizer(batch, padding=True, truncation=truncate, max_length=max_length if truncate else None,
                        return_tensors="pt")
        enc = move_to(enc, model_device(model))
        out = model(**enc, output_hidden_states=True)
        return out, [h.float().cpu() for h in out.hidden_states], enc["attention_mask"].cpu()

    out, hs, mask = run(True)
    last, n = hs[-1], len(batch)
    right = _masked_mean(last, mask)
    width = last.shape[-1]
    if _close(got, right):
        return
    if got.dim() == 3:
        raise Hint(f"with the {name} you returned {tuple(got.shape)}: one vector per *token*; the probe needs one "
                   "vector per text, so average over each text's tokens")
    if n > 1 and (got.dim() == 1 or (got.dim() == 2 and got.shape[0] == 1)):
        raise Hint(f"with the {name} you returned a single vector for {n} texts: average over each text's tokens, "
                   "not over the texts of the batch")
    if got.dim() != 2 or got.shape[0] != n:
        raise Hint(f"with the {name} the result has shape {tuple(got.shape)}; the probe needs one row per text and "
                   f"one column per hidden unit: ({n}, {width}) for this batch")
    if got.shape[1] != width:
        logits = getattr(out, "logits", None)
        if logits is not None and got.shape[1] == logits.shape[-1]:
            raise Hint(f"with the {name} your rows are {got.shape[1]} wide, the model's output scores (logits); the "
                       "probe reads what the model computed before its output layer: its hidden states")
        raise Hint(f"with the {name} your rows are {got.shape[1]} wide, the model's hidden states {width}: use the "
                   "hidden states of the model's last layer")
    if _close(got, last.mean(1)):
        raise Hint("the padding counts in your average: in a batch, short texts are padded to the longest one, and "
                   "those extra positions are not part of the text; average over each text's real tokens only")
    if _close(got, (last * mask.unsqueeze(-1)).sum(1)):
        raise Hint("that is a sum over the tokens: longer texts get larger features whatever they say; divide by "
                   "how many real tokens each text has")
    if _close(got, (last * mask.unsqueeze(-1)).sum(1) / mask.shape[1]):
        raise Hint("you divided by the padded length, the same for every text: divide each text's sum by its own "
                   "number of real tokens")
    if _close(got, last[:, 0]):
        raise Hint("that is the first token's vector only (for BERT-like encoders, [CLS]); the probe averages over "
                   "all of each text's real tokens")
    lengths = mask.sum(1)
    if _close(got, last[:, -1]) or _close(got, last[torch.arange(n), lengths - 1]):
        raise Hint("that is one token's vector, the last one; the probe averages over all of each text's real tokens")
    pooler = getattr(getattr(model, "base_model", None), "pooler", None)
    if pooler is not None and _close(got, pooler(hs[-1].to(model_device(model)).to(model.dtype)).float().cpu()):
        raise Hint("that is BERT's pooler output, a transformation of the first token trained for another "
                   "objective; the probe averages the last layer's vectors over each text's real tokens")
    for k, h in enumerate(hs[:-1]):
        if _close(got, _masked_mean(h, mask)):
            which = "the embedding layer's output, before any block" if k == 0 else f"the output of block {k}"
            raise Hint(f"right pooling, wrong layer: that is {which}; the probe uses the model's last layer, the one "
                       "that has seen the most context")
    rows = [i for i in range(n) if not _close(got[i], right[i])]
    too_long = {i for i, ids in enumerate(tokenizer(batch)["input_ids"]) if len(ids) > max_length}
    if set(rows) <= too_long:
        raise Hint(f"the short texts match, the long one does not: it has more than max_length={max_length} "
                   "tokens, and the probe cuts every text at `max_length`")
    raise Hint(f"with the {name} your features differ from ftlib's on {len(rows)} of the {n} texts. Try your "
               "function on one short text alone, where there is no padding: if that row matches "
               "ftlib.selection.mean_pooled_features, look at what padding does to yours; if not, at which layer "
               "and which positions you average")

def check_probe_choice(choice, results) -> None:
    """Exercise 4: the candidate a linear probe says to fine-tune (a key of `results`)."""
    if not isinstance(choice, str):
        raise Hint(f"`choice` should be the name of a candidate (a string), got {type(choice).__name__}")
    if choice not in results:
        raise Hint(f"{choice!r} is not one of the candidates: choose one of {sorted(results)}")
    best = max(results, key=lambda name: results[name]["accuracy"])
    if results[choice]["accuracy"] == results[best]["accuracy"]:
        return
    by_train = max(results, key=lambda name: results[name]["train_accuracy"])
    if choice == by_train:
        raise Hint("you chose by training accuracy: a probe with many features can fit its training "
                   "examples whatever they mean; compare the held-out accuracy")
    raise Hint("compare the candidates' held-out probe accuracy (the 'accuracy' column): "
               "the higher, the better the frozen features separate the classes")


QUIZ = Quiz("Knowledge test: lesson 01", [
    Question(
        "You need to classify customer e-mails into five departments. Which family do you start from?",
        ("An encoder such as BERT or DistilBERT, with a classification head",
         "A vision backbone such as ResNet",
         "A causal LM, always: generation models are more capable",
         "Any model: the head decides everything"),
        0,
        ("Right: an encoder reads the whole text in both directions and a small head maps it to labels; "
         "it is small, fast and made for this.",
         "ResNet takes pixels, not text.",
         "A causal LM can classify too, but it is larger and slower for the same job; start small.",
         "The head only maps features to labels: the pretrained body decides how good the features are."),
    ),
    Question(
        "Full fine-tuning with AdamW in mixed precision (fp16) costs about how much per parameter, before "
        "activations?",
        ("2 bytes", "4 bytes", "about 18 bytes", "about 100 bytes"),
        2,
        ("That is only the half-precision copy of the weights.",
         "That is the fp32 weights alone.",
         "Right: fp32 weights 4 + half copy 2 + fp32 gradients 4 + AdamW's two moments 8.",
         "Far too much; the parts add up to under 20 bytes."),
    ),
    Question(
        "Doubling the batch size roughly doubles which part of training memory?",
        ("The weights", "The optimizer state", "The activations", "All of them"),
        2,
        ("Weights do not depend on the batch.",
         "The optimizer keeps numbers per parameter, not per example.",
         "Right: activations are kept for every token of every example in the batch.",
         "Only the activations grow with the batch; that is why a smaller batch (or gradient accumulation) "
         "is the first fix for an out-of-memory error."),
    ),
    Question(
        "A tokenizer splits your Korean sentences into 8 tokens per word, or produces many [UNK] tokens. "
        "What does that tell you?",
        ("Nothing: tokenization does not matter after fine-tuning",
         "The model saw little Korean when it was pretrained: expect weaker results and longer, costlier "
         "sequences; prefer a multilingual model",
         "Use a larger batch",
         "Remove the Korean sentences"),
        1,
        ("Fine-tuning cannot recover words the tokenizer maps to [UNK], and every extra token costs memory "
         "and time.",
         "Right: the vocabulary reflects the pretraining text; a poor fit is a warning sign.",
         "The batch size does not change how text is split.",
         "Only if you do not need them; usually the task needs them, so change the model instead."),
    ),
    Question(
        "Why run a linear probe before fine-tuning?",
        ("It replaces fine-tuning",
         "It ranks candidate models cheaply: frozen features, one forward pass each, and a tiny classifier",
         "It measures the memory a model needs",
         "It checks the model's licence"),
        1,
        ("Fine-tuning usually does better than a probe; the probe only compares starting points.",
         "Right: features are extracted once, and the candidate whose features separate the classes "
         "best is usually the better one to fine-tune.",
         "Memory comes from the estimate (or PeakMemory), not from the probe.",
         "The licence is in the model card: read it, no probe can check it."),
    ),
    Question(
        "Before choosing a model for a product, what must you read in its model card?",
        ("Only the download count",
         "The licence, the training data, the intended uses and limitations, and the evaluation results",
         "Nothing: models on the hub are free for any use",
         "The number of layers only"),
        1,
        ("Popularity says nothing about whether you may use it or whether it suits your data.",
         "Right: the licence says what you may do; the data, intended uses and results say whether it fits.",
         "Licences differ: some forbid commercial use or require attribution or sharing.",
         "The size is in the config; the card tells you what the model is for and what it may not be used for."),
    ),
])
