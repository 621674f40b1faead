"""Checkpoints that survive a kill: everything needed to resume, written atomically.

Introduced in lesson 00 (resuming after a Colab disconnect). A checkpoint is a folder
``step-00000120/`` holding the weights (safetensors), the optimizer and scheduler
state, the random-number state and a small JSON of progress. It is written under a
temporary name and renamed when complete; only then is the one-line pointer file
``latest`` replaced, again by an atomic rename. A run killed at any instant leaves
``latest`` naming a complete checkpoint.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

__all__ = ["CheckpointError", "Checkpointer"]


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
            save_model(model, str(tmp / "model.safetensors"))
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict() if scaler else None, "rng": _rng_state()},
                       tmp / "trainer.pt")
            _write_json(tmp / "state.json", state)
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
        try:
            load_model(model, str(path / "model.safetensors"), device=str(device))
        except RuntimeError as err:
            raise CheckpointError(
                f"the checkpoint in {path} was saved from a different model ({str(err).splitlines()[0]}); "
                "resume with the same model, or start afresh in an empty checkpoint_dir"
            ) from None
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
        save_model(model, str(tmp))
        os.replace(tmp, best / "model.safetensors")

    def load_best(self, model, device: str) -> bool:
        path = self.directory / "best" / "model.safetensors"
        if not path.exists():
            return False
        load_model(model, str(path), device=str(device))
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
