"""ftlib.data: files to batches, with errors that say what to fix."""
import csv
import json
import os

import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer

from ftlib import catalog, models
from ftlib.data import (
    DataError,
    LengthGroupedBatchSampler,
    check_classes,
    load_table,
    make_loader,
    prepare_classification,
    qa_to_text,
    stratified_split,
    tokenize,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROWS = [
    {"text": '"Best" pizza in town, she said "wow"', "label": "positive"},
    {"text": "Cold fries; rude staff", "label": "negative"},
    {"text": "It's fine, I guess", "label": "neutral"},
]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(models.resolve(catalog.MINILM))


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_tsv(path, rows):  # raw, as a spreadsheet exports it: quotes are plain characters
    lines = ["\t".join(rows[0])] + ["\t".join(r.values()) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- load_table -----------------------------------------------------------------------------

@pytest.mark.parametrize("writer, suffix", [(write_csv, ".csv"), (write_tsv, ".tsv"), (write_jsonl, ".jsonl")])
def test_load_table_reads_the_same_rows_from_each_format(tmp_path, writer, suffix):
    ds = load_table(writer(tmp_path / f"reviews{suffix}", ROWS))
    assert ds.column_names == ["text", "label"]
    assert ds.to_list() == ROWS


def test_tsv_keeps_quotes_inside_text(tmp_path):
    ds = load_table(write_tsv(tmp_path / "q.tsv", ROWS))
    assert ds[0]["text"] == '"Best" pizza in town, she said "wow"'  # QUOTE_NONE: nothing stripped


def test_csv_with_a_spreadsheet_bom(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("text,label\nok,positive\n".encode("utf-8-sig"))
    assert load_table(path).column_names == ["text", "label"]


def test_blank_rows_are_skipped(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("text,label\nok,positive\n,\n\nbad,negative\n", encoding="utf-8")
    assert load_table(path)["text"] == ["ok", "bad"]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_csv_quoted_field_keeps_its_line_break(tmp_path, newline):
    # A review written in paragraphs: a spreadsheet quotes the field and keeps the line break.
    rows = [{"text": f"Great food.{newline}Slow service.", "label": "positive"}, {"text": "ok", "label": "negative"}]
    ds = load_table(write_csv(tmp_path / "paragraphs.csv", rows))
    assert len(ds) == 2
    assert ds[0]["text"].splitlines() == ["Great food.", "Slow service."]  # not "Great food.Slow service."


@pytest.mark.parametrize("char", ["\x0c", "\u2028"])
def test_rare_line_separators_inside_text_are_not_row_breaks(tmp_path, char):
    # Only \n (and \r\n) end a row. Form feeds and Unicode line separators occur in scraped
    # text; json.dumps(..., ensure_ascii=False) writes U+2028 raw, and it is valid JSON.
    rows = [{"text": f"page one{char}page two", "label": "positive"}, {"text": "ok", "label": "negative"}]
    path = tmp_path / "odd.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert load_table(path).to_list() == rows
    assert load_table(write_csv(tmp_path / "odd.csv", rows)).to_list() == rows


def test_json_array_file(tmp_path):
    # '.json' is accepted and advertised ("use one of .csv, .tsv, .jsonl, .json"), but a plain
    # JSON file as json.dump writes it, a list of objects, must load too (or be refused with
    # a message that says to use JSON Lines, not "line 1 ... fix or remove it").
    path = tmp_path / "reviews.json"
    path.write_text(json.dumps(ROWS, indent=2), encoding="utf-8")
    assert load_table(path).to_list() == ROWS


def test_course_data_loads():
    ds = load_table(catalog.data_path("reviews.csv"))
    assert {"text", "label", "split"} <= set(ds.column_names)
    assert set(ds["label"]) == {"negative", "positive"}


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv does not exist: check the path"):
        load_table(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.csv is empty: it needs a header row and at least one example"):
        load_table(tmp_path / "empty.csv")


def test_header_only_file(tmp_path):
    (tmp_path / "header.csv").write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataError, match="has a header but no examples"):
        load_table(tmp_path / "header.csv")


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "label": "positive"}\n\n{"text": "no", "label": }\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl line 3 is not valid JSON \(.*\): fix or remove it"):
        load_table(path)


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"text": "ok", "label": "positive"}\n["no", "positive"]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2 is not a JSON object: each line must be"):
        load_table(path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncafé,positive\n".encode("latin-1"))
    # "text,label\ncaf" is 14 bytes: the é (0xe9) is byte 14
    with pytest.raises(DataError, match=r"is not UTF-8 text \(byte 14\): re-save it as UTF-8"):
        load_table(path)


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "reviews.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'; use one of \.csv, \.tsv, \.jsonl"):
        load_table(path)


def test_csv_row_with_too_many_fields(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("text,label\ngood food,positive\nfine, really,positive\n", encoding="utf-8")
    with pytest.raises(DataError, match="more fields than the header: check the delimiter and quoting"):
        load_table(path)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


# --- prepare_classification -----------------------------------------------------------------

def test_string_labels_map_to_sorted_ids():
    ds = Dataset.from_dict({"text": ["a", "b", "c", "d"], "label": ["pos", "neg", "neutral", "neg"]})
    out, labels = prepare_classification(ds)
    assert labels == ["neg", "neutral", "pos"]
    assert out["label"] == [2, 0, 1, 0]
    assert out["text"] == ["a", "b", "c", "d"]
    assert out.column_names == ["text", "label"]


def test_integer_labels_sort_numerically():
    values = [str(i) for i in (11, 2, 0, 10, 1, 3, 4, 5, 6, 7, 8, 9)]
    ds = Dataset.from_dict({"text": [f"t{v}" for v in values], "label": values})
    out, labels = prepare_classification(ds)
    assert labels == [str(i) for i in range(12)]  # not 0, 1, 10, 11, 2, ...
    assert out["label"] == [int(v) for v in values]


def test_integer_typed_labels():
    ds = Dataset.from_dict({"text": ["a", "b", "c"], "label": [1, 0, 1]})
    out, labels = prepare_classification(ds)
    assert labels == ["0", "1"]
    assert out["label"] == [1, 0, 1]


def test_other_column_names():
    ds = Dataset.from_dict({"review": ["a", "b"], "stars": ["5", "1"]})
    out, labels = prepare_classification(ds, text_column="review", label_column="stars")
    assert labels == ["1", "5"]
    assert out.to_dict() == {"text": ["a", "b"], "label": [1, 0]}


def test_given_label_set_fixes_the_order():
    ds = Dataset.from_dict({"text": ["a", "b"], "label": ["negative", "positive"]})
    out, labels = prepare_classification(ds, labels=["positive", "negative"])
    assert labels == ["positive", "negative"]
    assert out["label"] == [1, 0]


def test_misspelt_label_column_suggests_the_close_match():
    ds = Dataset.from_dict({"text": ["a"], "label": ["x"]})
    with pytest.raises(DataError, match=r"no label column 'lable': did you mean 'label'\? .*--label-column"):
        prepare_classification(ds, label_column="lable")


def test_misspelt_text_column_suggests_the_close_match():
    ds = Dataset.from_dict({"review_text": ["a"], "label": ["x"]})
    with pytest.raises(DataError, match=r"no text column 'reviewtext': did you mean 'review_text'\?"):
        prepare_classification(ds, text_column="reviewtext")


def test_wrong_column_without_a_close_match_lists_the_columns():
    ds = Dataset.from_dict({"text": ["a"], "label": ["x"]})
    with pytest.raises(DataError, match=r"no label column 'sentiment': the data has columns \['text', 'label'\]"):
        prepare_classification(ds, label_column="sentiment")


def test_labels_outside_the_label_set():
    ds = Dataset.from_dict({"text": ["a", "b", "c"], "label": ["positive", "neutral", "negative"]})
    with pytest.raises(DataError, match=r"labels \['neutral'\] are not in the label set .*fix the data or the label list"):
        prepare_classification(ds, labels=["negative", "positive"])


@pytest.mark.parametrize("empty", ["", "   ", None])
def test_empty_label(empty):
    ds = Dataset.from_dict({"text": ["a", "b"], "label": ["positive", empty]})
    with pytest.raises(DataError, match=r"example 2 has an empty 'label': every example needs a label"):
        prepare_classification(ds)


@pytest.mark.parametrize("empty", ["", "  \n", None])
def test_empty_text(empty):
    ds = Dataset.from_dict({"text": [empty, "b"], "label": ["positive", "negative"]})
    with pytest.raises(DataError, match=r"example 1 has an empty 'text': remove it or fill it in"):
        prepare_classification(ds)


def test_no_examples():
    ds = Dataset.from_dict({"text": [], "label": []})
    with pytest.raises(DataError, match="no examples"):
        prepare_classification(ds)


# --- check_classes --------------------------------------------------------------------------

def test_check_classes_refuses_a_one_class_training_set():
    ds = Dataset.from_dict({"text": ["a", "b", "c"], "label": [1, 1, 1]})
    with pytest.raises(DataError, match=r"only one class \(3 examples of label 1\).*at least two classes"):
        check_classes(ds, "training", 2)


def test_check_classes_refuses_an_empty_set():
    ds = Dataset.from_dict({"text": [], "label": []})
    with pytest.raises(DataError, match="the validation set is empty"):
        check_classes(ds, "validation", 2)
    with pytest.raises(DataError, match="the training set is empty"):
        check_classes(ds, "training", 2)


def test_check_classes_refuses_a_label_id_beyond_the_model():
    ds = Dataset.from_dict({"text": ["a", "b"], "label": [0, 2]})
    with pytest.raises(DataError, match="label id 2 but the model has 2 labels"):
        check_classes(ds, "training", 2)


def test_check_classes_accepts_good_sets():
    check_classes(Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}), "training", 2)
    check_classes(Dataset.from_dict({"text": ["a"], "label": [1]}), "test", 2)  # one class is fine to measure on


# --- stratified_split -----------------------------------------------------------------------

@pytest.fixture
def unbalanced():
    labels = [0] * 60 + [1] * 30 + [2] * 10
    order = torch.randperm(100, generator=torch.Generator().manual_seed(0)).tolist()
    labels = [labels[i] for i in order]
    return Dataset.from_dict({"id": list(range(100)), "text": [f"t{i}" for i in range(100)], "label": labels})


def test_stratified_split_keeps_class_proportions(unbalanced):
    parts = stratified_split(unbalanced, validation=0.1, test=0.2, seed=0)
    assert set(parts) == {"train", "validation", "test"}
    assert (len(parts["train"]), len(parts["validation"]), len(parts["test"])) == (70, 10, 20)
    share = {0: 0.6, 1: 0.3, 2: 0.1}
    for name, part in parts.items():
        for y, p in share.items():
            assert abs(part["label"].count(y) - p * len(part)) <= 1, (name, y)


def test_stratified_split_is_disjoint_and_complete(unbalanced):
    parts = stratified_split(unbalanced, seed=1)
    ids = [set(part["id"]) for part in parts.values()]
    assert sum(len(s) for s in ids) == 100
    assert set().union(*ids) == set(range(100))
    for part in parts.values():  # rows keep their text and label
        for row in part:
            assert row["text"] == f"t{row['id']}" and row["label"] == unbalanced[row["id"]]["label"]


def test_stratified_split_is_deterministic_for_a_seed(unbalanced):
    a = stratified_split(unbalanced, seed=3)
    b = stratified_split(unbalanced, seed=3)
    c = stratified_split(unbalanced, seed=4)
    assert a["test"]["id"] == b["test"]["id"] and a["validation"]["id"] == b["validation"]["id"]
    assert a["test"]["id"] != c["test"]["id"]


def test_stratified_split_without_test():
    ds = Dataset.from_dict({"text": list("abcdefghij"), "label": [0, 1] * 5})
    parts = stratified_split(ds, validation=0.2, test=0.0)
    assert set(parts) == {"train", "validation"}
    assert sorted(parts["validation"]["label"]) == [0, 1]


# --- tokenize and make_loader ---------------------------------------------------------------

TEXTS = ["good", "a fine film with a great cast", "bad", "the food was not good at all, sadly",
         "ok", "great", "slow service but the desserts were lovely", "meh"]


def test_tokenize_truncates_and_keeps_labels(tokenizer):
    ds = Dataset.from_dict({"text": TEXTS + ["word " * 100], "label": [1, 1, 0, 0, 1, 1, 1, 0, 0]})
    tok = tokenize(ds, tokenizer, max_length=16)
    assert set(tok.column_names) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert tok["labels"] == [1, 1, 0, 0, 1, 1, 1, 0, 0]
    lengths = [len(ids) for ids in tok["input_ids"]]
    assert lengths[0] == 3  # [CLS] good [SEP]: not padded
    assert lengths[-1] == 16  # truncated
    assert tok["input_ids"][0] == tokenizer("good")["input_ids"]


def test_tokenize_without_labels(tokenizer):
    tok = tokenize(Dataset.from_dict({"text": ["good"]}), tokenizer, max_length=8)
    assert "labels" not in tok.column_names


@pytest.mark.parametrize("shuffle", [False, True])
def test_loader_pads_each_batch_to_its_longest_example(tokenizer, shuffle):
    labels = [i % 2 for i in range(len(TEXTS))]
    tok = tokenize(Dataset.from_dict({"text": TEXTS, "label": labels}), tokenizer, max_length=32)
    lengths = [len(ids) for ids in tok["input_ids"]]
    loader = make_loader(tok, tokenizer, batch_size=3, shuffle=shuffle, seed=0)
    batches = loader.batch_sampler.batches()
    seen = []
    for batch, idx in zip(loader, batches):
        assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
        assert batch["input_ids"].shape == (len(idx), max(lengths[i] for i in idx))
        assert batch["attention_mask"].sum(1).tolist() == [lengths[i] for i in idx]
        assert batch["labels"].tolist() == [labels[i] for i in idx]
        seen += idx
    assert sorted(seen) == list(range(len(TEXTS)))
    widths = [max(lengths[i] for i in idx) for idx in batches]
    assert min(widths) < max(lengths)  # some batch is narrower than the longest example overall


def test_loader_without_shuffle_is_sorted_longest_first(tokenizer):
    tok = tokenize(Dataset.from_dict({"text": TEXTS, "label": [0] * len(TEXTS)}), tokenizer, max_length=32)
    lengths = [len(ids) for ids in tok["input_ids"]]
    loader = make_loader(tok, tokenizer, batch_size=4, shuffle=False)
    order = [i for idx in loader.batch_sampler.batches() for i in idx]
    assert [lengths[i] for i in order] == sorted(lengths, reverse=True)


# --- LengthGroupedBatchSampler --------------------------------------------------------------

def varied_lengths(n=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, 200, (n,), generator=g).tolist()


def real_token_fraction(batches, lengths):
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    return real / padded


def test_sampler_same_seed_and_epoch_same_batches():
    lengths = varied_lengths(200)
    a = LengthGroupedBatchSampler(lengths, 8, seed=5)
    b = LengthGroupedBatchSampler(lengths, 8, seed=5)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    assert list(a) == list(a)  # iterating twice does not change the order


def test_sampler_other_epoch_or_seed_other_order():
    lengths = varied_lengths(200)
    s = LengthGroupedBatchSampler(lengths, 8, seed=5)
    epoch0 = list(s)
    s.set_epoch(1)
    assert list(s) != epoch0
    assert list(LengthGroupedBatchSampler(lengths, 8, seed=6)) != epoch0


def test_sampler_resumes_after_the_first_k_batches():
    lengths = varied_lengths(100)
    s = LengthGroupedBatchSampler(lengths, 8, seed=1)
    s.set_epoch(3)
    full = list(s)
    s.set_epoch(3, start=5)
    assert list(s) == full[5:]
    s.set_epoch(3)  # a new epoch starts at the beginning again
    assert list(s) == full


@pytest.mark.parametrize("shuffle, group", [(True, True), (True, False), (False, True), (False, False)])
def test_sampler_yields_every_index_once(shuffle, group):
    lengths = varied_lengths(101)
    s = LengthGroupedBatchSampler(lengths, 8, shuffle=shuffle, group_by_length=group, seed=2)
    batches = list(s)
    assert len(batches) == len(s) == 13  # ceil(101 / 8)
    assert sorted(i for b in batches for i in b) == list(range(101))
    assert sorted(len(b) for b in batches) == [5] + [8] * 12


def test_sampler_without_shuffle_or_grouping_is_sequential():
    s = LengthGroupedBatchSampler([3, 1, 2, 5, 4], 2, shuffle=False, group_by_length=False)
    assert list(s) == [[0, 1], [2, 3], [4]]


def test_length_grouping_needs_less_padding():
    lengths = varied_lengths(1000)
    grouped = LengthGroupedBatchSampler(lengths, 16, shuffle=True, group_by_length=True, seed=0).batches()
    plain = LengthGroupedBatchSampler(lengths, 16, shuffle=True, group_by_length=False, seed=0).batches()
    g, p = real_token_fraction(grouped, lengths), real_token_fraction(plain, lengths)
    assert g > 0.9
    assert p < 0.7
    assert g - p > 0.25


def test_sampler_refuses_a_zero_batch_size():
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        LengthGroupedBatchSampler([1, 2], 0)


# --- qa_to_text -----------------------------------------------------------------------------

def test_qa_to_text_format():
    assert qa_to_text({"question": "  What is 2+2? ", "answer": " 4\n", "id": "x"}) == "Q: What is 2+2?\nA: 4"


def test_qa_to_text_on_the_course_data():
    first = load_table(catalog.data_path("qa.jsonl"))[0]
    assert qa_to_text(first) == "Q: What is 7 times 8?\nA: 56"


def test_a_dataset_folder_loads_through_the_hub_code_path(tmp_path):
    # A hub id and a local dataset folder go through the same datasets.load_dataset call.
    folder = tmp_path / "my_reviews"
    folder.mkdir()
    (folder / "train.csv").write_text("text,label\ngreat,positive\nawful,negative\n")
    (folder / "test.csv").write_text("text,label\nfine,positive\n")
    train = load_table(folder, split="train")
    assert train["text"] == ["great", "awful"]
    assert load_table(folder, split="test")["label"] == ["positive"]
