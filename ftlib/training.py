"""The training loop: plain PyTorch, readable top to bottom.

Introduced in lesson 00. ``fit`` knows nothing about which model it trains: it needs a
model whose forward returns ``.loss`` when the batch holds ``labels`` (every Hugging
Face model does), a DataLoader of training batches and, optionally, one for
evaluation. Early stopping and checkpoints are small objects the loop asks; there is
no callback framework and no Trainer.

Read ``fit`` first: the epochs, the optimizer steps of each epoch, the record of each
epoch. One step is ``train_step``: zero_grad, forward, loss, backward, clip, step,
schedule. What a step may need beyond that is a named helper in its own module:
``OutOfMemoryBackoff`` (``ftlib.oom``), ``RunSaver`` and ``step_batches`` for checkpoints and
resuming (``ftlib.resume``), ``TrainingReport`` for what you see (``ftlib.live``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from .distributed import unwrap
from .evaluation import evaluate
from .freezing import weights_snapshot
from .live import TrainingReport
from .oom import OutOfMemoryBackoff
from .optim import make_optimizer, make_scheduler
from .resume import Position, RunSaver, step_batches
from .runtime import Runtime, model_device, move_to

__all__ = ["EarlyStopping", "History", "TrainConfig", "check_loss", "fit", "scaled_step", "train_step"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings for :func:`fit`; each default is a sensible starting point."""

    epochs: int = 3
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1  # fraction of steps spent raising the rate from 0 to lr
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    max_grad_norm: float | None = 1.0  # gradient clipping; None switches it off
    patience: int | None = None  # early stopping: epochs without improvement; None: never stop
    monitor: str = "eval_accuracy"  # the record key early stopping watches ('eval_loss' is minimised)
    checkpoint_dir: str | None = None  # where to save; None: no checkpoints
    save_every: int = 0  # also checkpoint every N optimizer steps inside an epoch (0: epoch ends only)
    resume: bool = False  # continue from checkpoint_dir/latest if there is one
    progress: bool = True  # progress bar and one printed line per epoch
    group_lrs: dict[str, float] | None = None  # lesson 04: lr per layer group (ftlib.freezing.layer_groups); others: lr

    def __post_init__(self):
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}: try 5e-5 for full fine-tuning")
        if self.epochs < 1 or self.grad_accum_steps < 1:
            raise ValueError(f"epochs and grad_accum_steps must be at least 1, got {self.epochs} and "
                             f"{self.grad_accum_steps}: pass whole numbers such as epochs=3, grad_accum_steps=1")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}: it is a fraction of "
                             "the training steps, e.g. 0.1")
        if self.resume and not self.checkpoint_dir:
            raise ValueError("resume=True needs a checkpoint_dir to resume from: pass the folder of the run to continue")


class History(list):
    """A list of per-epoch records (dicts), plus what happened at the end."""

    def __init__(self, records=(), *, best_epoch: int | None = None, stopped_early: bool = False):
        super().__init__(records)
        self.best_epoch, self.stopped_early = best_epoch, stopped_early


class EarlyStopping:
    """Says when `monitor` has not improved for `patience` epochs; remembers the best epoch."""

    def __init__(self, monitor: str = "eval_accuracy", patience: int | None = None):
        self.monitor, self.patience = monitor, patience
        self.sign = -1.0 if monitor.endswith("loss") else 1.0  # losses go down, scores go up
        self.best, self.best_epoch, self.bad_epochs = -math.inf, None, 0

    def update(self, record: dict) -> bool:
        """Record one epoch; True if it is the best so far."""
        if self.monitor not in record:
            return False
        value = self.sign * record[self.monitor]
        if value > self.best:
            self.best, self.best_epoch, self.bad_epochs = value, record["epoch"], 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]


def fit(model, train_loader, eval_loader=None, *, runtime: Runtime, config: TrainConfig = TrainConfig()) -> History:
    """Train `model` and return its history, one record per epoch.

    With an `eval_loader`, each epoch ends with an evaluation, and the best epoch's weights (by
    ``config.monitor``) are restored at the end. Under torchrun, pass a model wrapped by
    ``ftlib.distributed.wrap``: only rank 0 saves and prints.
    """
    model.to(runtime.device)
    optimizer = make_optimizer(unwrap(model), lr=config.lr, weight_decay=config.weight_decay, group_lrs=config.group_lrs)
    steps = math.ceil(len(train_loader) / config.grad_accum_steps) * config.epochs
    scheduler = make_scheduler(optimizer, total_steps=steps, warmup_ratio=config.warmup_ratio)
    scaler = runtime.grad_scaler()  # fp16 only (a T4): scales the loss so that small gradients do not vanish
    stopper = EarlyStopping(config.monitor, config.patience)
    saver = RunSaver(config.checkpoint_dir, model, optimizer, scheduler, scaler, stopper, config)
    report = TrainingReport(unwrap(model), train_loader, runtime, config)  # bar, live view, a line per epoch
    at = saver.resume(runtime.device, report.verbose) if config.resume else Position()
    backoff, best_weights = OutOfMemoryBackoff(), None  # backoff: smaller pieces after a GPU out-of-memory error
    while at.epoch < config.epochs and not stopper.should_stop:
        started = time.perf_counter()
        model.train()
        for batches in step_batches(train_loader, at, config.grad_accum_steps):  # one optimizer step's batches
            loss = backoff.retry(lambda pieces: train_step(model, pieces, optimizer, scheduler, runtime, scaler=scaler,
                                                           max_grad_norm=config.max_grad_norm), batches)
            at.add_step(loss, len(batches))
            report.step(at, loss)
            if config.save_every and at.step % config.save_every == 0:
                saver.save(at)
        record = {"epoch": at.epoch + 1, "step": at.step, "train_loss": at.train_loss(), "lr": scheduler.get_last_lr()[0]}
        if eval_loader is not None:
            record.update({f"eval_{k}": v for k, v in evaluate(unwrap(model), eval_loader, runtime).items()})
        record["seconds"] = time.perf_counter() - started
        at.end_epoch(record)
        if stopper.update(record):  # the best epoch so far: keep its weights (on the CPU) and save them
            best_weights = weights_snapshot(unwrap(model), trainable_only=True)
            saver.save_best()
        saver.save(at)
        report.epoch(record)
    saver.restore_best(best_weights, runtime.device)
    report.restored(stopper.best_epoch, len(at.history))
    return History(at.history, best_epoch=stopper.best_epoch, stopped_early=stopper.should_stop)


def train_step(model, pieces, optimizer, scheduler, runtime: Runtime, *, scaler=None, max_grad_norm=1.0) -> float:
    """One optimizer step over `pieces`, (batch, weight) pairs whose weights add up to 1; returns the step's loss."""
    optimizer.zero_grad(set_to_none=True)
    step_loss = 0.0
    for batch, weight in pieces:  # several when the step accumulates batches (or pieces of them)
        with runtime.autocast():  # mixed precision on a GPU; nothing on a CPU
            loss = model(**move_to(batch, model_device(model))).loss  # forward: the batch's mean loss
        check_loss(loss, optimizer)
        (scaler.scale(loss * weight) if scaler else loss * weight).backward()  # backward: the gradients add up
        step_loss += loss.item() * weight
    if scaler is not None:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_grad_norm)
    if scaler is None:
        optimizer.step()
    elif not scaled_step(optimizer, scaler):  # fp16: skipped, the gradients overflowed; so is the schedule step
        return step_loss
    scheduler.step()
    return step_loss


def scaled_step(optimizer, scaler) -> bool:
    """The optimizer step through fp16's GradScaler; False when it was skipped (the gradients overflowed)."""
    scale = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()  # lowers the scale after an overflow, raises it again after 2,000 good steps
    return scaler.get_scale() >= scale


def check_loss(loss: torch.Tensor, optimizer) -> None:
    """Stop with a message when the loss is not a number: the weights would be ruined by the next step."""
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"the loss became {loss.item()}: lower the learning rate (now {optimizer.param_groups[0]['lr']:g}) "
            "or check the data; the last good checkpoint (if any) is untouched")
