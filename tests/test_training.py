import errno
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import tiny
from ftlib import checkpoints
from ftlib.checkpoints import CheckpointError, Checkpointer
from ftlib.freezing import changed_weights, weights_snapshot
from ftlib.runtime import get_runtime
from ftlib.training import EarlyStopping, TrainConfig, fit

WORKER = Path(__file__).with_name("resume_worker.py")


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


@pytest.fixture
def runtime():
    return get_runtime("smoke", seed=0)


def test_loss_falls_and_accuracy_rises(tok, runtime):
    train, evaluation = tiny.loaders(tok, n_train=128)
    model = tiny.classifier(dropout=0.0)
    history = fit(model, train, evaluation, runtime=runtime, config=TrainConfig(epochs=6, lr=2e-3, progress=False))
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert max(r["eval_accuracy"] for r in history) >= 0.9
    assert [r["epoch"] for r in history] == list(range(1, 7))
    assert {"train_loss", "eval_loss", "eval_accuracy", "eval_f1_macro", "lr", "seconds", "step"} <= set(history[0])


def test_only_trainable_parameters_change(tok, runtime):
    train, _ = tiny.loaders(tok)
    model = tiny.classifier()
    for p in model.bert.parameters():
        p.requires_grad = False
    before = weights_snapshot(model)  # CPU copies: after fit, the model may be on a GPU
    fit(model, train, runtime=runtime, config=TrainConfig(epochs=1, lr=1e-2, progress=False))
    assert changed_weights(model, before) == ["classifier.bias", "classifier.weight"]


def test_gradient_accumulation_matches_a_larger_batch(tok, runtime):
    # Same examples, all of one length, no dropout: 2 micro-batches of 4 == one batch of 8.
    from datasets import Dataset
    from ftlib.data import make_loader, tokenize

    texts = [f"the film was {w}" for w in ["good", "bad", "great", "awful"] * 4]
    ds = tokenize(Dataset.from_dict({"text": texts, "label": [0, 1, 0, 1] * 4}), tok, max_length=16)
    results = []
    for batch_size, accum in [(8, 1), (4, 2)]:
        model = tiny.classifier(dropout=0.0)
        loader = make_loader(ds, tok, batch_size=batch_size, shuffle=False, group_by_length=False)
        fit(model, loader, runtime=runtime, config=TrainConfig(epochs=1, lr=1e-3, grad_accum_steps=accum,
                                                               warmup_ratio=0.0, progress=False))
        results.append(model.classifier.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=1e-4, atol=1e-6)


def test_early_stopping_counts_and_remembers_best():
    stopper = EarlyStopping("eval_loss", patience=2)
    improved = [stopper.update({"epoch": e, "eval_loss": v}) for e, v in enumerate([0.9, 0.7, 0.8, 0.75], 1)]
    assert improved == [True, True, False, False]
    assert stopper.best_epoch == 2 and stopper.should_stop
    assert not EarlyStopping("eval_accuracy", patience=None).should_stop


def test_fit_stops_early_and_restores_the_best_weights(tok, runtime, tmp_path):
    train, evaluation = tiny.loaders(tok, n_train=32)
    model = tiny.classifier(dropout=0.0)
    config = TrainConfig(epochs=30, lr=5e-3, patience=2, monitor="eval_loss", checkpoint_dir=str(tmp_path),
                         progress=False)
    history = fit(model, train, evaluation, runtime=runtime, config=config)
    losses = [r["eval_loss"] for r in history]
    assert history.best_epoch == 1 + losses.index(min(losses))
    assert history.stopped_early and len(history) == history.best_epoch + 2 < 30  # 2 epochs of patience, then stop
    best = load_file(tmp_path / "best" / "model.safetensors")
    assert changed_weights(model, best) == []  # the best epoch's weights, restored


def test_a_nan_loss_stops_with_a_message_and_keeps_the_checkpoint(tok, runtime, tmp_path):
    train, _ = tiny.loaders(tok)
    model = tiny.classifier()
    fit(model, train, runtime=runtime, config=TrainConfig(epochs=1, checkpoint_dir=str(tmp_path), progress=False))
    good = Checkpointer(tmp_path).latest()
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit(model, train, runtime=runtime, config=TrainConfig(epochs=2, checkpoint_dir=str(tmp_path),
                                                              save_every=1, progress=False))
    assert Checkpointer(tmp_path).latest() == good


@pytest.mark.parametrize("bad", [dict(lr=0.0), dict(lr=-1e-4), dict(lr=float("nan")), dict(epochs=0),
                                 dict(warmup_ratio=1.5), dict(resume=True)])
def test_bad_settings_are_refused_with_a_message(bad):
    with pytest.raises(ValueError, match="must|needs"):
        TrainConfig(**bad)


def test_a_fully_frozen_model_is_refused(tok, runtime):
    train, _ = tiny.loaders(tok)
    model = tiny.classifier()
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(model, train, runtime=runtime, config=TrainConfig(epochs=1, progress=False))


def _worker(*args):
    return subprocess.run([sys.executable, str(WORKER), *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = {}
    for accum in (1, 2):
        folder = tmp_path_factory.mktemp(f"clean{accum}")
        proc = _worker(folder / "ckpt", folder / "final.safetensors", 0, accum)
        assert proc.returncode == 0, proc.stderr
        out[accum] = folder / "final.safetensors"
    return out


@pytest.mark.parametrize("kill_at,accum", [(5, 1), (14, 1), (21, 1), (7, 2)])
def test_killed_mid_epoch_and_resumed_ends_with_identical_weights(tmp_path, uninterrupted, kill_at, accum):
    ckpt, result = tmp_path / "ckpt", tmp_path / "final.safetensors"
    killed = _worker(ckpt, result, kill_at, accum)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not result.exists()
    resumed = _worker(ckpt, result, 0, accum, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resumed from" not in resumed.stdout  # progress is off; the resume is silent
    expected, actual = load_file(uninterrupted[accum]), load_file(result)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    history = json.loads(Path(str(result) + ".json").read_text())
    clean = json.loads(Path(str(uninterrupted[accum]) + ".json").read_text())
    assert [r["eval_loss"] for r in history] == [r["eval_loss"] for r in clean]


def test_a_full_disk_keeps_the_previous_checkpoint(tok, runtime, tmp_path, monkeypatch):
    train, _ = tiny.loaders(tok)
    model = tiny.classifier()
    fit(model, train, runtime=runtime, config=TrainConfig(epochs=1, checkpoint_dir=str(tmp_path), progress=False))
    good = Checkpointer(tmp_path).latest()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_model", disk_full)
    with pytest.raises(CheckpointError, match="previous checkpoint is intact"):
        fit(model, train, runtime=runtime, config=TrainConfig(epochs=2, checkpoint_dir=str(tmp_path),
                                                              resume=True, progress=False))
    assert Checkpointer(tmp_path).latest() == good
    assert not list(tmp_path.glob(".tmp-*"))  # no half-written folder left behind
    monkeypatch.undo()
    state = Checkpointer(tmp_path).load(tiny.classifier(), *_fresh_optim(), None, "cpu")
    assert state["epoch"] == 1


def test_resuming_with_another_model_is_refused(tok, runtime, tmp_path):
    train, _ = tiny.loaders(tok)
    fit(tiny.classifier(), train, runtime=runtime, config=TrainConfig(epochs=1, checkpoint_dir=str(tmp_path),
                                                                      progress=False))
    other = tiny.classifier()
    other.classifier = torch.nn.Linear(32, 5)
    with pytest.raises(CheckpointError, match="different model"):
        Checkpointer(tmp_path).load(other, *_fresh_optim(other), None, "cpu")


def _fresh_optim(model=None):
    from ftlib.optim import make_optimizer

    model = model or tiny.classifier()
    optimizer = make_optimizer(model, lr=5e-5)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_paths_train(tok, precision):
    # The GPU paths, exercised on the CPU: bf16 autocast, and fp16 autocast with a GradScaler.
    from ftlib.runtime import Runtime

    runtime = Runtime(profile="smoke", device="cpu", precision=precision)
    assert (runtime.grad_scaler() is not None) == (precision == "fp16")
    train, evaluation = tiny.loaders(tok, n_train=64)
    model = tiny.classifier(dropout=0.0)
    history = fit(model, train, evaluation, runtime=runtime, config=TrainConfig(epochs=3, lr=2e-3, progress=False))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32


def test_five_random_sigkills_in_one_run_still_end_with_identical_weights(tmp_path, uninterrupted):
    # One run, killed five times at random micro-batches (seeded), resumed after each kill.
    # Each life lasts at most 4 of the 24 micro-batches, so the run cannot finish early.
    import random

    rng, ckpt, result = random.Random(2026), tmp_path / "ckpt", tmp_path / "final.safetensors"
    kill_points = [rng.randint(1, 4) for _ in range(5)]
    for kill_at in kill_points:
        proc = _worker(ckpt, result, kill_at, 1, "--resume")
        assert proc.returncode == -signal.SIGKILL, (kill_points, proc.stderr)
    finished = _worker(ckpt, result, 0, 1, "--resume")
    assert finished.returncode == 0, finished.stderr
    expected, actual = load_file(uninterrupted[1]), load_file(result)
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name


def test_best_weights_keep_only_what_trains(tok, runtime):
    from ftlib.freezing import freeze_all_but_head

    model = tiny.classifier()
    freeze_all_but_head(model)
    kept = weights_snapshot(model, trainable_only=True)
    params = {n for n, _ in model.named_parameters()}
    assert {k for k in kept if k in params} == {"classifier.weight", "classifier.bias"}  # plus buffers only
    train, evaluation = tiny.loaders(tok, n_train=32)
    before = weights_snapshot(model)
    history = fit(model, train, evaluation, runtime=runtime, config=TrainConfig(epochs=3, lr=1e-2, progress=False))
    assert changed_weights(model, before) == ["classifier.bias", "classifier.weight"]
    assert history.best_epoch is not None


def test_adamw_is_fused_on_cpu_and_takes_groups_lists_or_generators():
    from ftlib.optim import adamw

    layer = torch.nn.Linear(3, 2)
    for params in (layer.parameters(), list(layer.parameters()), [{"params": [layer.weight]}, {"params": [layer.bias]}]):
        optimizer = adamw(params, lr=1e-3)
        assert optimizer.defaults["fused"] is True
        assert sum(len(g["params"]) for g in optimizer.param_groups) == 2
