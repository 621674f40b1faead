"""Where a training run stands, and how ``fit`` saves and resumes it (lesson 00).

A run's position is four numbers (epoch, batch within the epoch, optimizer step, the
epoch's running loss) and its history. ``RunSaver`` writes them with the weights, the
optimizer, the schedule and the random state into an atomic checkpoint
(``ftlib.checkpoints``) and reads them back, so that a run killed mid-epoch ends with
exactly the weights of one never interrupted. Three things make that true: the batch
order is a pure function of (seed, epoch) and ``step_batches`` skips the batches already
seen; checkpoints hold the random state; each DataLoader has its own generator.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, fields

from .checkpoints import Checkpointer
from .distributed import all_mean, barrier, is_main, unwrap

__all__ = ["Position", "RunSaver", "step_batches"]


@dataclass
class Position:
    """Where a run stands: saved in every checkpoint, read back on resume."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches of the current epoch already trained
    step: int = 0  # optimizer steps so far
    loss_sum: float = 0.0  # the current epoch's training loss, summed over its batches
    loss_count: int = 0
    history: list = field(default_factory=list)  # one record per finished epoch

    def add_step(self, loss: float, n_batches: int) -> None:
        """Count one optimizer step over `n_batches` batches whose mean loss was `loss`."""
        self.batch, self.step = self.batch + n_batches, self.step + 1
        self.loss_sum, self.loss_count = self.loss_sum + loss * n_batches, self.loss_count + n_batches

    def train_loss(self) -> float:
        """The current epoch's mean training loss, over all processes."""
        return all_mean(self.loss_sum, self.loss_count)

    def end_epoch(self, record: dict) -> None:
        self.history.append(record)
        self.epoch, self.batch, self.loss_sum, self.loss_count = self.epoch + 1, 0, 0.0, 0


def step_batches(loader, at: Position, accum: int):
    """The batches of each optimizer step of epoch ``at.epoch``, from batch ``at.batch`` on (non-zero after a resume)."""
    if hasattr(loader.batch_sampler, "set_epoch"):  # ftlib's sampler: the order depends on (seed, epoch) only
        loader.batch_sampler.set_epoch(at.epoch, start=at.batch)
    batches = iter(loader)
    while group := list(itertools.islice(batches, accum)):
        yield group


class RunSaver:
    """Checkpoints of one ``fit`` run in `directory` (None: saves nothing); only the main process writes."""

    def __init__(self, directory, model, optimizer, scheduler, scaler, stopper, config):
        self.checkpointer = Checkpointer(directory) if directory else None
        self.model, self.optimizer, self.scheduler, self.scaler = unwrap(model), optimizer, scheduler, scaler
        self.stopper, self.config = stopper, config

    def resume(self, device, verbose: bool) -> Position:
        """The position of the latest checkpoint, with everything restored; a fresh Position if there is none."""
        if self.checkpointer is None or self.checkpointer.latest() is None:
            return Position()
        state = self.checkpointer.load(self.model, self.optimizer, self.scheduler, self.scaler, device)
        self.stopper.load_state_dict(state["stopper"])
        at = Position(**{f.name: state[f.name] for f in fields(Position)})
        if verbose and at.epoch >= self.config.epochs:
            print(f"{self.checkpointer.latest()} has finished all {self.config.epochs} epochs: nothing left to train.")
        elif verbose:
            print(f"Resumed from {self.checkpointer.latest()} (epoch {at.epoch + 1}, batch {at.batch})")
        return at

    def save(self, at: Position) -> None:
        if self.checkpointer is not None and is_main():
            self.checkpointer.save(self.model, self.optimizer, self.scheduler, self.scaler,
                                   {**asdict(at), "stopper": self.stopper.state_dict(), "config": asdict(self.config)})
        barrier()  # the other processes wait until the checkpoint is complete

    def save_best(self) -> None:
        if self.checkpointer is not None and is_main():
            self.checkpointer.save_best(self.model)

    def restore_best(self, best_weights: dict | None, device) -> None:
        """Put the best epoch's weights back: from memory, or from disk if that epoch came before a resume."""
        if best_weights is not None:
            self.model.load_state_dict(best_weights, strict=False)  # only what training changed
        elif self.stopper.best_epoch is not None and self.checkpointer is not None:
            self.checkpointer.load_best(self.model, device)
