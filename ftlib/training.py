"""The training loop: plain PyTorch, readable top to bottom.

Introduced in lesson 00. ``fit`` knows nothing about which model it trains: it needs a
model whose forward returns ``.loss`` when the batch holds ``labels`` (every Hugging
Face model does), a DataLoader of training batches and, optionally, one for
evaluation. Early stopping and checkpoints are small objects the loop asks; there is
no callback framework and no Trainer.
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from .checkpoints import Checkpointer
from .distributed import all_mean, barrier, is_main, unwrap
from .evaluation import evaluate
from .freezing import layer_groups
from .live import LiveView
from .models import count_parameters
from .runtime import Runtime, interactive

__all__ = ["EarlyStopping", "History", "TrainConfig", "fit", "preflight"]


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

    best_epoch: int | None = None
    stopped_early: bool = False


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


def _optimizer(model, config: TrainConfig) -> torch.optim.AdamW:
    # No weight decay on biases and LayerNorm weights (the BERT recipe).
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters: unfreeze something before training")
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.group_lrs:  # discriminative learning rates (lesson 04)
        groups = _split_by_group_lr(unwrap(model), groups, config)
    return adamw([g for g in groups if g["params"]], lr=config.lr)


def adamw(params, **kwargs) -> torch.optim.AdamW:
    """AdamW, fused into one kernel per step where PyTorch has one (CPU and CUDA), as the Trainer does.

    PyTorch's default on a CPU is a Python loop over the tensors, which took about half of a
    training step of the lite encoder (bench/run.py, `trainer_ratio`). The fused kernel
    computes the same update, up to rounding.
    """
    params = list(params)  # a generator such as model.parameters() would be used up below
    tensors = [p for g in params for p in g["params"]] if params and isinstance(params[0], dict) else params
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in tensors)
    return torch.optim.AdamW(params, fused=fused or None, **kwargs)


def _split_by_group_lr(model, groups: list[dict], config: TrainConfig) -> list[dict]:
    """Each optimizer group cut by learning rate, highest first, from ``config.group_lrs``."""
    by_name = layer_groups(model)
    unknown = [g for g in config.group_lrs if g not in by_name]
    bad = {g: lr for g, lr in config.group_lrs.items() if not (lr > 0 and math.isfinite(lr))}
    if unknown or bad:
        raise ValueError(f"group_lrs must map layer groups {list(by_name)} to positive learning rates; "
                         f"got unknown groups {unknown} and bad rates {bad}")
    lr_of = {id(p): float(config.group_lrs.get(name, config.lr)) for name, ps in by_name.items() for p in ps}
    split = []
    for group in groups:
        for lr in sorted({lr_of[id(p)] for p in group["params"]}, reverse=True):
            split.append({**group, "lr": lr, "params": [p for p in group["params"] if lr_of[id(p)] == lr]})
    return split


def fit(model, train_loader, eval_loader=None, *, runtime: Runtime, config: TrainConfig = TrainConfig()) -> History:
    """Train `model` and return its history, one record per epoch.

    With an `eval_loader`, each epoch ends with an evaluation; the best epoch (by
    ``config.monitor``) is remembered and its weights are restored at the end. Under
    torchrun, pass a model wrapped by ``ftlib.distributed.wrap``: only rank 0 saves and prints.
    """
    model.to(runtime.device)
    verbose = config.progress and is_main()
    if verbose and runtime.device == "cuda":
        print(preflight(unwrap(model), train_loader, runtime))
    optimizer = _optimizer(model, config)
    steps_per_epoch = math.ceil(len(train_loader) / config.grad_accum_steps)
    total_steps = steps_per_epoch * config.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    scaler = runtime.grad_scaler()
    stopper = EarlyStopping(config.monitor, config.patience)
    ckpt = Checkpointer(config.checkpoint_dir) if config.checkpoint_dir else None
    state = {"epoch": 0, "batch": 0, "step": 0, "loss_sum": 0.0, "loss_count": 0, "history": []}
    if config.resume and ckpt.latest() is not None:
        state = ckpt.load(unwrap(model), optimizer, scheduler, scaler, runtime.device)
        stopper.load_state_dict(state["stopper"])
        if verbose and state["epoch"] >= config.epochs:
            print(f"{ckpt.latest()} has finished all {config.epochs} epochs: nothing left to train.")
        elif verbose:
            print(f"Resumed from {ckpt.latest()} (epoch {state['epoch'] + 1}, batch {state['batch']})")
    history, best_weights = History(state["history"]), None
    live = None
    if verbose and interactive() and _has_ipython_display():  # curves in place in Jupyter and Colab
        metric = config.monitor.removeprefix("eval_") if config.monitor != "eval_loss" else "accuracy"
        live = LiveView(total_epochs=config.epochs, metric=metric)

    def checkpoint():
        if ckpt is not None and is_main():
            ckpt.save(unwrap(model), optimizer, scheduler, scaler,
                      {**state, "history": list(history), "stopper": stopper.state_dict(), "config": asdict(config)})
        barrier()  # other processes wait until the checkpoint is complete

    while state["epoch"] < config.epochs and not stopper.should_stop:
        started = time.perf_counter()
        _train_one_epoch(model, train_loader, optimizer, scheduler, scaler, runtime, config, state, checkpoint, live)
        record = {"epoch": state["epoch"] + 1, "step": state["step"],
                  "train_loss": all_mean(state["loss_sum"], state["loss_count"]),  # over all processes
                  "lr": scheduler.get_last_lr()[0]}
        if eval_loader is not None:
            record.update({f"eval_{k}": v for k, v in evaluate(unwrap(model), eval_loader, runtime).items()})
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        if stopper.update(record):
            best_weights = _snapshot(unwrap(model))
            if ckpt is not None and is_main():
                ckpt.save_best(unwrap(model))
        state.update(epoch=state["epoch"] + 1, batch=0, loss_sum=0.0, loss_count=0)
        checkpoint()
        if live is not None:
            live.epoch(record)
        if verbose:
            print(_summary(record, config.epochs))

    history.best_epoch, history.stopped_early = stopper.best_epoch, stopper.should_stop
    if best_weights is not None:
        unwrap(model).load_state_dict(best_weights, strict=False)  # what training changed
    elif stopper.best_epoch is not None and ckpt is not None:
        ckpt.load_best(unwrap(model), runtime.device)  # the best epoch happened before a resume
    if verbose and stopper.best_epoch is not None and stopper.best_epoch != len(history):
        print(f"Restored the weights of epoch {stopper.best_epoch} (best {config.monitor}).")
    return history


def _snapshot(model) -> dict:
    """What training can change, copied to the CPU: trainable parameters and buffers (BatchNorm statistics).

    With LoRA or a frozen backbone that is a small fraction of the model, so keeping the best
    epoch's weights costs little memory.
    """
    keep = {n for n, p in model.named_parameters() if p.requires_grad} | {n for n, _ in model.named_buffers()}
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items() if k in keep}


def preflight(model, loader, runtime: Runtime) -> str:
    """A GPU memory estimate for the coming training step, and a warning when it will not fit.

    The estimate (``ftlib.memory``) takes the loader's batch size and longest example; a
    run that does not fit still trains, because ``fit`` splits batches after an
    out-of-memory error, but more slowly.
    """
    from .memory import device_budget, estimate_training_memory

    sampler = loader.batch_sampler
    try:
        estimate = estimate_training_memory(model, batch_size=sampler.batch_size, seq_len=max(sampler.lengths),
                                            precision=runtime.precision, trainable=count_parameters(model)[0],
                                            flash_attention=True)
    except (AttributeError, KeyError, TypeError, ValueError):  # not a transformer whose shape it knows
        return "Pre-flight: no memory estimate for this model."
    budget = device_budget(runtime.device)
    need, have = estimate.total / 1e9, budget / 1e9
    if estimate.total <= 0.9 * budget:
        return f"Pre-flight: about {need:.1f} GB of {have:.1f} GB GPU memory needed."
    return (f"Pre-flight warning: this step needs about {need:.1f} GB but the GPU has {have:.1f} GB. Training "
            "will split batches if it runs out of memory (slower); or lower batch_size or max_length, or "
            "train fewer parameters (LoRA).")


def _has_ipython_display() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def _summary(record: dict, epochs: int) -> str:
    shown = ["train_loss", "eval_loss", "eval_accuracy", "eval_f1_macro"]
    parts = [f"{k} {record[k]:.4f}" for k in shown if k in record]
    return f"epoch {record['epoch']}/{epochs}: " + "  ".join(parts) + f"  ({record['seconds']:.0f} s)"


def _train_one_epoch(model, loader, optimizer, scheduler, scaler, runtime, config, state, checkpoint, live=None):
    """One pass over the data, from batch ``state['batch']`` (non-zero after a resume)."""
    model.train()
    if hasattr(loader.batch_sampler, "set_epoch"):
        loader.batch_sampler.set_epoch(state["epoch"], start=state["batch"])
    n_batches = len(loader)
    bar = tqdm(total=n_batches, initial=state["batch"], desc=f"epoch {state['epoch'] + 1}/{config.epochs}",
               disable=not (config.progress and interactive() and is_main()), leave=False)  # no bar in logs
    batches = iter(loader)
    while group := list(itertools.islice(batches, config.grad_accum_steps)):  # one optimizer step's batches
        losses = _accumulate(model, group, optimizer, scaler, runtime, config, state)
        state["batch"] += len(group)
        state["loss_sum"] += sum(losses)
        state["loss_count"] += len(losses)
        _optimizer_step(model, optimizer, scheduler, scaler, config)
        state["step"] += 1
        if config.save_every and state["step"] % config.save_every == 0:
            checkpoint()
        bar.update(len(group))
        if live is not None:
            live.step(state["step"], sum(losses) / len(losses))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    bar.close()


def _accumulate(model, group, optimizer, scaler, runtime, config, state) -> list[float]:
    """Forward and backward over the micro-batches of one optimizer step; their losses.

    On a GPU out-of-memory error the step's gradients are cleared, every batch is cut into
    twice as many pieces (``state['split']``, kept for the rest of the run) and the step is
    computed again: each piece needs less memory, and the effective batch is unchanged.
    """
    while True:
        split = state.get("split", 1)
        try:
            return [_forward_backward(model, batch, scaler, runtime, config, state, split) for batch in group]
        except torch.OutOfMemoryError:
            pass  # handled outside the except block, so that the failed step's tensors are freed
        optimizer.zero_grad(set_to_none=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        largest = max(len(batch["labels"]) for batch in group)
        if split >= largest:
            raise torch.OutOfMemoryError(
                "out of memory even with one example per micro-batch: lower max_length, train fewer "
                "parameters (method 'lora' or 'head'), or choose a smaller model")
        state["split"] = split * 2
        if is_main():
            print(f"Out of memory: each batch of {largest} now runs as {state['split']} micro-batches of about "
                  f"{math.ceil(largest / state['split'])}, with their gradients accumulated (the effective batch "
                  "is unchanged).")


def _forward_backward(model, batch, scaler, runtime, config, state, split: int) -> float:
    """The loss of one batch, computed in `split` pieces whose gradients add up to the batch's."""
    batch = {k: v.to(runtime.device) for k, v in batch.items()}
    n = len(batch["labels"])
    pieces = [None] if split == 1 else torch.arange(n).chunk(min(split, n))
    total = 0.0
    for rows in pieces:
        part = batch if rows is None else {k: v[rows] for k, v in batch.items()}
        with runtime.autocast():
            loss = model(**part).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss.item()} at epoch {state['epoch'] + 1}, step {state['step']}: "
                f"lower the learning rate (now {config.lr:g}) or check the data; the last good "
                "checkpoint (if any) is untouched")
        # Each piece's mean loss, weighted by its share of the batch, then of the optimizer step.
        scaled = loss / config.grad_accum_steps if rows is None else loss * (len(rows) / n) / config.grad_accum_steps
        (scaler.scale(scaled) if scaler else scaled).backward()
        total += loss.item() * (1.0 if rows is None else len(rows) / n)
    return total


def _optimizer_step(model, optimizer, scheduler, scaler, config):
    if scaler is not None:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    if config.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], config.max_grad_norm)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
