"""From a file on disk to batches of token ids.

Introduced in lesson 00, explored in lesson 02. Loading (CSV, TSV, JSONL or a hub
dataset), checking columns and labels, stratified splits, tokenization, and batches
with dynamic padding that group examples of similar length.
"""
from __future__ import annotations

import csv
import difflib
import io
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

import torch
from datasets import Dataset, DatasetDict
from datasets.fingerprint import Hasher
from transformers import DataCollatorWithPadding

__all__ = [
    "DataError",
    "check_classes",
    "count_truncated",
    "LengthGroupedBatchSampler",
    "label_names",
    "load_image",
    "load_table",
    "make_loader",
    "prepare_classification",
    "qa_to_text",
    "require_column",
    "stratified_split",
    "unseen_labels",
    "tokenize",
]

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")


class DataError(ValueError):
    """The data does not have the shape the task needs; the message says how to fix it."""


def _no_duplicate_keys(path: Path, number: int):
    def hook(pairs):
        keys = [k for k, _ in pairs]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise DataError(f"{path} line {number} has the field {twice[0]!r} twice: keep one of them")
        return dict(pairs)
    return hook


def _parse_json_lines(path: Path, text: str) -> list[dict]:
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):  # only \n ends a JSON line
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_no_duplicate_keys(path, number))
        except json.JSONDecodeError as err:
            raise DataError(f"{path} line {number} is not valid JSON ({err.msg}): fix or remove it") from None
        if not isinstance(row, dict):
            raise DataError(f"{path} line {number} is not a JSON object: each line must be {{\"column\": value, ...}}")
        rows.append(row)
    return rows


def _read_rows(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: tolerate a spreadsheet's BOM
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8 text (byte {err.start}): re-save it as UTF-8"
        ) from None
    if not text.strip():
        raise DataError(f"{path} is empty: it needs a header row and at least one example")
    if path.suffix == ".json" and text.lstrip().startswith("["):  # one JSON array of objects
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} is not valid JSON (line {err.lineno}: {err.msg}): fix it, or write JSON Lines") from None
        if not all(isinstance(row, dict) for row in rows):
            raise DataError(f"{path} must be a list of objects, one per example: [{{\"text\": ..., \"label\": ...}}, ...]")
        return rows
    if path.suffix in (".jsonl", ".json"):
        return _parse_json_lines(path, text)
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if path.suffix == ".tsv" else {}
    reader = csv.DictReader(io.StringIO(text, newline=""), **dialect)  # keeps line breaks inside quotes
    header = [name.strip() for name in reader.fieldnames or []]
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:  # DictReader would silently keep the last of them
        raise DataError(f"{path} has the column {twice[0]!r} more than once in its header: rename or remove "
                        "the duplicate")
    reader.fieldnames = header  # 'text ' and ' label' from a hand-edited header mean 'text' and 'label'
    rows = [row for row in reader if any((v or "").strip() for v in row.values())]
    if any(None in row for row in rows):
        raise DataError(f"{path} has a row with more fields than the header: check the delimiter and quoting")
    return rows


def load_table(source: str | Path, *, split: str = "train") -> Dataset:
    """Load a .csv, .tsv or .jsonl file, or a hub dataset by name, as a ``datasets.Dataset``."""
    path = Path(source)
    if path.suffix in TABLE_SUFFIXES:
        if not path.exists():
            raise DataError(f"{path} does not exist: check the path (relative to {Path.cwd()})")
        rows = _read_rows(path)
        if not rows:
            raise DataError(f"{path} has a header but no examples: add at least one example row")
        return Dataset.from_list(rows)
    if path.exists() and path.is_file():
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    from datasets import load_dataset  # a hub id or a local dataset folder

    return load_dataset(str(source), split=split)


def require_column(ds: Dataset, column: str, role: str) -> None:
    """A DataError naming the closest column when `column` is missing; `role` names the flag (--text-column)."""
    if column in ds.column_names:
        return
    close = difflib.get_close_matches(column, ds.column_names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise DataError(
        f"no {role} column {column!r}: {hint}the data has columns {ds.column_names}; "
        f"pass the right name (--{role}-column)"
    )


def _sorted_labels(values) -> list[str]:
    # Numbers in numeric order (0, 1, 2, ..., 10), then names in alphabetical order.
    def key(v):
        is_int = v.lstrip("-").isdigit()
        return (not is_int, int(v) if is_int else 0, v)

    return sorted(set(values), key=key)


def label_names(tables, label_column: str = "label") -> list[str]:
    """The sorted label set found across several tables (e.g. train, validation and test files)."""
    values = []
    for ds in tables:
        require_column(ds, label_column, "label")
        values += [str(v).strip() for v in ds[label_column] if v is not None and str(v).strip()]
    return _sorted_labels(values)


def prepare_classification(
    ds: Dataset, text_column: str = "text", label_column: str = "label", labels: list[str] | None = None,
    *, source=None,
) -> tuple[Dataset, list[str]]:
    """Check a classification table and return it as ``text`` + integer ``label``, with the label names.

    Labels may be strings ('positive') or integers (0, 1); spaces around them are dropped. Without
    `labels`, the label set is every distinct value, sorted; with it, any other value is an error.
    A blank text or label is an error naming its row (1 = the first example) and `source`, the file.
    """
    require_column(ds, text_column, "text")
    require_column(ds, label_column, "label")
    if len(ds) == 0:
        raise DataError("the dataset has no examples: check the file and any filtering before this step")
    raw = [str(v).strip() if v is not None else "" for v in ds[label_column]]
    texts = ds[text_column]
    where = f"{source}: " if source else ""
    for i, (text, value) in enumerate(zip(texts, raw)):
        if value == "":
            raise DataError(f"{where}example {i + 1} has an empty {label_column!r}: every example needs a label")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}example {i + 1} has an empty {text_column!r}: remove it or fill it in")
    if labels is None:
        labels = _sorted_labels(raw)
    unknown = sorted(set(raw) - set(labels))
    if unknown:
        raise DataError(
            f"{where}labels {unknown[:5]} are not in the label set {labels}: fix the data or the label list"
        )
    index = {name: i for i, name in enumerate(labels)}
    return Dataset.from_dict({"text": list(texts), "label": [index[v] for v in raw]}), list(labels)


def unseen_labels(ds: Dataset, label_column: str, known) -> list[str]:
    """The labels of `ds` (stripped) that are not in `known`, e.g. an eval label that training never had."""
    return _sorted_labels({str(v).strip() for v in ds[label_column] if v is not None and str(v).strip()} - set(known))


def count_truncated(texts, tokenizer, max_length: int) -> int:
    """How many of `texts` are longer than `max_length` tokens (special tokens included), so get cut."""
    return sum(len(ids) > max_length for ids in tokenizer(list(texts), verbose=False)["input_ids"])


def check_classes(ds: Dataset, what: str, num_labels: int) -> None:
    """Refuse a split with fewer than two classes: nothing can be learned (or measured) from it."""
    counts = Counter(ds["label"])
    if len(ds) == 0:
        raise DataError(f"the {what} set is empty: check the file, or the split sizes that produced it")
    if what == "training" and len(counts) < 2:
        raise DataError(
            f"the training set has only one class ({len(ds)} examples of label {next(iter(counts))}): "
            "a classifier needs examples of at least two classes"
        )
    if max(counts) >= num_labels:
        raise DataError(f"the {what} set has label id {max(counts)} but the model has {num_labels} labels: "
                        "load the model with the data's label list (num_labels must cover every label)")


def stratified_split(
    ds: Dataset, *, validation: float = 0.1, test: float = 0.1, seed: int = 0, label_column: str = "label"
) -> DatasetDict:
    """Split into train / validation / test with the same class proportions in each."""
    by_label = defaultdict(list)
    for i, y in enumerate(ds[label_column]):
        by_label[y].append(i)
    rng = random.Random(seed)
    parts = {"train": [], "validation": [], "test": []}
    for y in sorted(by_label):
        idx = by_label[y]
        rng.shuffle(idx)
        n_test, n_val = round(len(idx) * test), round(len(idx) * validation)
        parts["test"] += idx[:n_test]
        parts["validation"] += idx[n_test:n_test + n_val]
        parts["train"] += idx[n_test + n_val:]
    return DatasetDict({name: ds.select(sorted(idx)) for name, idx in parts.items() if idx})


def tokenize(ds: Dataset, tokenizer, *, max_length: int, text_column: str = "text") -> Dataset:
    """Token ids for every example, truncated to `max_length`, not padded (batches pad later)."""
    def encode(batch):
        enc = tokenizer(batch[text_column], truncation=True, max_length=max_length)
        if "label" in batch:
            enc["labels"] = batch["label"]
        return enc

    # Our own fingerprint: otherwise datasets hashes the whole tokenizer on every call (a second or more).
    fingerprint = Hasher.hash((ds._fingerprint, tokenizer.name_or_path, len(tokenizer), max_length, text_column))
    return ds.map(encode, batched=True, remove_columns=ds.column_names, new_fingerprint=fingerprint)


class LengthGroupedBatchSampler(torch.utils.data.Sampler):
    """Batches of indices whose order depends only on (seed, epoch).

    With `group_by_length`, examples are shuffled, cut into windows of 50 batches, and
    sorted by length inside each window, so a batch holds similar lengths and needs
    little padding; the batches are then shuffled. Because the order is a pure function
    of (seed, epoch), a resumed run can skip the batches it has already seen.
    """

    def __init__(self, lengths, batch_size: int, *, shuffle: bool = True, group_by_length: bool = True,
                 seed: int = 0, window: int = 50, num_replicas: int = 1, rank: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}: pass a positive batch size, e.g. 16")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}: pass the rank that torchrun set")
        self.lengths, self.batch_size = list(lengths), batch_size
        self.num_replicas, self.rank = num_replicas, rank
        self.shuffle, self.group_by_length = shuffle, group_by_length
        self.seed, self.window = seed, window
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's order, and skip its first `start` batches (when resuming)."""
        self.epoch, self.start = epoch, start

    def batches(self) -> list[list[int]]:
        """This process's batches: with several processes, its share of each global batch."""
        n, size = len(self.lengths), self.batch_size * self.num_replicas
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        order = torch.randperm(n, generator=g).tolist() if self.shuffle else list(range(n))
        if self.group_by_length:
            span = size * self.window if self.shuffle else n  # evaluation: one sorted pass
            order = [i for s in range(0, n, span)
                     for i in sorted(order[s:s + span], key=lambda i: -self.lengths[i])]
        batches = [order[s:s + size] for s in range(0, n, size)]
        if self.shuffle and self.group_by_length:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        if self.num_replicas > 1:
            # The same global batches as one process would use; each rank takes its slice. An
            # incomplete last batch is dropped, so that every rank takes the same number of steps.
            start = self.rank * self.batch_size
            batches = [b[start:start + self.batch_size] for b in batches if len(b) == size]
        return batches

    def __iter__(self):
        yield from self.batches()[self.start:]

    def __len__(self) -> int:
        if self.num_replicas > 1:  # only full global batches are kept
            return len(self.lengths) // (self.batch_size * self.num_replicas)
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


def make_loader(ds: Dataset, tokenizer, *, batch_size: int, shuffle: bool, seed: int = 0,
                group_by_length: bool = True, num_replicas: int = 1, rank: int = 0) -> torch.utils.data.DataLoader:
    """A DataLoader over a tokenized dataset: length-grouped batches, padded per batch.

    Under torchrun, pass ``num_replicas=dist.world_size, rank=dist.rank``: `batch_size` is
    then the batch of each process (see ftlib/distributed.py).
    """
    lengths = [len(ids) for ids in ds["input_ids"]]
    sampler = LengthGroupedBatchSampler(lengths, batch_size, shuffle=shuffle, group_by_length=group_by_length,
                                        seed=seed, num_replicas=num_replicas, rank=rank)
    collate = DataCollatorWithPadding(tokenizer, return_tensors="pt")
    # Its own generator: otherwise each new iterator draws a seed from the global RNG,
    # and a resumed run would get different dropout masks from an uninterrupted one.
    return torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate,
                                       generator=torch.Generator().manual_seed(seed))


def load_image(path: str | Path):
    """An image file as an RGB ``PIL.Image``, or a DataError that names the file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist: check the path (relative to {Path.cwd()})")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path} is not an image that can be opened ({type(err).__name__}): "
                        "remove it, or re-save it as PNG or JPEG") from None


def qa_to_text(record: dict) -> str:
    """A question-answer record as training text, in the course's plain format."""
    return f"Q: {record['question'].strip()}\nA: {record['answer'].strip()}"


def write_table(path: str | Path, rows: list[dict], columns: list[str]) -> Path:
    """Write `rows` as .csv, .tsv, .jsonl or .json (by the suffix), atomically, with the umask's permissions."""
    from .files import write_text_atomic

    path = Path(path)
    if path.suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: cannot write {path.suffix!r} files; end the name with one of "
                        f"{', '.join(TABLE_SUFFIXES)}")
    if path.suffix == ".jsonl":
        text = "".join(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False) + "\n" for row in rows)
    elif path.suffix == ".json":
        text = json.dumps([{c: row.get(c) for c in columns} for row in rows], ensure_ascii=False, indent=1)
    else:
        buffer = io.StringIO()
        dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE, "quotechar": None} if path.suffix == ".tsv" else {}
        writer = csv.writer(buffer, lineterminator="\n", **dialect)
        try:
            writer.writerow(columns)
            writer.writerows([["" if row.get(c) is None else row.get(c) for c in columns] for row in rows])
        except csv.Error:  # a tab or a line break inside a cell: TSV has no quoting to hold it
            raise DataError(f"{path}: a cell holds a tab or a line break, which TSV cannot hold: write .csv "
                            "or .jsonl instead") from None
        text = buffer.getvalue()
    return write_text_atomic(path, text)
