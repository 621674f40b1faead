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

With ``seeds=[0, 1, 2]`` each method runs once per seed and its row holds the means, the
standard deviation over seeds of the test scores (``accuracy_sd``, ``f1_macro_sd``, ``loss_sd``)
and the single runs (``runs``); :func:`spread_note` and :func:`gap_note` say in words what
that spread allows one to conclude (lessons 04, 05 and 10).

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
from .evaluation import evaluate, seed_summary
from .freezing import count_parameters
from .methods import apply_method, check_method, method_lr, method_settings, save_finetuned
from .models import load_text_classifier, load_tokenizer
from .runtime import seed_everything
from .training import TrainConfig, fit

__all__ = ["compare_methods", "export_splits", "format_table", "gap_note", "mean_over_seeds", "pooled_sd",
           "row_from_cli", "spread_note"]


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
                    epochs: int | None = None, lrs: dict | None = None, seed: int = 0, seeds=None,
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
        seed: the seed of every run (new head, data order, dropout).
        seeds: several seeds instead (e.g. ``[0, 1, 2]``): each method runs once per seed, and its row
            holds the means over seeds (see :func:`mean_over_seeds`), the standard deviations
            ``accuracy_sd``, ``f1_macro_sd`` and ``loss_sd``, and the single runs in ``runs``.
        save_dir: where each fine-tune is saved (one folder per method; with several seeds, one per
            method and seed); None: a temporary folder.
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
    several = seeds is not None
    seeds = [seed] if seeds is None else [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    tokenizer = load_tokenizer(source)
    batch = profile.batch_size
    tokenized = {name: tokenize(ds, tokenizer, max_length=profile.max_length)
                 for name, ds in [("train", train_ds), ("validation", val_ds), ("test", test_ds)]}

    def loaders_for(s):  # the data order follows the seed, as on the command line
        return {name: make_loader(ds, tokenizer, batch_size=batch if name == "train" else 2 * batch,
                                  shuffle=name == "train", seed=s) for name, ds in tokenized.items()}

    settings = dict(adapter_size=adapter_size, lora_r=lora_r, lora_alpha=lora_alpha, lora_targets=lora_targets)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ftlib-compare-") as tmp:
        folder = Path(save_dir) if save_dir is not None else Path(tmp)
        for method in methods:
            lr = (lrs or {}).get(method, method_lr(profile, method))
            config = TrainConfig(epochs=epochs or profile.compare_epochs, lr=lr, progress=False)
            runs = []
            for s in seeds:
                row = _run_one(method, loaders_for(s), source=source, labels=labels, runtime=runtime, config=config,
                               folder=folder / f"seed{s}" if several else folder, seed=s,
                               settings=method_settings(method, **settings))
                if verbose:
                    print(f"{method:<9} {f'seed {s} ' if several else ''}test accuracy {row['accuracy']:.3f} · "
                          f"{row['train_seconds']:.0f} s · {row['trainable']:,} trainable parameters")
                runs.append(dict(row, seed=s))
            rows.append(mean_over_seeds(runs) if several else row)
    return rows


def mean_over_seeds(runs: list[dict]) -> dict:
    """One row from the rows of the same method run with several seeds.

    Numbers that differ between runs become their means (the same in every run: kept as they are);
    ``accuracy_sd``, ``f1_macro_sd`` and ``loss_sd`` hold the sample
    standard deviations over seeds (``ftlib.evaluation.seed_summary``, lesson 07; 0 for one run);
    ``seeds`` the seeds and ``runs`` the single rows, in order.
    """
    if not runs or len({r["method"] for r in runs}) != 1:
        raise ValueError("mean_over_seeds takes the rows of one method (at least one)")
    row = {}
    for key, value in runs[0].items():
        values = [r.get(key) for r in runs]
        if key == "seed" or isinstance(value, bool) or not all(isinstance(v, (int, float)) for v in values) \
                or all(v == value for v in values):  # text, and numbers that are the same in every run
            row[key] = value
        else:
            row[key] = sum(values) / len(values)
    for key in ("accuracy", "f1_macro", "loss"):
        if all(isinstance(r.get(key), (int, float)) for r in runs):
            row[f"{key}_sd"] = seed_summary([r[key] for r in runs])["std"] if len(runs) > 1 else 0.0
    row.pop("seed", None)
    row["seeds"] = [r.get("seed") for r in runs]
    row["runs"] = list(runs)
    return row


def pooled_sd(rows: list[dict], key: str = "accuracy") -> float:
    """The seed-to-seed standard deviation of `key`, pooled over rows that each hold several seeds.

    The square root of the mean of the rows' variances, each weighted by its degrees of freedom
    (seeds - 1): one noise level for a table whose methods each ran the same seeds.
    """
    pairs = [(len(r["runs"]) - 1, r[f"{key}_sd"]) for r in rows if len(r.get("runs", [])) > 1]
    if not pairs:
        raise ValueError("no row holds several seeds: run compare_methods(..., seeds=[0, 1, 2])")
    return (sum(df * sd ** 2 for df, sd in pairs) / sum(df for df, _ in pairs)) ** 0.5


def spread_note(sd: float, n: int = 1, *, what: str = "test accuracy") -> str:
    """What a seed-to-seed standard deviation `sd` means for comparing two means of `n` seeds each.

    The difference of two independent runs has sd √2·σ; of two means of n seeds, σ·√(2/n).
    A gap below about twice that (2.8·σ for single runs) is within the noise.
    """
    single, means = 2 ** 0.5 * sd, (2 / n) ** 0.5 * sd
    text = (f"seed-to-seed sd of {what}: σ = {sd:.3f}. The difference of two single-seed runs has sd "
            f"√2·σ = {single:.3f}, so a gap below about 2·√2·σ = {2 * single:.3f} is not evidence of a difference")
    if n > 1:
        text += (f"; between means of {n} seeds the difference has sd σ·√(2/{n}) = {means:.3f}, "
                 f"and a gap below about {2 * means:.3f} is not evidence either")
    if sd == 0:
        text += " (σ = 0: every seed scored the same, for instance because every run predicts one class; it is no noise level)"
    return text + "."


def gap_note(name_a: str, mean_a: float, name_b: str, mean_b: float, sd: float, n: int = 1,
             n_b: int | None = None) -> str:
    """One sentence, from the numbers: is `name_a` − `name_b` beyond the seed-to-seed noise?

    `mean_a` is a mean of `n` seeds, `mean_b` of `n_b` (default: `n`); `sd` is the seed-to-seed
    standard deviation σ (e.g. :func:`pooled_sd`). The difference has sd σ·√(1/n + 1/n_b), and a
    gap counts as evidence only beyond twice that.
    """
    n_b = n if n_b is None else n_b
    gap, sd_diff = mean_a - mean_b, sd * (1 / n + 1 / n_b) ** 0.5
    runs = (f"means of {n} seeds" if n > 1 else "single runs") if n == n_b else \
        f"{'mean of ' + str(n) + ' seeds' if n > 1 else 'one seed'} vs {'mean of ' + str(n_b) + ' seeds' if n_b > 1 else 'one seed'}"
    if sd_diff == 0:
        verdict = "no spread was measured (σ = 0: every seed scored the same), so the seeds cannot say which gaps are noise"
    elif abs(gap) > 2 * sd_diff:
        better, worse = (name_a, name_b) if gap > 0 else (name_b, name_a)
        verdict = f"more than 2 sd of the difference: evidence that {better} beat {worse} on this budget"
    else:
        verdict = "within 2 sd of the difference: no evidence of a difference on this budget"
    return f"{name_a} − {name_b}: {gap:+.3f} ({runs}; sd of the difference {sd_diff:.3f}), {verdict}"


def format_table(rows: list[dict]) -> str:
    """The rows as a plain-text table, one line per method; a missing value prints as '-'.

    Rows of several seeds (``compare_methods(..., seeds=...)``) show accuracy and macro-F1 as mean ± sd.
    """
    columns = [  # (key, header, format)
        ("method", "method", "{}"), ("lr", "lr", "{:g}"), ("accuracy", "test acc", "{:.3f}"),
        ("f1_macro", "macro-F1", "{:.3f}"), ("trainable", "trainable", "{:,}"), ("percent", "% of all", "{:.3g}"),
        ("train_seconds", "train s", "{:.1f}"), ("peak_memory_bytes", "peak MB", "{:.0f}"),
        ("checkpoint_bytes", "checkpoint MB", "{:.3g}"),
    ]
    scale = {"peak_memory_bytes": 1e-6, "checkpoint_bytes": 1e-6}
    seeds = max((len(row.get("runs", [])) for row in rows), default=0)
    if seeds > 1:  # means over seeds: accuracy and macro-F1 with their sd over seeds
        columns[2:4] = [("accuracy", f"test acc (mean ± sd, {seeds} seeds)", "{:.3f} ± {:.3f}"),
                        ("f1_macro", "macro-F1 (mean ± sd)", "{:.3f} ± {:.3f}")]
    cells = [[h for _, h, _ in columns]]
    for row in rows:
        cells.append([("-" if row.get(k) is None else
                       fmt.format(row[k], row.get(f"{k}_sd", 0.0)) if "±" in fmt else
                       fmt.format(row[k] * scale.get(k, 1))) for k, _, fmt in columns])
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
