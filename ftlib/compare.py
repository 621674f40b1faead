"""Comparing fine-tuning methods on one budget: one table, one row per method.

Introduced in lesson 10 (the capstone). :func:`compare_methods` fine-tunes a freshly
loaded model once per method, with the same training data, epochs, batch size and seed
for every method and each method's own learning rate from the profile, and measures
what a choice between methods turns on:

    accuracy, f1_macro   on the test split, with the best epoch's weights (by validation);
                         loss: the test cross-entropy
    trainable, total     parameter counts after the method is applied
    train_seconds        wall-clock seconds of ``fit`` (validation passes included)
    peak_memory_bytes    the most memory training took above what the loaded model held
                         (``ftlib.peak_memory.PeakMemory``: GPU memory, or the process's RSS on a CPU)
    checkpoint_bytes     the weights ``ftlib.methods.save_finetuned`` wrote

The same runs work from the command line (``python -m ftlib finetune``);
:func:`export_splits` writes the splits as files it reads, and :func:`row_from_cli`
turns its ``metrics.json`` into a row of the same table.
"""
from __future__ import annotations

import csv
import re
import tempfile
import time
from pathlib import Path

from .data import make_loader, tokenize
from .evaluation import evaluate
from .freezing import count_parameters
from .methods import apply_method, check_method, method_lr, method_settings, save_finetuned
from .models import load_text_classifier, load_tokenizer
from .runtime import seed_everything
from .training import TrainConfig, fit

__all__ = ["compare_methods", "export_splits", "format_table", "row_from_cli"]


def _run_one(method, loaders, *, source, labels, runtime, config, folder, seed, settings) -> dict:
    """Fine-tune a freshly loaded model with `method` and measure it: one row of the table."""
    from .peak_memory import PeakMemory, release_freed_memory  # lesson 01's memory meter

    release_freed_memory()  # what the previous run freed should not count against this one
    seed_everything(seed)  # the same new head and the same dropout masks for every method
    model, tokenizer = load_text_classifier(source, labels)
    apply_method(model, method, **settings)
    trainable, total = count_parameters(model)
    model.to(runtime.device)  # the weights are the baseline: the peak is what training adds
    release_freed_memory()
    with PeakMemory(runtime.device) as peak:
        started = time.perf_counter()
        history = fit(model, loaders["train"], loaders["validation"], runtime=runtime, config=config)
        seconds = time.perf_counter() - started
    test = evaluate(model, loaders["test"], runtime)
    saved = save_finetuned(model, tokenizer, folder / re.sub(r"\W", "_", method), method, **settings)
    del model
    release_freed_memory()
    return {"method": method, "lr": config.lr, "accuracy": test["accuracy"], "f1_macro": test["f1_macro"],
            "loss": test["loss"],
            "trainable": trainable, "total": total, "percent": 100 * trainable / total,
            "train_seconds": seconds, "peak_memory_bytes": peak.bytes, "checkpoint_bytes": saved,
            "best_epoch": history.best_epoch, "epochs": config.epochs}


def compare_methods(methods, train_ds, val_ds, test_ds, *, source, labels, runtime, profile,
                    epochs: int | None = None, lrs: dict | None = None, seed: int = 0,
                    save_dir: str | Path | None = None, adapter_size: int = 64, lora_r: int = 8,
                    lora_alpha: float = 16, lora_targets=None, verbose: bool = True) -> list[dict]:
    """Fine-tune `source` once per method on the same budget; return one row (a dict) per method.

    Args:
        methods: names as in ``ftlib.methods`` and the command line: full, head, freeze:K, adapter, lora.
        train_ds, val_ds, test_ds: ``datasets.Dataset`` with ``text`` and integer ``label``
            (as ``ftlib.data.prepare_classification`` returns them). Validation picks the best epoch;
            test is evaluated once, at the end.
        source, labels: the pretrained model (a ``ModelSource``) and the class names.
        runtime, profile: device and precision; batch size, max length, epochs
            (``profile.compare_epochs``) and learning rates (``ftlib.methods.method_lr``).
        epochs, lrs: override the profile's epochs, or the learning rate of some methods ({"lora": 1e-3}).
        save_dir: where each fine-tune is saved (one folder per method); None: a temporary folder.
        verbose: print one line per finished method.

    Methods run in the order given; on a CPU the peak is the process's resident memory, so
    order them from the cheapest to the most expensive (memory the allocator keeps from an
    earlier, larger run can hide part of a later run's peak).
    """
    methods = [check_method(m) for m in methods]
    if not methods:
        raise ValueError("methods is empty: pass at least one, e.g. ['head', 'lora', 'full']")
    unknown = set(lrs or {}) - set(methods)
    if unknown:
        raise ValueError(f"lrs names methods that are not compared: {sorted(unknown)}; use names from {methods}")
    tokenizer = load_tokenizer(source)
    batch = profile.batch_size
    loaders = {name: make_loader(tokenize(ds, tokenizer, max_length=profile.max_length), tokenizer,
                                 batch_size=batch if name == "train" else 2 * batch,  # as the command line
                                 shuffle=name == "train", seed=seed)
               for name, ds in [("train", train_ds), ("validation", val_ds), ("test", test_ds)]}
    settings = dict(adapter_size=adapter_size, lora_r=lora_r, lora_alpha=lora_alpha, lora_targets=lora_targets)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ftlib-compare-") as tmp:
        folder = Path(save_dir) if save_dir is not None else Path(tmp)
        for method in methods:
            lr = (lrs or {}).get(method, method_lr(profile, method))
            config = TrainConfig(epochs=epochs or profile.compare_epochs, lr=lr, progress=False)
            row = _run_one(method, loaders, source=source, labels=labels, runtime=runtime, config=config,
                           folder=folder, seed=seed, settings=method_settings(method, **settings))
            if verbose:
                print(f"{method:<9} test accuracy {row['accuracy']:.3f} · {row['train_seconds']:.0f} s · "
                      f"{row['trainable']:,} trainable parameters")
            rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows as a plain-text table, one line per method; a missing value prints as '-'."""
    columns = [  # (key, header, format)
        ("method", "method", "{}"), ("lr", "lr", "{:g}"), ("accuracy", "test acc", "{:.3f}"),
        ("f1_macro", "macro-F1", "{:.3f}"), ("trainable", "trainable", "{:,}"), ("percent", "% of all", "{:.3g}"),
        ("train_seconds", "train s", "{:.1f}"), ("peak_memory_bytes", "peak MB", "{:.0f}"),
        ("checkpoint_bytes", "checkpoint MB", "{:.3g}"),
    ]
    scale = {"peak_memory_bytes": 1e-6, "checkpoint_bytes": 1e-6}
    cells = [[h for _, h, _ in columns]]
    for row in rows:
        cells.append([fmt.format(row[k] * scale.get(k, 1)) if row.get(k) is not None else "-"
                      for k, _, fmt in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in cells]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def export_splits(folder: str | Path, labels: list[str], **splits) -> dict[str, Path]:
    """Write each split (a Dataset with ``text`` and integer ``label``) as ``folder/NAME.csv`` with label names.

    These are the files the command line reads: ``export_splits(d, labels, train=..., eval=...)``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, ds in splits.items():
        paths[name] = folder / f"{name}.csv"
        with open(paths[name], "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows((text, labels[y]) for text, y in zip(ds["text"], ds["label"]))
    return paths


def row_from_cli(metrics: dict, *, split: str = "test") -> dict:
    """A row of the comparison table from the command line's ``metrics.json`` (no peak memory: it is not measured there)."""
    if split not in metrics:
        raise ValueError(f"metrics.json has no {split!r} results: run the command line with --test FILE")
    return {"method": metrics["method"], "lr": None, "accuracy": metrics[split]["accuracy"],
            "f1_macro": metrics[split]["f1_macro"], "loss": metrics[split]["loss"],
            "trainable": metrics["trainable_params"],
            "total": metrics["total_params"], "percent": 100 * metrics["trainable_params"] / metrics["total_params"],
            "train_seconds": metrics["train_seconds"], "peak_memory_bytes": None,
            "checkpoint_bytes": metrics["saved_bytes"], "best_epoch": metrics["best_epoch"],
            "epochs": metrics["epochs_run"]}
