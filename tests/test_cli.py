"""The command line: a real (smoke-profile) fine-tune, and bad input ending in one clear line."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ftlib import catalog, cli

POS = ["a lovely little film", "great food and kind staff", "the battery lasts for days", "not bad at all",
       "worth every penny", "I would watch it again tomorrow"]
NEG = ["a dull and joyless film", "cold food and rude staff", "the battery died in a week", "not good at all",
       "a waste of money", "I walked out after twenty minutes"]


def write_csv(path: Path, rows, header="text,label"):
    path.write_text(header + "\n" + "".join(f'"{t}",{y}\n' for t, y in rows))
    return path


@pytest.fixture
def files(tmp_path):
    rows = [(t, "positive") for t in POS] + [(t, "negative") for t in NEG]
    return {"train": write_csv(tmp_path / "train.csv", rows * 2), "eval": write_csv(tmp_path / "eval.csv", rows),
            "tmp": tmp_path}


def run(*args):
    return subprocess.run([sys.executable, "-m", "ftlib", *map(str, args)], capture_output=True, text=True,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"})


def test_finetune_writes_metrics_and_a_loadable_model(files):
    out = files["tmp"] / "run"
    proc = run("finetune", "--task", "text-classification", "--train", files["train"], "--eval", files["eval"],
               "--test", files["eval"], "--text-column", "text", "--label-column", "label", "--profile", "smoke",
               "--epochs", "2", "--batch-size", "8", "--quiet", "--out", out)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "f1_macro"} <= set(metrics["eval"]) and {"accuracy", "f1_macro"} <= set(metrics["test"])
    assert metrics["epochs_run"] == 2 and metrics["profile"] == "smoke"
    assert metrics["trainable_params"] == metrics["total_params"] > 22_000_000
    assert metrics["model"] == catalog.MINILM.name and metrics["labels"] == ["negative", "positive"]
    assert metrics["train_seconds"] > 0
    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(out / "model")
    assert model.config.id2label == {0: "negative", 1: "positive"}


def _error_line(proc):
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def base_args(files, **change):
    args = {"--task": "text-classification", "--train": files["train"], "--eval": files["eval"],
            "--text-column": "text", "--label-column": "label", "--profile": "smoke", "--out": files["tmp"] / "out"}
    args.update(change)
    return [x for k, v in args.items() for x in (k, v)]


def test_missing_column(files):
    line = _error_line(run("finetune", *base_args(files, **{"--text-column": "txt"})))
    assert "'txt'" in line and "did you mean 'text'" in line
    assert not (files["tmp"] / "out").exists()  # nothing written


def test_labels_outside_the_label_set(files):
    line = _error_line(run("finetune", *base_args(files), "--labels", "negative,neutral"))
    assert "not in the label set" in line and "positive" in line


def test_empty_file(files):
    (files["tmp"] / "empty.csv").write_text("")
    line = _error_line(run("finetune", *base_args(files, **{"--train": files["tmp"] / "empty.csv"})))
    assert "empty" in line


def test_one_class_training_set(files):
    one = write_csv(files["tmp"] / "one.csv", [(t, "positive") for t in POS])
    line = _error_line(run("finetune", *base_args(files, **{"--train": one})))
    assert "only one class" in line


def test_missing_file(files):
    line = _error_line(run("finetune", *base_args(files, **{"--train": files["tmp"] / "nope.csv"})))
    assert "does not exist" in line


def test_tampered_weights(files, tmp_path, monkeypatch, capsys):
    from ftlib import models
    folder = tmp_path / "pkg" / "model"
    shutil.copytree(Path(models.resolve(catalog.MINILM)), folder)
    blob = bytearray((folder / "model.safetensors").read_bytes())
    blob[-100] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(blob))
    monkeypatch.setattr(models, "_package_dir", lambda package: tmp_path / "pkg")
    code = cli.main(["finetune", *map(str, base_args(files))])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and "sha256" in err and "reinstall" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("flag,value,words", [("--lr", "0", "lr must be a positive"), ("--lr", "-0.1", "lr must be"),
                                              ("--batch-size", "0", "batch-size"), ("--max-train", "0", "max-train")])
def test_bad_numbers(files, flag, value, words):
    assert words in _error_line(run("finetune", *base_args(files), flag, value))


def test_unknown_profile_is_refused_by_the_parser(files):
    proc = run("finetune", *base_args(files, **{"--profile": "huge"}))
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
