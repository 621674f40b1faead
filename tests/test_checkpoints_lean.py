"""Lean checkpoints: a LoRA run's checkpoints hold what trains, not the frozen model, and still resume exactly."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import tiny
from ftlib.checkpoints import CheckpointError, Checkpointer
from ftlib.lora import add_lora
from ftlib.runtime import get_runtime
from ftlib.training import TrainConfig, fit

WORKER = Path(__file__).with_name("resume_worker.py")


def _worker(*args):
    return subprocess.run([sys.executable, str(WORKER), *map(str, args)], capture_output=True, text=True)


def _lora_model():
    model = tiny.classifier()
    add_lora(model, r=4, alpha=8)
    return model


def test_a_lora_checkpoint_holds_only_what_trains(tmp_path):
    train, evaluation = tiny.loaders(tiny.tokenizer())
    model = _lora_model()
    fit(model, train, evaluation, runtime=get_runtime("smoke"),
        config=TrainConfig(epochs=1, checkpoint_dir=str(tmp_path), progress=False))
    saved = load_file(Checkpointer(tmp_path).latest() / "model.safetensors")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable <= set(saved) and not any(k.endswith("base.weight") for k in saved)
    assert set(saved) - trainable <= {n for n, _ in model.named_buffers()}  # the rest: buffers only
    best = load_file(tmp_path / "best" / "model.safetensors")
    assert set(best) == set(saved)
    full = sum(p.numel() for p in model.parameters()) * 4
    assert (Checkpointer(tmp_path).latest() / "model.safetensors").stat().st_size < 0.05 * full


def test_a_lean_checkpoint_refuses_another_method(tmp_path):
    train, _ = tiny.loaders(tiny.tokenizer())
    fit(_lora_model(), train, runtime=get_runtime("smoke"),
        config=TrainConfig(epochs=1, checkpoint_dir=str(tmp_path), progress=False))
    other = tiny.classifier()  # everything trains: not the model the checkpoint came from
    optimizer = torch.optim.AdamW(other.parameters())
    with pytest.raises(CheckpointError, match="different model or method"):
        Checkpointer(tmp_path).load(other, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1),
                                    None, "cpu")


def test_checkpoint_files_have_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        train, evaluation = tiny.loaders(tiny.tokenizer())
        fit(_lora_model(), train, evaluation, runtime=get_runtime("smoke"),
            config=TrainConfig(epochs=1, checkpoint_dir=str(tmp_path), progress=False))
    finally:
        os.umask(old)
    latest = Checkpointer(tmp_path).latest()
    assert latest.stat().st_mode & 0o777 == 0o755
    for f in [*latest.iterdir(), tmp_path / "best" / "model.safetensors"]:
        assert f.stat().st_mode & 0o777 == 0o644, f


@pytest.mark.parametrize("kill_at", [5, 14])
def test_a_killed_lora_run_resumes_to_identical_weights(tmp_path, kill_at):
    clean = tmp_path / "clean.safetensors"
    assert _worker(tmp_path / "ck-clean", clean, 0, 1, "--lora").returncode == 0
    ckpt, result = tmp_path / "ck", tmp_path / "final.safetensors"
    killed = _worker(ckpt, result, kill_at, 1, "--lora")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = _worker(ckpt, result, 0, 1, "--resume", "--lora")
    assert resumed.returncode == 0, resumed.stderr
    expected, actual = load_file(clean), load_file(result)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
