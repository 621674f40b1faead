"""Checks and knowledge test for lesson 09 (A question-answering model from a causal language model).

Each check raises :class:`~ftlib.exercises.Hint` with a pointer, never the answer.
"""
from __future__ import annotations

import numbers

from . import Hint, Question, Quiz

__all__ = ["check_choice", "check_my_encode_qa", "QUIZ"]


_PAIRS = (("How many legs does a spider have?", "8"), ("Who wrote Hamlet?", "William Shakespeare"),
          ("한국의 수도는 어디인가요?", "서울"))


def _int_list(name: str, value, lang: str) -> list[int]:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not all(
            isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in value):
        raise Hint(f"on the {lang} pair, `{name}` should be a list of whole numbers (token ids), "
                   f"got {type(value).__name__}")
    return [int(x) for x in value]


def _labels_hint(labels: list[int], ids: list[int], n: int, lang: str) -> None:
    """Raise the hint for labels that differ from -100 on the `n` prompt positions and the ids elsewhere."""
    truth = [-100] * n + ids[n:]
    if labels == truth:
        return
    if len(labels) != len(ids):
        raise Hint(f"on the {lang} pair, `labels` has {len(labels)} entries for {len(ids)} tokens: one label per "
                   "token, at the same positions")
    if labels == ids:
        raise Hint("the prompt is not hidden: the loss would also be computed on the template and the question, "
                   "which the model never has to write")
    if labels == ids[:n] + [-100] * (len(ids) - n):
        raise Hint("you hid the answer and kept the prompt: it is the other way round, the model should learn "
                   "to write the answer, not the question")
    if all(x == -100 for x in labels):
        raise Hint("every position is hidden from the loss: nothing would be learned")
    if labels == [-100] * n + ids[n:-1] + [-100]:
        raise Hint("the end-of-turn token is hidden from the loss: it must keep its label, or the model never "
                   "learns to stop")
    if labels[n:] == ids[n:] and len(set(labels[:n])) == 1:
        raise Hint("the prompt positions hold a real token id, which the loss would teach the model to predict: "
                   "use the value that PyTorch's cross-entropy skips")
    if labels == ids[1:] + [-100] or labels == [-100] * (n - 1) + ids[n:] + [-100]:
        raise Hint("no need to shift the labels by one: the model shifts them itself (position t predicts "
                   "token t + 1); labels line up with input_ids")
    for k in (n - 1, n + 1):
        if labels == [-100] * k + ids[k:]:
            raise Hint(f"on the {lang} pair the hidden part is off by one: it must cover the prompt exactly")
    raise Hint(f"on the {lang} pair your labels differ from encode_qa's: hide the prompt's positions, and keep "
               "the id of every token after it")


def _mask_hint(mask: list[int], ids: list[int], n: int, lang: str) -> None:
    """Raise the hint for an attention mask that is not 1 on every position of a single example."""
    if mask == [1] * len(ids):
        return
    if len(mask) != len(ids):
        raise Hint(f"on the {lang} pair, `attention_mask` has {len(mask)} entries for {len(ids)} tokens: one entry "
                   "per token")
    if -100 in mask:
        raise Hint("-100 belongs in the labels: the attention mask holds 1 (the model may read this position) "
                   "or 0 (padding, which it must not read)")
    if mask[:n] == [0] * n:
        raise Hint("the attention mask hides the prompt from the model: it says what the model may *read*, and it "
                   "must read the question to answer it; which positions the loss counts is the labels' job")
    raise Hint(f"on the {lang} pair the attention mask has a 0 where the model should read: 0 is for padding, "
               "which a batch adds later; is any position of this example padding?")


def _encode(fn, tokenizer, question: str, answer: str, max_length: int, lang: str):
    got = fn(tokenizer, question, answer, max_length)
    keys = ("input_ids", "attention_mask", "labels")
    if not isinstance(got, dict) or any(k not in got for k in keys):
        raise Hint("`my_encode_qa` should return a dict with the keys 'input_ids', 'attention_mask' and 'labels'")
    if any(got[k] is Ellipsis for k in keys):
        raise Hint("`my_encode_qa` still returns `...`: set `input_ids`, `attention_mask` and `labels` in the "
                   "exercise cell")
    return [_int_list(k, got[k], lang) for k in keys]


def _lang(question: str) -> str:
    return "Korean" if any("\uac00" <= ch <= "\ud7a3" for ch in question) else "English"


# A pair whose answer the check cuts: it does not fit in the max_length the check gives it.
_LONG_PAIR = ("Name the planets of the solar system, from the Sun outwards.",
              "Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus and Neptune")


def check_my_encode_qa(my_labels, my_encode_qa, tokenizer, question: str, answer: str, max_length: int) -> None:
    """Exercise 1: the learner's encoding, against ``ftlib.qa.encode_qa``.

    On the lesson's pair and on English and Korean pairs of its own (all of which fit in
    `max_length`), then on a long answer that must be cut, then with no room left for any
    answer, where a ValueError is expected. `my_labels` are the learner's labels for the
    lesson's pair (``...`` when not answered).
    """
    from ..qa import encode_qa, prompt_ids

    eos = tokenizer.eos_token_id
    for q, a in ((question, answer),) + _PAIRS:
        lang = _lang(q)
        ids, mask, labels = _encode(my_encode_qa, tokenizer, q, a, max_length, lang)
        want = encode_qa(tokenizer, q, a, max_length=max_length)["input_ids"]
        n = len(prompt_ids(tokenizer, q))
        if ids != want:
            if ids[:n] != want[:n]:
                raise Hint("your input_ids do not start with the prompt's ids: begin with the prompt that "
                           "`prompt_ids` gives")
            if ids == want[:-1]:
                raise Hint("the example ends right after the answer: nothing in it teaches the model to stop")
            if ids == want + [eos] or ids == want[:-1] + [eos, eos]:
                raise Hint("the end-of-turn token is there twice: it ends the example once")
            bare = tokenizer(a.strip(), add_special_tokens=False)["input_ids"] + [eos]
            if ids[n:] == bare[:max_length - n] and not tokenizer.chat_template:
                raise Hint(f"on the {lang} pair the answer's tokens differ from encode_qa's: in the plain 'Q: … A:' "
                           "format the answer follows a space after 'A:', as in ordinary text, and the tokenizer "
                           "must see that space")
            if len(ids) > len(want) and ids[-1] == want[-1]:
                raise Hint(f"on the {lang} pair there are extra tokens between the prompt and the end: the answer "
                           "alone, without special tokens the tokenizer adds by itself, or extra spaces")
            raise Hint(f"on the {lang} pair your input_ids after the prompt differ from encode_qa's: the answer's "
                       "tokens, then the end-of-turn token, nothing else")
        _labels_hint(labels, ids, n, lang)
        _mask_hint(mask, ids, n, lang)

    q, a = _LONG_PAIR  # an answer that does not fit: cut in its middle
    n = len(prompt_ids(tokenizer, q))
    full = encode_qa(tokenizer, q, a, max_length=n + 4096)["input_ids"]
    cut = n + max(1, (len(full) - n) // 2)
    ids, mask, labels = _encode(my_encode_qa, tokenizer, q, a, cut, "long-answer")
    want = encode_qa(tokenizer, q, a, max_length=cut)["input_ids"]
    if ids != want:
        if ids == full:
            raise Hint(f"with max_length={cut} your example keeps all its {len(full)} tokens: max_length bounds the "
                       "whole example, the prompt included, and a longer one must be cut to that length")
        if ids[:n] != full[:n]:
            raise Hint("with a long answer, your example lost part of the prompt: the model must read the whole "
                       "question, so the prompt always stays whole and what does not fit is the end of the answer")
        if ids == full[:n] + full[n:][:cut]:
            raise Hint("you cut the answer to max_length tokens, but max_length is the length of the whole example, "
                       "the prompt included")
        if ids == want[:-1] + [eos] or ids == want + [eos]:
            raise Hint("the cut answer ends with the end-of-turn token: the model would learn to stop in the middle "
                       "of an answer; when an answer is cut, its end goes with it")
        if len(ids) > cut:
            raise Hint(f"with max_length={cut} your example has {len(ids)} tokens: it must not be longer than "
                       "max_length")
        if len(ids) < cut:
            raise Hint(f"with max_length={cut} your example has only {len(ids)} tokens, yet the answer was cut: keep "
                       "as much of the answer as fits")
        raise Hint("with a long answer your input_ids differ from encode_qa's: print yours next to the uncut "
                   "example and look at where they part")
    _labels_hint(labels, ids, n, "long-answer")
    _mask_hint(mask, ids, n, "long-answer")

    q, a = _PAIRS[0]  # no room at all: max_length is the prompt's own length
    n = len(prompt_ids(tokenizer, q))
    try:
        my_encode_qa(tokenizer, q, a, n)
    except ValueError:
        return
    except Hint:
        raise
    except AssertionError as error:
        raise Hint("an assert is not the way to refuse an input: Python skips asserts when run with -O; raise a "
                   "ValueError, with a message that says what to change") from error
    except Exception as error:  # noqa: BLE001 - the learner's own error becomes a hint
        raise Hint(f"with max_length equal to the prompt's length your function raised {type(error).__name__}: "
                   f"{str(error)[:120]}; the course raises a ValueError there, whose message says what to "
                   "change") from error
    raise Hint("with max_length equal to the prompt's own length, no answer token fits: the example would have no "
               "label to learn from (its mean loss is 0 / 0); refuse it with a ValueError that says why")


def check_choice(choice, sweep) -> None:
    """Exercise 2: the (lr, epoch) with the lowest validation loss in `sweep` (rows: lr, epoch, train_loss, val_loss)."""
    if not isinstance(choice, tuple) or len(choice) != 2:
        raise Hint("`choice` should be a pair (lr, epoch), e.g. (0.01, 2)")
    lr, epoch = choice
    lrs, epochs = {r["lr"] for r in sweep}, {r["epoch"] for r in sweep}
    if lr in epochs and any(abs(epoch - x) <= 1e-12 for x in lrs if isinstance(epoch, numbers.Real)):
        raise Hint("the order is (lr, epoch): the learning rate first")
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or not isinstance(lr, numbers.Real):
        raise Hint("`choice` is (learning rate, epoch number): a float and an int, in that order")
    rows = {(r["lr"], r["epoch"]): r for r in sweep}
    key = next((k for k in rows if abs(k[0] - lr) <= 1e-12 * max(1.0, abs(lr)) and k[1] == epoch), None)
    if key is None:
        raise Hint("that pair is not in the sweep table: pick one of its rows (its lr and its epoch)")
    best = min(sweep, key=lambda r: r["val_loss"])
    if key == (best["lr"], best["epoch"]):
        return
    if key == min(rows, key=lambda k: rows[k]["train_loss"]):
        raise Hint("that row has the lowest *training* loss, which keeps falling as the model memorises; "
                   "choose by the questions it did not train on")
    if key[1] == max(r["epoch"] for r in sweep):
        raise Hint("the last epoch is not always the best one: compare the validation loss of every row")
    raise Hint("compare the val_loss column of every row, for every learning rate")


QUIZ = Quiz("Knowledge test: lesson 09", [
    Question(
        "Why do the prompt tokens get the label -100?",
        ("To make the sequences the same length",
         "So that the loss, and the gradient, come from the answer tokens only",
         "Because -100 is the id of the end-of-turn token",
         "To stop the model from reading the question"),
        1,
        ("Padding does that (and padded positions get -100 too); the prompt is masked for another reason.",
         "Right: cross-entropy skips -100, so the model is trained to write answers, not to predict questions.",
         "-100 is not a token id at all: it is the value PyTorch's cross-entropy ignores.",
         "The model still reads the prompt (attention sees it); it is only not asked to predict it."),
    ),
    Question(
        "Why does each training example end with the end-of-turn token, and why does it carry a label?",
        ("It does not matter: generation always stops after max_new_tokens",
         "So that the model learns to stop after the answer",
         "It marks where the prompt starts",
         "It makes training faster"),
        1,
        ("max_new_tokens is a safety limit; a model that never learned to stop rambles until it is reached.",
         "Right: generation stops at that token, so the answer is short and exact match can be fair.",
         "The chat template marks the start of each turn with its own tokens.",
         "One more token per example makes training a little slower, not faster."),
    ),
    Question(
        "How were the learning rate and the number of epochs chosen in this lesson?",
        ("On the test questions, to report the best score",
         "On validation questions taken out of the training part; the test questions were used once, at the end",
         "By the lowest training loss",
         "By the library's defaults, with no measurement"),
        1,
        ("Then the test score would be chosen, not measured: it would overstate how well new questions go.",
         "Right: the test split stays unseen until the recipe is fixed.",
         "Training loss keeps falling as the model memorises its questions; it says little about new ones.",
         "The sweep in section 5 measured every combination on validation."),
    ),
    Question(
        "A prediction is 'The capital is Oslo' and the answer is 'Oslo'. What are exact match and token F1?",
        ("EM 1, F1 1", "EM 0, F1 0.5", "EM 0, F1 0.4", "EM 0, F1 0"),
        1,
        ("Exact match compares the whole normalised strings, and 'capital is oslo' is not 'oslo'.",
         "Right: normalised, the prediction is 'capital is oslo' ('the' is dropped): precision 1/3, recall 1, "
         "F1 = 2 * (1/3) * 1 / (1/3 + 1) = 0.5.",
         "That counts 'The' as a word: normalisation drops English articles, so the prediction has three words.",
         "F1 gives partial credit: the gold word is in the prediction."),
    ),
    Question(
        "What do RLHF and DPO add after supervised fine-tuning?",
        ("More question-answer pairs",
         "Learning from preferences: which of two answers people prefer",
         "A larger vocabulary",
         "A way to train without any data"),
        1,
        ("That is more supervised fine-tuning, the step this lesson did.",
         "Right: RLHF trains a reward model on preferences and optimises against it; DPO learns from the "
         "preference pairs directly, without a separate reward model.",
         "Neither changes the tokenizer.",
         "Both need preference data: pairs of answers, one marked better."),
    ),
])
