"""Checkpoints that survive a kill: everything needed to resume, written atomically.

Introduced in lesson 00 (resuming after a Colab disconnect). A checkpoint is a folder
``step-00000120/`` holding the weights (safetensors), the optimizer and scheduler
state, the random-number state and a small JSON of progress. It is written under a
temporary name and renamed when complete; only then is the one-line pointer file
``latest`` replaced, again by an atomic rename. A run killed at any instant leaves
``latest`` naming a complete checkpoint.

When part of the model is frozen (head, freeze:K, adapter, LoRA), the weights file holds
only what training changes: the trainable parameters and the buffers. The frozen
pretrained weights are not copied into every checkpoint; resuming rebuilds them from
their source (whose hash ``ftlib.models`` checks) and then loads the rest.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, load_model, save_file, save_model

from .files import share

__all__ = ["CheckpointError", "Checkpointer", "load_weights", "save_weights", "training_state"]

_LEAN = {"ftlib": "trained-only"}  # safetensors metadata of a file without the frozen weights


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or does not fit the model being trained."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data) -> None:
    with open(path, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())


def training_state(model) -> dict[str, torch.Tensor]:
    """What training changes: the trainable parameters and the (persistent) buffers, by state_dict name."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n for n, _ in model.named_buffers()}
    # Buffers are cloned: some share memory with one another, which safetensors refuses to save.
    return {k: (v.detach() if k in trainable else v.detach().clone()).contiguous()
            for k, v in model.state_dict().items() if k in trainable | buffers}


def save_weights(model, path: str | Path) -> None:
    """The whole model if everything trains, else only :func:`training_state` (marked as such)."""
    if all(p.requires_grad for p in model.parameters()):
        save_model(model, str(path))
    else:
        save_file(training_state(model), str(path), metadata=_LEAN)


def load_weights(model, path: str | Path, device: str) -> None:
    """Load a file written by :func:`save_weights` into `model`; a file of another model is a CheckpointError."""
    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        lean = (f.metadata() or {}).get("ftlib") == _LEAN["ftlib"]
    fix = "resume with the same model and method, or start afresh in an empty checkpoint_dir"
    if not lean:
        try:
            load_model(model, str(path), device=str(device))
        except RuntimeError as err:
            raise CheckpointError(f"the checkpoint in {path.parent} was saved from a different model "
                                  f"({str(err).splitlines()[0]}); {fix}") from None
        return
    saved, expected = load_file(str(path), device=str(device)), training_state(model)
    wrong = sorted(set(saved) ^ set(expected)) or [k for k in saved if saved[k].shape != expected[k].shape]
    if wrong:
        raise CheckpointError(f"the checkpoint in {path.parent} was saved from a different model or method "
                              f"({len(wrong)} tensors differ, e.g. {wrong[0]}); {fix}")
    model.load_state_dict(saved, strict=False)


class Checkpointer:
    """Saves and restores training state in `directory`; keeps the newest checkpoint only."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def latest(self) -> Path | None:
        pointer = self.directory / "latest"
        if not pointer.exists():
            return None
        path = self.directory / pointer.read_text().strip()
        return path if (path / "state.json").exists() else None

    def save(self, model, optimizer, scheduler, scaler, state: dict) -> Path:
        """Write a complete checkpoint, then point ``latest`` at it, then drop older ones."""
        name = f"step-{state['step']:08d}-e{state['epoch']}-b{state['batch']}"
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.directory))
        try:
            save_weights(model, tmp / "model.safetensors")
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict() if scaler else None, "rng": _rng_state()},
                       tmp / "trainer.pt")
            _write_json(tmp / "state.json", state)
            share(tmp)  # mkdtemp and safetensors make owner-only files; a shared run folder needs more
            final = self.directory / name
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            pointer_tmp = self.directory / "latest.tmp"
            pointer_tmp.write_text(name)
            os.replace(pointer_tmp, self.directory / "latest")
            _fsync_dir(self.directory)
        except OSError as err:  # e.g. the disk is full: keep the previous checkpoint
            shutil.rmtree(tmp, ignore_errors=True)
            raise CheckpointError(
                f"could not write a checkpoint in {self.directory} ({err.strerror or err}); the previous "
                "checkpoint is intact: free some disk space or choose another checkpoint_dir"
            ) from err
        for old in self.directory.glob("step-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def load(self, model, optimizer, scheduler, scaler, device: str) -> dict:
        """Restore everything from the latest checkpoint and return its progress record."""
        path = self.latest()
        if path is None:
            raise CheckpointError(f"no checkpoint in {self.directory} to resume from")
        load_weights(model, path / "model.safetensors", device)
        trainer = torch.load(path / "trainer.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(trainer["optimizer"])
        scheduler.load_state_dict(trainer["scheduler"])
        if scaler is not None and trainer["scaler"]:
            scaler.load_state_dict(trainer["scaler"])
        _set_rng_state(trainer["rng"])
        return json.loads((path / "state.json").read_text())

    def save_best(self, model) -> None:
        best = self.directory / "best"
        best.mkdir(parents=True, exist_ok=True)
        tmp = best / "model.safetensors.tmp"
        save_weights(model, tmp)
        share(tmp)
        os.replace(tmp, best / "model.safetensors")

    def load_best(self, model, device: str) -> bool:
        path = self.directory / "best" / "model.safetensors"
        if not path.exists():
            return False
        load_weights(model, path, device)
        return True


def _rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
