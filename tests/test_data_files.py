"""Files as people make them: CRLF line endings, a BOM, spaces around labels, and what the command line
says about labels without training examples and texts longer than --max-length."""
import json

import pytest

from ftlib import cli
from ftlib.data import label_names, load_table, prepare_classification, write_table

ROWS = [("good film", "positive"), ("bad film", "negative"), ("lovely day", "positive"), ("awful day", "negative")]


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t")])
def test_crlf_bom_and_spaced_labels_read_as_plain_ones(tmp_path, suffix, sep):
    path = tmp_path / f"win{suffix}"
    text = f"text{sep}label\r\n" + "".join(f"{t}{sep} {y} \r\n" for t, y in ROWS)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # the BOM a spreadsheet writes
    table = load_table(path)
    assert table.column_names == ["text", "label"]
    assert table["text"] == [t for t, _ in ROWS]  # no '\r' left on the last column
    ds, labels = prepare_classification(table)
    assert labels == ["negative", "positive"] and ds["label"] == [1, 0, 1, 0]
    assert label_names([table]) == ["negative", "positive"]


def test_crlf_jsonl(tmp_path):
    path = tmp_path / "win.jsonl"
    path.write_bytes("".join(json.dumps({"text": t, "label": y}) + "\r\n" for t, y in ROWS).encode())
    assert load_table(path)["label"] == [y for _, y in ROWS]


def test_spaces_around_header_names(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("text , label\n" + "".join(f"{t},{y}\n" for t, y in ROWS))
    assert load_table(path).column_names == ["text", "label"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_write_table_round_trips(tmp_path, suffix):
    rows = [{"text": 'she said "fine", then left', "label": "positive"}, {"text": "ok", "label": "negative"}]
    path = write_table(tmp_path / f"o{suffix}", rows, ["text", "label"])
    assert load_table(path).to_list() == rows


def test_declared_label_without_examples_warns_and_long_texts_are_counted(tmp_path, capsys):
    # --labels declares a class on purpose: a warning, not an error; --max-length 6 truncates some texts.
    rows = ROWS * 3 + [("a long review that goes on and on about the film and the day", "positive")]
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    evalset = tmp_path / "eval.csv"
    evalset.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in ROWS + [("so-so", "neutral")]))
    out = tmp_path / "run"
    code = cli.main(["finetune", "--task", "text-classification", "--train", str(train), "--eval", str(evalset),
                     "--labels", "negative, neutral ,positive", "--profile", "smoke", "--epochs", "1",
                     "--max-length", "6", "--method", "head", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "warning: class 'neutral' has no training examples" in captured.err
    assert "texts are longer than --max-length 6 tokens and were truncated" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labels"] == ["negative", "neutral", "positive"]
    assert metrics["truncated"]["train"] == 1 and metrics["truncated"]["eval"] == 0


def test_preference_pairs_match_the_qa_records():
    """data/preferences.jsonl: one pair per qa.jsonl record, same id/lang/category/split, chosen = gold, rejected differs."""
    import json

    from ftlib import catalog
    from ftlib.preference import load_preferences
    from ftlib.qa import normalize_answer

    qa = {r["id"]: r for r in map(json.loads, catalog.data_path("qa.jsonl").read_text(encoding="utf-8").splitlines())}
    pairs = load_preferences(catalog.data_path("preferences.jsonl"))
    assert sorted(p["id"] for p in pairs) == sorted(qa)
    for p in pairs:
        q = qa[p["id"]]
        assert (p["lang"], p["category"], p["split"], p["prompt"], p["chosen"]) == (
            q["lang"], q["category"], q["split"], q["question"], q["answer"]), p["id"]
        assert p["rejected_kind"] in ("wrong", "rambling"), p["id"]
        if p["rejected_kind"] == "wrong":
            assert normalize_answer(p["rejected"]) != normalize_answer(p["chosen"]), p["id"]
            assert len(p["rejected"].split()) <= 5, p["id"]
        else:
            assert len(p["rejected"]) > 3 * len(p["chosen"]) and len(p["rejected"]) > 40, p["id"]
        if p["lang"] == "ko":
            assert any("\uac00" <= ch <= "\ud7a3" for ch in p["rejected"] + p["prompt"]), p["id"]
    for split in ("train", "test"):
        kinds = [p["rejected_kind"] for p in pairs if p["split"] == split]
        assert 0.35 <= kinds.count("wrong") / len(kinds) <= 0.65  # both kinds in both splits
    rambling = [p["rejected"] for p in pairs if p["rejected_kind"] == "rambling"]
    assert len(set(rambling)) == len(rambling)  # each long answer written for its own question
    assert len({r.split()[0] for r in rambling}) > len(rambling) / 2  # no fixed opening gives the kind away
