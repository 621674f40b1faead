"""Checks and knowledge test for lesson 02 (Preparing the data).

Each check raises :class:`~ftlib.exercises.Hint` with a pointer, never the answer.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from . import Hint, Question, Quiz

__all__ = ["QUIZ", "check_collate", "check_fraction_real", "check_leaked_ids", "check_tokens_in_loss"]


def check_leaked_ids(leaked_ids, leaky_train, test_rows) -> None:
    """Exercise 1: ids of the test rows whose normalised text is also in `leaky_train`."""
    from ..cleaning import NEAR_DUPLICATE_THRESHOLD, find_leakage

    if isinstance(leaked_ids, (str, bytes)) or not isinstance(leaked_ids, (set, frozenset, list, tuple)):
        raise Hint(f"`leaked_ids` should be a set of ids such as {{'r....', 'r....'}}, got {type(leaked_ids).__name__}")
    value = set(leaked_ids)
    if any(isinstance(v, numbers.Integral) for v in value):
        raise Hint("those are positions; give the reviews' `id` values instead, e.g. test_rows[j]['id']")
    test_ids = {r["id"] for r in test_rows}
    truth = {test_rows[leak.test_index]["id"] for leak in find_leakage(leaky_train, test_rows)}
    if value == truth:
        return
    if not value:
        raise Hint("the set is empty: build the set of normalised training texts, then test each test "
                   "review's normalised text against it")
    foreign = value - test_ids
    if foreign:
        raise Hint(f"{len(foreign)} of your ids are not test reviews (e.g. {sorted(foreign)[0]!r}): the copies in "
                   "`leaky_train` have ids of their own; collect the ids of the rows of `test_rows`")
    near = {test_rows[leak.test_index]["id"]
            for leak in find_leakage(leaky_train, test_rows, threshold=NEAR_DUPLICATE_THRESHOLD)}
    if truth < value <= near:
        raise Hint("you also counted near copies (edited texts); this exercise asks only for texts that are "
                   "equal once both are normalised")
    raw_train = {r["text"] for r in leaky_train}
    raw = {r["id"] for r in test_rows if r["text"] in raw_train}
    if value == raw or value < truth:
        raise Hint("a copy is missing: one differs from its test review only in letter case or punctuation; "
                   "compare normalize_text(...) of both texts, not the raw strings")
    raise Hint("normalise every text of `leaky_train` with normalize_text, then keep the ids of the test rows "
               "whose normalised text is among them")


def check_collate(my_batch, examples, tokenizer) -> None:
    """Exercise 2: the learner's collate function's batch for `examples`, against DataCollatorWithPadding's."""
    import torch
    from transformers import DataCollatorWithPadding

    if not isinstance(my_batch, Mapping):
        raise Hint(f"`my_collate` should return a dict of tensors, got {type(my_batch).__name__}")
    why = {"input_ids": "the token ids, one row per example",
           "attention_mask": "without it the model cannot tell real tokens from padding",
           "labels": "the loss needs the answers, one per example"}
    for key, reason in why.items():
        if key not in my_batch:
            raise Hint(f"the batch has no {key!r}: {reason}")
        if not isinstance(my_batch[key], torch.Tensor):
            raise Hint(f"{key!r} should be a tensor, got {type(my_batch[key]).__name__}: the model takes tensors")
    truth = DataCollatorWithPadding(tokenizer, return_tensors="pt")(examples)
    ids, mask, want = my_batch["input_ids"], my_batch["attention_mask"], truth["input_ids"]
    longest = max(len(e["input_ids"]) for e in examples)
    if ids.ndim != 2 or ids.shape[0] != len(examples):
        raise Hint(f"`input_ids` should have one row per example ({len(examples)} rows), got shape {tuple(ids.shape)}")
    if ids.shape[1] > longest:
        raise Hint(f"your batch is {ids.shape[1]} positions wide, its longest example {longest} tokens: pad each "
                   "batch only to its own longest example, not to a fixed length")
    if ids.shape[1] < longest:
        raise Hint(f"your batch is {ids.shape[1]} positions wide, but its longest example has {longest} tokens: "
                   "nothing may be cut off")
    if ids.is_floating_point() or mask.is_floating_point():
        raise Hint("token ids and the attention mask are whole numbers: build them as integer tensors")
    if mask.shape != ids.shape:
        raise Hint(f"the attention mask should have the shape of `input_ids`, {tuple(ids.shape)}; it has "
                   f"{tuple(mask.shape)}")
    real = truth["attention_mask"].bool()
    if not torch.equal(ids[real], want[real]):
        left = torch.stack([row.roll(int((~r).sum())) for row, r in zip(want, real)])  # the padding first
        if torch.equal(ids, left):
            raise Hint(f"the padding goes after the text, on the {tokenizer.padding_side}, as the tokenizer pads")
        raise Hint("the real tokens are not where they should be: keep each example's ids in order, from "
                   "position 0, and put the padding after them")
    if not torch.equal(ids[~real], want[~real]):
        raise Hint("the padding positions should hold the tokenizer's padding token (`tokenizer.pad_token_id`)")
    if not torch.equal(mask, truth["attention_mask"]):
        if bool(mask.bool().all()):
            raise Hint("the attention mask says every position is real: the padding positions should be marked "
                       "as padding")
        if torch.equal(mask, 1 - truth["attention_mask"]):
            raise Hint("the attention mask is upside down: 1 marks a real token, 0 a padding position")
        raise Hint("the attention mask should mark exactly the real tokens of each example")
    labels = my_batch["labels"]
    if labels.shape != truth["labels"].shape or not torch.equal(labels, truth["labels"]):
        raise Hint("`labels` should hold each example's label, in the order of the examples, one per example")
    for key in set(my_batch) & set(truth) - set(why):  # e.g. token_type_ids: optional, but right if there
        if not torch.equal(torch.as_tensor(my_batch[key]), truth[key]):
            raise Hint(f"{key!r} is not padded like the rest: leave it out (the model fills it in) or pad it too")


def _fraction_parts(lengths, batches) -> tuple[int, int]:
    real = sum(lengths[i] for batch in batches for i in batch)
    positions = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return real, positions


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def check_fraction_real(fraction_real, lengths, batches) -> None:
    """Exercise 3: real tokens / padded positions over an epoch of dynamically padded batches."""
    if isinstance(fraction_real, bool) or not isinstance(fraction_real, numbers.Real):
        raise Hint(f"`fraction_real` should be a number between 0 and 1, got {type(fraction_real).__name__}")
    value = float(fraction_real)
    if not math.isfinite(value) or value <= 0:
        raise Hint(f"{value} is not a fraction of tokens: divide the real tokens by the positions, both above zero")
    real, positions = _fraction_parts(lengths, batches)
    truth = real / positions
    if _close(value, truth):
        return
    if _close(value, 100 * truth):
        raise Hint("that is a percentage; give a fraction between 0 and 1")
    if _close(value, 1 - truth):
        raise Hint("that is the share of padding; the question asks for the share of real tokens")
    if _close(value, positions / real):
        raise Hint("more than 1: you divided the positions by the real tokens, the wrong way round")
    per_batch = [sum(lengths[i] for i in b) / (len(b) * max(lengths[i] for i in b)) for b in batches]
    if _close(value, sum(per_batch) / len(per_batch)):
        raise Hint("you averaged the per-batch fractions, which weighs a small or narrow batch like a large one: "
                   "add up real tokens and positions over all batches first, then divide once")
    width = real / (value * len(lengths))  # the width every example would have if all were padded alike
    if width >= max(lengths) - 1e-6 and _close(width, round(width)):
        raise Hint("that pads every example to one common width; here each batch is padded only to its own "
                   "longest example")
    raise Hint("for each batch, the real tokens are the sum of its lengths and the positions are its size times "
               "its longest length; add both up over all batches, then divide")


def check_tokens_in_loss(in_loss, example) -> None:
    """Exercise 4: positions of an encoded QA example whose label is not -100."""
    if isinstance(in_loss, bool) or not isinstance(in_loss, numbers.Real) or in_loss != int(in_loss):
        raise Hint(f"`in_loss` should be a whole number (a count of tokens), got {in_loss!r}")
    value, labels = int(in_loss), list(example["labels"])
    truth = sum(label != -100 for label in labels)
    if value == truth:
        return
    if value == len(labels) - truth:
        raise Hint("those are the positions the loss ignores (label -100); count the others")
    if value == len(example["input_ids"]):
        raise Hint("that counts every token; the loss skips the positions whose label is -100")
    if value == truth - 1:
        raise Hint("almost: the end-of-turn token after the answer has a label too (the model must learn to stop)")
    raise Hint("count the positions of example['labels'] whose value is not -100")


QUIZ = Quiz("Knowledge test: lesson 02", [
    Question(
        "A review in the test split also appears, in capitals, in the training split. What happens if you keep it?",
        ("Nothing: capitals make it a different example",
         "The test score comes out too high: the model is tested on something it may have memorised",
         "Training fails with an error",
         "The test score comes out too low"),
        1,
        ("The model's tokenizer may even lower-case it (DistilBERT is uncased); either way the content is the same.",
         "Right: that is leakage. Compare normalised texts, and remove the copy before training.",
         "Nothing checks for it unless you do: that is why the lesson writes the check.",
         "A memorised example is answered well, not badly: the error is optimistic."),
    ),
    Question(
        "Why does the lesson test the leakage check on a copy with injected leaks?",
        ("To make the dataset bigger",
         "Because a check that finds nothing might simply not work; known leaks show it finds what it should",
         "Because the course file is full of leaks",
         "To train on the test data on purpose"),
        1,
        ("The copy is thrown away; nothing trains on it.",
         "Right: a check is tested like any code, on an input whose answer is known.",
         "The file had exact and near duplicates removed when it was built; the check finds what little is left.",
         "Nothing trains in this lesson; the copy only exercises the check."),
    ),
    Question(
        "Batches of 16 reviews of 10 to 120 tokens. Which batching computes the fewest padding positions?",
        ("Every review padded to max_length = 128",
         "Each batch padded to its own longest review, batches drawn at random",
         "Each batch padded to its own longest review, with reviews of similar length grouped together",
         "They all compute the same number of positions"),
        2,
        ("That pads even a 10-token review to 128: mostly padding.",
         "Better than a fixed length, but one long review in a batch of short ones makes the whole batch wide.",
         "Right: similar lengths in a batch leave little to pad; that is make_loader's default.",
         "The real tokens are the same; the padding around them is not."),
    ),
    Question(
        "In a question-answer training example, why are the prompt's labels set to -100?",
        ("To mark padding",
         "So that the loss, and the gradient, come only from the answer (and its end-of-turn token)",
         "Because the prompt is too long to fit",
         "So that the model does not read the question"),
        1,
        ("Padding gets -100 as well, but the prompt is real text that the model reads.",
         "Right: cross-entropy skips -100 (ignore_index), so the model learns to answer, not to repeat questions.",
         "Length is handled by max_length; the labels decide what is learned, not what fits.",
         "The model reads every real token (the attention mask is 1); it is only not asked to predict them."),
    ),
    Question(
        "You fine-tune a backbone pre-trained on ImageNet. Which mean and std normalise your images?",
        ("Those of your own images, so that they have mean 0 and std 1",
         "The backbone's: the ImageNet statistics its processor records",
         "None: neural networks adapt to any scale",
         "0.5 and 0.5, always"),
        1,
        ("Close in spirit, but the first layer's weights were learned on inputs normalised with ImageNet's statistics.",
         "Right: prepare new images exactly as the backbone's training images were prepared.",
         "They adapt slowly, by changing the pretrained weights you wanted to keep.",
         "That is a common default, right only for backbones trained with it (the processor says which)."),
    ),
    Question(
        "Which augmentation is wrong for handwritten digits?",
        ("A small random rotation", "A shift by a pixel or two", "A horizontal flip", "A little random noise"),
        2,
        ("A slightly tilted 7 is still a 7.",
         "A digit moved a little is still the same digit.",
         "Right: a mirrored 2 or 5 is not a digit; an augmentation must keep the label.",
         "Noise changes pixels, not the digit; the model learns to ignore it."),
    ),
])
