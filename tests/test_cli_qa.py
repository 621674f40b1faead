"""The command line's --task qa: a smoke-profile LoRA fine-tune of the causal LM, and bad input in one line."""
import json
import pytest

from ftlib import catalog, cli

import cli_files
from cli_files import error_line

PAIRS = [("What is 7 times 8?", "56"), ("Which planet is closest to the Sun?", "Mercury"),
         ("노르웨이의 수도는?", "오슬로"), ("How many legs does a spider have?", "8"),
         ("What colour is the sky on a clear day?", "blue"), ("Add 15 and 27.", "42")]


def write_jsonl(path, rows, keys=("question", "answer")):
    return cli_files.write_jsonl(path, rows, keys)


@pytest.fixture
def files(tmp_path):
    return {"train": write_jsonl(tmp_path / "train.jsonl", PAIRS * 2), "eval": write_jsonl(tmp_path / "eval.jsonl", PAIRS),
            "tmp": tmp_path}


def qa_args(files, *extra):
    return ["finetune", "--task", "qa", "--train", files["train"], "--eval", files["eval"], "--profile", "smoke",
            "--quiet", "--out", files["tmp"] / "out", *extra]


def test_qa_finetune_writes_scores_and_a_loadable_adapter(files, capsys):
    code = cli.main(list(map(str, qa_args(files, "--test", files["eval"], "--epochs", "2", "--lr", "1e-3"))))
    assert code == 0, capsys.readouterr().err
    assert "token_f1" in capsys.readouterr().out  # the summary names the scores
    out = files["tmp"] / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("eval", "test"):
        assert {"loss", "exact_match", "token_f1"} <= set(metrics[split])
        assert 0 <= metrics[split]["token_f1"] <= 100
    assert metrics["method"] == "lora" and metrics["epochs_run"] == 2 and metrics["model"] == catalog.TINY_GEMMA.name
    assert 0 < metrics["trainable_params"] < metrics["total_params"] / 10
    assert (out / "model" / "adapter_config.json").exists()
    assert metrics["saved_bytes"] < 4 * metrics["total_params"] / 10  # only the adapter was saved
    from peft import PeftModel

    from ftlib.models import load_causal_lm
    base, _ = load_causal_lm(catalog.TINY_GEMMA)
    model = PeftModel.from_pretrained(base, out / "model")
    assert any("lora_A" in name for name, _ in model.named_parameters())
    assert "per_language" not in metrics["eval"]  # these records carry no 'lang' field


def test_qa_scores_per_language_when_the_records_say_which(files, capsys, monkeypatch):
    langs = ["ko" if any("\uac00" <= ch <= "\ud7a3" for ch in q) else "en" for q, _ in PAIRS]
    rows = [(q, a, lang) for (q, a), lang in zip(PAIRS, langs)]
    write_jsonl(files["train"], rows * 2, keys=("question", "answer", "lang"))
    write_jsonl(files["eval"], rows, keys=("question", "answer", "lang"))
    # Answers we choose, so that the per-language numbers are known: every English one right, no Korean one.
    right = dict(PAIRS)
    monkeypatch.setattr("ftlib.qa.generate_answers",
                        lambda model, tok, questions, runtime, **kw: [right[q] if q.isascii() else "?" for q in questions])
    code = cli.main(list(map(str, qa_args(files, "--test", files["eval"], "--epochs", "1"))))
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((files["tmp"] / "out" / "metrics.json").read_text())
    for split in ("eval", "test"):
        per = metrics[split]["per_language"]
        assert per["en"] == {"exact_match": 100.0, "token_f1": 100.0, "questions": 5}
        assert per["ko"] == {"exact_match": 0.0, "token_f1": 0.0, "questions": 1}
        assert metrics[split]["exact_match"] == pytest.approx(500 / 6)

    # `evaluate` on a file with a 'lang' column reports the same split.
    code = cli.main(["evaluate", "--model", str(files["tmp"] / "out"), "--input", str(files["eval"]),
                     "--out", str(files["tmp"] / "eval.json")])
    assert code == 0, capsys.readouterr().err
    report = json.loads((files["tmp"] / "eval.json").read_text())
    assert report["per_language"]["ko"]["questions"] == 1 and report["per_language"]["en"]["exact_match"] == 100.0
    assert "ko: 1 questions" in capsys.readouterr().out


def test_missing_answer_field_is_one_clear_line(files, capsys):
    write_jsonl(files["train"], PAIRS, keys=("question", "reply"))
    line = error_line(cli.main(list(map(str, qa_args(files)))), capsys)
    assert "'answer'" in line and "train.jsonl" in line
    assert not (files["tmp"] / "out").exists()


def test_methods_that_do_not_apply_to_qa_are_refused(files, capsys):
    line = error_line(cli.main(list(map(str, qa_args(files, "--method", "adapter")))), capsys)
    assert "--method adapter" in line and "lora" in line


def test_prompt_longer_than_max_length_is_refused(files, capsys):
    line = error_line(cli.main(list(map(str, qa_args(files, "--max-length", "8")))), capsys)
    assert "max_length" in line


def test_text_classification_keeps_full_as_its_default_method():
    args = cli.build_parser().parse_args(["finetune", "--task", "text-classification", "--train", "a.csv",
                                          "--eval", "b.csv", "--out", "o"])
    assert args.method is None  # resolved in main: full for text-classification, lora for qa


def test_a_qa_run_predicts_evaluates_merges_and_checkpoints_only_lora(files, capsys):
    from safetensors.torch import load_file

    out = files["tmp"] / "out"
    assert cli.main(list(map(str, qa_args(files, "--epochs", "2", "--lr", "1e-3", "--merge")))) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["selection"]["chosen_on"] == "eval" and metrics["selection"]["monitor"] == "eval_loss"
    checkpoint = load_file(out / "checkpoints" / "best" / "model.safetensors")
    assert checkpoint and all("lora_" in name for name in checkpoint)  # not the frozen causal LM
    # evaluate rebuilds the same model (the smoke base from its seed): the same scores as training reported
    assert cli.main(["evaluate", "--model", str(out), "--input", str(files["eval"]), "--quiet"]) == 0
    report = json.loads((out / "evaluation-eval.json").read_text())
    assert report["exact_match"] == metrics["eval"]["exact_match"]
    assert report["token_f1"] == pytest.approx(metrics["eval"]["token_f1"])
    predicted = files["tmp"] / "answers.jsonl"
    assert cli.main(["predict", "--model", str(out), "--input", str(files["eval"]), "--out", str(predicted)]) == 0
    rows = [json.loads(line) for line in predicted.read_text().splitlines()]
    assert [r["question"] for r in rows] == [q for q, _ in PAIRS] and all("predicted_answer" in r for r in rows)
    from transformers import AutoModelForCausalLM
    assert not any("lora" in n for n, _ in AutoModelForCausalLM.from_pretrained(out / "merged").named_parameters())
