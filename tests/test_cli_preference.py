"""The command line's --task preference: a smoke-profile DPO run on the causal LM, and bad input in one line."""
import json

import pytest

from ftlib import catalog, cli

import cli_files
from cli_files import error_line

PAIRS = [("What is 7 times 8?", "56", "54"),
         ("Which planet is closest to the Sun?", "Mercury", "The closest one is Venus, or maybe Mercury, it depends."),
         ("노르웨이의 수도는?", "오슬로", "베르겐"),
         ("Add 15 and 27.", "42", "Adding them, you get something like 42, give or take a little.")]


def write_jsonl(path, rows, keys=("prompt", "chosen", "rejected")):
    return cli_files.write_jsonl(path, rows, keys)


@pytest.fixture
def files(tmp_path):
    return {"train": write_jsonl(tmp_path / "train.jsonl", PAIRS * 2), "eval": write_jsonl(tmp_path / "eval.jsonl", PAIRS),
            "tmp": tmp_path}


def pref_args(files, *extra):
    return ["finetune", "--task", "preference", "--train", files["train"], "--eval", files["eval"], "--profile",
            "smoke", "--quiet", "--out", files["tmp"] / "out", *extra]


def test_preference_finetune_writes_metrics_and_an_adapter_that_answers(files, capsys):
    code = cli.main(list(map(str, pref_args(files, "--test", files["eval"], "--epochs", "2", "--lr", "3e-2",
                                            "--beta", "0.5"))))
    assert code == 0, capsys.readouterr().err
    assert "pretrained_accuracy" in capsys.readouterr().out  # the summary names the scores
    out = files["tmp"] / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("eval", "test"):
        assert {"accuracy", "margin", "loss", "reference_accuracy", "pretrained_accuracy"} <= set(metrics[split])
        assert 0 <= metrics[split]["accuracy"] <= 1
    assert metrics["eval"]["margin"] > 0 and metrics["eval"]["loss"] < 0.6931  # it learned the training pairs' order
    assert metrics["beta"] == 0.5 and metrics["epochs_run"] == 2 and metrics["model"] == catalog.TINY_GEMMA.name
    assert 0 < metrics["trainable_params"] < metrics["total_params"] / 10
    assert metrics["sft_epochs"] == catalog.PROFILES["smoke"].pref_sft_epochs > 0  # SFT first: DPO's reference
    assert (out / "model" / "adapter_config.json").exists() and (out / "model" / "sft" / "adapter_config.json").exists()
    assert json.loads((out / "model" / "method.json").read_text())["task"] == "preference"
    # what was saved is what was trained: the SFT adapter merged, the DPO adapter on top, the same scores
    from ftlib.inference import load_for_inference
    from ftlib.preference import add_reference_logprobs, make_preference_loader, preference_scores
    from ftlib.runtime import get_runtime

    model, tokenizer, task, _ = load_for_inference(out)
    loader = make_preference_loader([dict(zip(("prompt", "chosen", "rejected"), p)) for p in PAIRS], tokenizer,
                                    batch_size=8, shuffle=False, max_length=catalog.PROFILES["smoke"].qa_max_length,
                                    max_answer_tokens=catalog.PROFILES["smoke"].pref_max_answer_tokens)
    runtime = get_runtime("smoke", device="cpu")
    add_reference_logprobs(model, loader, runtime)
    again = preference_scores(model, loader, runtime, beta=0.5)
    assert task == "qa" and again["margin"] == pytest.approx(metrics["eval"]["margin"], abs=1e-4)
    assert again["reference_accuracy"] == metrics["eval"]["reference_accuracy"]
    answers = out / "answers.jsonl"  # the adapter answers questions through `predict`, as a qa run does
    write_jsonl(files["tmp"] / "questions.jsonl", [(p,) for p, _, _ in PAIRS], keys=("question",))
    assert cli.main(["predict", "--model", str(out), "--input", str(files["tmp"] / "questions.jsonl"), "--out",
                     str(answers), "--quiet"]) == 0
    assert len(answers.read_text().splitlines()) == len(PAIRS)


def test_sft_epochs_0_runs_dpo_from_the_pretrained_model(files, capsys):
    code = cli.main(list(map(str, pref_args(files, "--sft-epochs", "0", "--epochs", "1"))))
    assert code == 0, capsys.readouterr().err
    out = files["tmp"] / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sft_epochs"] == 0 and not (out / "model" / "sft").exists()
    assert metrics["eval"]["pretrained_accuracy"] == metrics["eval"]["reference_accuracy"]  # the same model
    write_jsonl(files["tmp"] / "questions.jsonl", [(p,) for p, _, _ in PAIRS], keys=("question",))
    assert cli.main(["predict", "--model", str(out), "--input", str(files["tmp"] / "questions.jsonl"), "--out",
                     str(files["tmp"] / "answers.jsonl"), "--quiet"]) == 0


def test_missing_rejected_field_is_one_clear_line(files, capsys):
    write_jsonl(files["train"], PAIRS, keys=("prompt", "chosen", "worse"))
    line = error_line(cli.main(list(map(str, pref_args(files)))), capsys)
    assert "'rejected'" in line and "train.jsonl" in line
    assert not (files["tmp"] / "out").exists()


@pytest.mark.parametrize("extra,words", [(["--method", "full"], "--method full"), (["--beta", "0"], "--beta"),
                                         (["--merge"], "--merge")])
def test_options_that_do_not_apply_are_one_clear_line(files, capsys, extra, words):
    line = error_line(cli.main(list(map(str, pref_args(files, *extra)))), capsys)
    assert words in line
    assert not (files["tmp"] / "out").exists()
