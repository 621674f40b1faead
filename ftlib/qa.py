"""Question answering with a causal language model: prompts, masked labels, answers, scores.

Introduced in lesson 09 (lesson 02 shows the masked labels, lesson 07 the metrics). A
question-answer pair becomes one token sequence, prompt then answer; the labels copy
the answer's ids and put -100 on every prompt token, so the loss (and the gradient)
comes from the answer alone:

    tokens   <prompt ...................> 56 <|im_end|>
    labels   -100 -100 ... -100 -100 -100 56 <|im_end|>

The prompt is the model's chat template when its tokenizer has one, otherwise
``Q: {question}\\nA:``. Answers are generated greedily, in batches padded on the left.
"""
from __future__ import annotations

import random
import re
import string
import unicodedata
from collections import Counter, defaultdict

import torch

__all__ = [
    "encode_qa",
    "exact_match",
    "format_prompt",
    "generate_answers",
    "load_qa",
    "make_qa_loader",
    "normalize_answer",
    "prompt_ids",
    "qa_collate",
    "qa_scores",
    "qa_scores_by_language",
    "split_qa",
    "token_f1",
]

IGNORE_INDEX = -100  # the label value PyTorch's cross-entropy skips


def _has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_prompt(tokenizer, question: str, shots=()) -> str:
    """The text the model sees before its answer: chat template if the tokenizer has one, else ``Q: …\\nA:``.

    `shots`: (question, answer) pairs shown first, as earlier turns: a few-shot prompt (lesson 09's
    baseline). Without them the prompt is zero-shot, as in training.
    """
    question = question.strip()
    if _has_chat_template(tokenizer):
        turns = [m for q, a in shots for m in ({"role": "user", "content": q.strip()},
                                               {"role": "assistant", "content": a.strip()})]
        return tokenizer.apply_chat_template(turns + [{"role": "user", "content": question}],
                                             tokenize=False, add_generation_prompt=True)
    return "".join(f"Q: {q.strip()}\nA: {a.strip()}\n\n" for q, a in shots) + f"Q: {question}\nA:"


def _answer_text(tokenizer, question: str, prompt: str, answer: str) -> str:
    """What follows the prompt in a training example: the answer and the end-of-turn marker."""
    answer, eos = answer.strip(), tokenizer.eos_token or ""
    if _has_chat_template(tokenizer):
        full = tokenizer.apply_chat_template([{"role": "user", "content": question.strip()},
                                              {"role": "assistant", "content": answer}], tokenize=False)
        if full.startswith(prompt):  # the template's own end of turn, e.g. '56<|im_end|>'
            text = full[len(prompt):].rstrip()
            return text if text.endswith(eos) else text + eos
        return answer + eos
    return " " + answer + eos  # 'A: 56' as in ftlib.data.qa_to_text, then the end of the sequence


def prompt_ids(tokenizer, question: str, shots=()) -> list[int]:
    """The token ids of the prompt for `question`, exactly as training and generation use them."""
    # A chat template already holds its special tokens; the plain format gets the tokenizer's BOS, if any.
    add_bos = not _has_chat_template(tokenizer)
    return tokenizer(format_prompt(tokenizer, question, shots), add_special_tokens=add_bos)["input_ids"]


def encode_qa(tokenizer, question: str, answer: str, *, max_length: int) -> dict[str, list[int]]:
    """One training example: input_ids, attention_mask, and labels that are -100 on the prompt.

    The answer tokens (and the end-of-turn / end-of-sequence token after them) keep their
    ids as labels, so the model learns to answer and then to stop. An answer longer than
    the room left by `max_length` is cut; a prompt that leaves no room is an error.
    """
    prompt = prompt_ids(tokenizer, question)
    text = _answer_text(tokenizer, question, format_prompt(tokenizer, question), answer)
    answer_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    room = max_length - len(prompt)
    if room < 1:
        raise ValueError(f"the prompt of {question[:40]!r} is {len(prompt)} tokens, no room for an answer "
                         f"within max_length={max_length}: raise max_length or shorten the question")
    answer_ids = answer_ids[:room]
    return {"input_ids": prompt + answer_ids,
            "attention_mask": [1] * (len(prompt) + len(answer_ids)),
            "labels": [IGNORE_INDEX] * len(prompt) + answer_ids}


def qa_collate(examples: list[dict], pad_token_id: int, *, answer_logits_only: bool = False) -> dict[str, torch.Tensor]:
    """Pad a list of encoded examples on the right: pad id, attention 0, label -100.

    With `answer_logits_only`, the batch also asks the model for logits only where they are scored:
    ``logits_to_keep`` marks the positions whose next token is an answer token, and ``shift_labels``
    holds those next tokens. The loss is the same number; the output layer (for Gemma 3, 262 k
    words wide, most of the model's compute) runs on a few positions instead of all of them.
    """
    width = max(len(e["input_ids"]) for e in examples)
    batch = {"input_ids": [], "attention_mask": [], "labels": []}
    for e in examples:
        pad = width - len(e["input_ids"])
        batch["input_ids"].append(e["input_ids"] + [pad_token_id] * pad)
        batch["attention_mask"].append(e["attention_mask"] + [0] * pad)
        batch["labels"].append(e["labels"] + [IGNORE_INDEX] * pad)
    batch = {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}
    if answer_logits_only:
        following = batch["labels"][:, 1:]  # position t predicts token t + 1
        keep = torch.cat([following != IGNORE_INDEX, torch.zeros(len(examples), 1, dtype=torch.bool)], dim=1)
        batch["logits_to_keep"] = keep  # (B, T) booleans: logits come out flattened, one row per True
        batch["shift_labels"] = following[keep[:, :-1]]  # the token each kept position must predict
    return batch


def make_qa_loader(records, tokenizer, *, batch_size: int, shuffle: bool, seed: int = 0,
                   max_length: int = 256, encode=None, answer_logits_only: bool = False) -> torch.utils.data.DataLoader:
    """Batches of dicts (input_ids, attention_mask, labels) for ``ftlib.training.fit``.

    `records` are dicts with 'question' and 'answer'. Batches group similar lengths and
    their order depends only on (seed, epoch), as in ``ftlib.data.make_loader``.
    `encode(tokenizer, question, answer, max_length)` builds one example; the default is
    :func:`encode_qa` (lesson 09 passes the learner's own). `answer_logits_only`: see :func:`qa_collate`.
    """
    from .data import LengthGroupedBatchSampler

    if encode is None:
        encoded = [encode_qa(tokenizer, r["question"], r["answer"], max_length=max_length) for r in records]
    else:
        encoded = [encode(tokenizer, r["question"], r["answer"], max_length) for r in records]
    if not encoded:
        raise ValueError("no question-answer records to batch: pass a non-empty list of {'question', 'answer'} dicts")
    sampler = LengthGroupedBatchSampler([len(e["input_ids"]) for e in encoded], batch_size,
                                        shuffle=shuffle, seed=seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return torch.utils.data.DataLoader(encoded, batch_sampler=sampler,
                                       collate_fn=lambda examples: qa_collate(examples, pad_id,
                                                                              answer_logits_only=answer_logits_only),
                                       generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def generate_answers(model, tokenizer, questions: list[str], runtime, *, max_new_tokens: int = 48,
                     batch_size: int = 8, shots=(), first_line: bool = False) -> list[str]:
    """Greedy answers to `questions`, in order; prompts are padded on the left so that all end together.

    `shots`: (question, answer) pairs put before every question (a few-shot prompt). `first_line`:
    keep each answer up to its first line break, as a quiz answer is one line (a base model
    without fine-tuning goes on with the next "Q:" otherwise).
    """
    model.eval()
    model.to(runtime.device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [prompt_ids(tokenizer, q, shots) for q in questions]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # similar lengths together: less padding
    answers = {}
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        prompts = [encoded[i] for i in rows]
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=runtime.device)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=runtime.device)
        with runtime.autocast():
            out = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=pad_id,
                                 eos_token_id=tokenizer.eos_token_id)
        new_tokens = out[:, width:]  # (B, generated): only what the model added
        for i, text in zip(rows, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
            answers[i] = (text.strip().split("\n")[0] if first_line else text).strip()
    return [answers[i] for i in range(len(questions))]


# Punctuation is dropped except a decimal point between digits ('3.5') ; thousands commas join ('1,000' -> '1000').
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")
_DECIMAL = re.compile(r"(?<=\d)\.(?=\d)")
_ARTICLES = {"a", "an", "the"}


def normalize_answer(s: str) -> str:
    """Lower-case, Unicode NFKC, punctuation removed, English articles removed, spaces collapsed.

    Works for Korean as well (Hangul is kept; punctuation is found by its Unicode category,
    not an ASCII list). Numbers keep their decimal point and lose thousands separators.
    """
    s = unicodedata.normalize("NFKC", s).lower()
    s = _THOUSANDS.sub("", s)
    s = _DECIMAL.sub("\0", s)  # protect decimal points from the punctuation pass
    s = "".join(" " if unicodedata.category(c).startswith("P") or c in string.punctuation else c for c in s)
    words = [w for w in s.replace("\0", ".").split() if w not in _ARTICLES]
    return " ".join(words)


def exact_match(pred: str, gold: str) -> float:
    """1.0 if the normalised prediction equals the normalised answer, else 0.0."""
    return float(normalize_answer(pred) == normalize_answer(gold))


def token_f1(pred: str, gold: str) -> float:
    """F1 of the word overlap between prediction and answer (after normalisation), as in SQuAD."""
    pred_words, gold_words = normalize_answer(pred).split(), normalize_answer(gold).split()
    if not pred_words or not gold_words:
        return float(pred_words == gold_words)
    common = sum((Counter(pred_words) & Counter(gold_words)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_words), common / len(gold_words)
    return 2 * precision * recall / (precision + recall)


def qa_scores(preds: list[str], golds: list[str]) -> dict[str, float]:
    """Mean exact match and token F1, in percent (0-100)."""
    if len(preds) != len(golds) or not golds:
        raise ValueError(f"need as many predictions as answers, and at least one: got {len(preds)} and "
                         f"{len(golds)}; generate one answer per question")
    n = len(golds)
    return {"exact_match": 100 * sum(map(exact_match, preds, golds)) / n,
            "token_f1": 100 * sum(map(token_f1, preds, golds)) / n}


def qa_scores_by_language(preds: list[str], records: list[dict]) -> dict[str, dict[str, float]]:
    """:func:`qa_scores` over all records (key 'all') and per value of their 'lang' field ('en', 'ko', ...)."""
    if len(preds) != len(records):
        raise ValueError(f"need one prediction per record: got {len(preds)} and {len(records)}")
    scores = {"all": qa_scores(preds, [r["answer"] for r in records])}
    for lang in sorted({r["lang"] for r in records if r.get("lang")}):
        rows = [i for i, r in enumerate(records) if r.get("lang") == lang]
        scores[lang] = {**qa_scores([preds[i] for i in rows], [records[i]["answer"] for i in rows]),
                        "questions": len(rows)}
    scores["all"]["questions"] = len(records)
    return scores


def load_qa(source) -> list[dict]:
    """Question-answer records from a JSONL/CSV file (``question`` and ``answer`` fields), checked."""
    from .data import DataError, load_table

    table = load_table(source)
    for column in ("question", "answer"):
        if column not in table.column_names:
            raise DataError(f"{source} has no {column!r} field (it has {table.column_names}): each record needs "
                            "'question' and 'answer'")
    records = table.to_list()
    for i, r in enumerate(records):
        if not str(r["question"] or "").strip() or not str(r["answer"] or "").strip():
            raise DataError(f"{source}: record {i + 1} has an empty question or answer; fill it in or remove it")
    return records


def split_qa(records: list[dict], *, val_fraction: float = 0.15, seed: int = 0) -> tuple[list, list, list]:
    """(train, validation, test): test is the records marked split='test'; validation comes out of train.

    Validation is drawn per language x category group, so it looks like the test. Any
    training record whose normalised question is also a test question is dropped, so
    that no test question is ever trained on.
    """
    if any("split" not in r for r in records):
        raise ValueError("every record needs a 'split' field ('train' or 'test'), as in data/qa.jsonl")
    test = [r for r in records if r["split"] == "test"]
    seen = {normalize_answer(r["question"]) for r in test}
    pool = [r for r in records if r["split"] != "test" and normalize_answer(r["question"]) not in seen]
    groups = defaultdict(list)
    for r in pool:
        groups[(r.get("lang"), r.get("category"))].append(r)
    rng, train, val = random.Random(seed), [], []
    for key in sorted(groups, key=str):
        group = groups[key][:]
        rng.shuffle(group)
        k = round(len(group) * val_fraction)
        val += group[:k]
        train += group[k:]
    return train, val, test
