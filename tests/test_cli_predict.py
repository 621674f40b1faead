"""Using what was trained: predict and evaluate for every method's output, peft and pipeline formats."""
import csv
import json
import os

import pytest
import torch

from ftlib import catalog, cli
from ftlib.inference import classify_texts, load_for_inference

POS = ["a lovely little film", "great food and kind staff", "the battery lasts for days", "not bad at all",
       "worth every penny", "I would watch it again tomorrow"]
NEG = ["a dull and joyless film", "cold food and rude staff", "the battery died in a week", "not good at all",
       "a waste of money", "I walked out after twenty minutes"]
ROWS = [(t, "positive") for t in POS] + [(t, "negative") for t in NEG]


def write_csv(path, rows, header="text,label"):
    path.write_text(header + "\n" + "".join(f'"{t}",{y}\n' for t, y in rows))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    (folder / "new.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, (t, _) in enumerate(ROWS)))
    return {"train": write_csv(folder / "train.csv", ROWS * 2), "eval": write_csv(folder / "eval.csv", ROWS),
            "new": folder / "new.jsonl", "tmp": folder}


_RUNS = {}


def trained(data, method, *extra):
    """A smoke fine-tune with `method`, trained once per module."""
    if method not in _RUNS:
        out = data["tmp"] / method.replace(":", "_")
        old = os.umask(0o022)
        try:
            code = cli.main(["finetune", "--task", "text-classification", "--train", str(data["train"]), "--eval",
                             str(data["eval"]), "--profile", "smoke", "--epochs", "1", "--method", method,
                             "--lora-r", "4", "--adapter-size", "8", "--quiet", "--out", str(out), *extra])
        finally:
            os.umask(old)
        assert code == 0
        _RUNS[method] = out
    return _RUNS[method]


METHODS = ["full", "head", "freeze:1", "adapter", "lora"]


@pytest.mark.parametrize("method", METHODS)
def test_evaluate_reproduces_the_fine_tunes_own_score(data, method, capsys):
    # The model predict/evaluate load is the one that trained: the same eval accuracy, for every method.
    run = trained(data, method, *(["--merge"] if method == "lora" else []))
    capsys.readouterr()
    assert cli.main(["evaluate", "--model", str(run), "--input", str(data["eval"]), "--quiet"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((run / "evaluation-eval.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["eval"]["accuracy"])
    assert report["f1_macro"] == pytest.approx(metrics["eval"]["f1_macro"])
    assert set(report["per_class"]) == {"negative", "positive"}
    assert {"precision", "recall", "f1", "support"} <= set(report["per_class"]["positive"])
    assert sum(map(sum, report["confusion_matrix"]["counts"])) == len(ROWS)
    assert "confusion matrix" in printed and "precision" in printed


@pytest.mark.parametrize("method", ["full", "adapter", "lora"])
def test_predict_writes_the_input_format_with_labels_and_probabilities(data, method):
    run = trained(data, method)
    out = data["tmp"] / f"pred-{method}.jsonl"
    assert cli.main(["predict", "--model", str(run), "--input", str(data["new"]), "--out", str(out), "--quiet"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == list(range(len(ROWS)))  # the input's rows, in order, columns kept
    for r in rows:
        assert r["predicted_label"] in ("negative", "positive")
        assert r["prob_negative"] + r["prob_positive"] == pytest.approx(1, abs=1e-5)
        assert r["probability"] == max(r["prob_negative"], r["prob_positive"])
    model, tokenizer, task, _ = load_for_inference(run)
    probs, truncated = classify_texts(model, tokenizer, [t for t, _ in ROWS], batch_size=5)
    assert task == "text-classification" and truncated == 0
    assert [r["prob_positive"] for r in rows] == pytest.approx(probs[:, 1].tolist(), abs=1e-5)


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_predict_keeps_csv_and_tsv(data, suffix):
    run = trained(data, "full")
    source = data["tmp"] / f"in{suffix}"
    sep = "," if suffix == ".csv" else "\t"
    source.write_text(f"id{sep}text\n" + "".join(f"{i}{sep}{t}\n" for i, (t, _) in enumerate(ROWS)))
    out = data["tmp"] / f"out{suffix}"
    assert cli.main(["predict", "--model", str(run), "--input", str(source), "--out", str(out), "--quiet"]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f, delimiter=sep))
    assert list(rows[0]) == ["id", "text", "predicted_label", "probability", "prob_negative", "prob_positive"]
    assert [r["text"] for r in rows] == [t for t, _ in ROWS]


def test_a_lora_run_is_a_peft_adapter_with_the_same_logits(data):
    from peft import PeftModel

    from ftlib.models import load_text_classifier

    run = trained(data, "lora", "--merge")
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {f.name for f in (run / "model").iterdir()}
    config = json.loads((run / "model" / "adapter_config.json").read_text())
    assert "classifier" in config["modules_to_save"] and config["r"] == 4
    base, tokenizer = load_text_classifier(catalog.MINILM, ["negative", "positive"])
    peft_model = PeftModel.from_pretrained(base, run / "model").eval()
    ours, _, _, _ = load_for_inference(run)
    batch = tokenizer([t for t, _ in ROWS], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(peft_model(**batch).logits, ours.eval()(**batch).logits, rtol=0, atol=1e-6)


def test_merged_lora_loads_in_a_pipeline(data):
    from transformers import pipeline

    run = trained(data, "lora", "--merge")
    model, tokenizer, _, _ = load_for_inference(run)
    probs, _ = classify_texts(model, tokenizer, POS[:3])
    classify = pipeline("text-classification", model=str(run / "merged"), device="cpu")
    scores = [{d["label"]: d["score"] for d in row} for row in classify(POS[:3], top_k=None)]
    assert [s["positive"] for s in scores] == pytest.approx(probs[:, 1].tolist(), abs=1e-5)
    assert (run / "merged" / "model.safetensors").stat().st_mode & 0o777 == 0o644


def test_export_merges_a_lora_run_and_refuses_adapters(data, capsys):
    from transformers import AutoModelForSequenceClassification

    out = data["tmp"] / "exported"
    assert cli.main(["export", "--model", str(trained(data, "lora")), "--out", str(out)]) == 0
    assert AutoModelForSequenceClassification.from_pretrained(out).config.id2label == {0: "negative", 1: "positive"}
    capsys.readouterr()
    assert cli.main(["export", "--model", str(trained(data, "adapter")), "--out", str(data["tmp"] / "no")]) == 2
    assert "cannot be merged" in capsys.readouterr().err


def test_run_files_are_shared_with_the_umask(data):
    run = trained(data, "lora")
    for path in [run / "metrics.json", *(run / "model").iterdir(), *(run / "checkpoints" / "best").iterdir()]:
        assert path.stat().st_mode & 0o777 == 0o644, path
    assert (run / "model").stat().st_mode & 0o777 == 0o755


def test_metrics_say_which_epoch_was_kept_and_on_which_set(data, capsys):
    run = trained(data, "head")
    selection = json.loads((run / "metrics.json").read_text())["selection"]
    assert selection["chosen_on"] == "eval" and selection["best_epoch"] == 1
    assert selection["monitor"] == "eval_accuracy" and "--test" in selection["note"]
    assert "optimistic" in selection["note"]


def _error(capsys, argv):
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    return err


def test_evaluate_refuses_labels_the_model_does_not_know(data, capsys):
    odd = write_csv(data["tmp"] / "odd.csv", ROWS + [("so-so", "neutral")])
    err = _error(capsys, ["evaluate", "--model", str(trained(data, "full")), "--input", str(odd)])
    assert "'neutral'" in err and "does not know" in err


@pytest.mark.parametrize("content,words", [("txt\nhello\n", "did you mean 'txt'"), ("id,text\n1,fine\n2, \n", "row 2"),
                                           ("", "is empty")])
def test_predict_bad_input_is_one_line(data, capsys, content, words):
    source = data["tmp"] / "bad.csv"
    source.write_text(content)
    out = data["tmp"] / "never.csv"
    err = _error(capsys, ["predict", "--model", str(trained(data, "full")), "--input", str(source), "--out", str(out)])
    assert words in err and not out.exists()


def test_predict_needs_a_saved_model(data, capsys):
    assert "holds no saved model" in _error(capsys, ["predict", "--model", str(data["tmp"]), "--input",
                                                     str(data["new"]), "--out", str(data["tmp"] / "x.csv")])


def test_predict_refuses_a_zero_batch(data, capsys):
    err = _error(capsys, ["predict", "--model", str(trained(data, "full")), "--input", str(data["new"]),
                          "--out", str(data["tmp"] / "x.jsonl"), "--batch-size", "0"])
    assert "--batch-size must be at least 1" in err
