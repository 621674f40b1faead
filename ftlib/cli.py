"""The command line: the same engine as the notebooks, for scripts and servers.

    python -m ftlib finetune --task text-classification --train train.csv --eval dev.csv \\
        --text-column text --label-column label --out runs/reviews
    python -m ftlib finetune --task qa --train qa_train.jsonl --eval qa_dev.jsonl --out runs/qa

Writes ``OUT/metrics.json``, the fine-tuned model (``save_pretrained``) in ``OUT/model``
(for ``--method adapter`` and ``lora``: only the trained weights, ``trained.safetensors``,
and ``method.json`` saying how to rebuild the model), and resumable checkpoints in
``OUT/checkpoints``. With ``--task qa`` (records with ``question`` and ``answer`` fields) the
profile's causal LM learns to answer (lesson 09): LoRA through peft by default, ``OUT/model``
holds the peft adapter, and the metrics add exact match and token F1 of greedy answers.
Bad input ends with a one-line
message and exit status 2, before anything is written.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]

_DEFAULTS_NOTE = "values not given come from the profile (ftlib/catalog.py)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ftlib", description="Fine-tune a pretrained model.")
    sub = parser.add_subparsers(dest="command", required=True)
    ft = sub.add_parser("finetune", help="fine-tune a model on a data file", description=_DEFAULTS_NOTE)
    ft.add_argument("--task", required=True, choices=["text-classification", "qa"],
                    help="text-classification (text and label columns) or qa (question and answer fields)")
    ft.add_argument("--train", required=True, help="training data: .csv, .tsv or .jsonl")
    ft.add_argument("--eval", required=True, help="validation data, evaluated after every epoch")
    ft.add_argument("--test", help="test data, evaluated once at the end")
    ft.add_argument("--text-column", default="text")
    ft.add_argument("--label-column", default="label")
    ft.add_argument("--labels", help="comma-separated label names in id order (default: sorted values)")
    ft.add_argument("--method", type=_method,
                    help="what trains: full | head | freeze:K (first K blocks frozen) | adapter | lora "
                         "(default: full; for --task qa: lora, and only lora or full)")
    ft.add_argument("--lora-r", type=int, default=8)
    ft.add_argument("--lora-alpha", type=float, default=16)
    ft.add_argument("--lora-targets", help="comma-separated layer names (default: the query and value projections; "
                                           "for --task qa the profile's qa_lora_targets)")
    ft.add_argument("--adapter-size", type=int, default=64, help="adapter bottleneck width")
    ft.add_argument("--profile", choices=["full", "lite", "smoke"])
    ft.add_argument("--epochs", type=int)
    ft.add_argument("--lr", type=float)
    ft.add_argument("--batch-size", type=int)
    ft.add_argument("--max-length", type=int)
    ft.add_argument("--max-train", type=int, help="use at most N training examples (a random sample)")
    ft.add_argument("--patience", type=int, help="stop after N epochs without a better eval accuracy (eval loss for --task qa)")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints")
    ft.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    ft.add_argument("--out", required=True, help="output folder")
    return parser


def _method(value: str) -> str:
    from .methods import check_method

    try:
        return check_method(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _settings(args) -> dict:
    targets = args.lora_targets.split(",") if args.lora_targets else None
    if args.method == "lora":
        return {"lora_r": args.lora_r, "lora_alpha": args.lora_alpha, "lora_targets": targets}
    return {"adapter_size": args.adapter_size} if args.method == "adapter" else {}


def finetune(args) -> dict:
    from .catalog import get_profile
    from .data import check_classes, label_names, load_table, make_loader, prepare_classification, tokenize
    from .evaluation import evaluate
    from .methods import apply_method, save_finetuned
    from .models import count_parameters, load_text_classifier
    from .runtime import get_runtime
    from .training import TrainConfig, fit

    runtime = get_runtime(args.profile, seed=args.seed)
    profile = get_profile(runtime.profile)
    tables = {name: load_table(path) for name, path in
              [("train", args.train), ("eval", args.eval), ("test", args.test)] if path}
    if args.labels:
        labels = [s.strip() for s in args.labels.split(",")]
    else:  # every label seen in any file, so that a class missing from one file is noticed
        labels = label_names(tables.values(), args.label_column)
    train, evalset, testset = (
        prepare_classification(tables[name], args.text_column, args.label_column, labels)[0]
        if name in tables else None for name in ("train", "eval", "test"))
    if args.max_train is not None:
        if args.max_train < 1:
            raise ValueError(f"--max-train must be at least 1, got {args.max_train}: pass a number of examples, or leave it out")
        train = train.shuffle(seed=args.seed).select(range(min(args.max_train, len(train))))
    check_classes(train, "training", len(labels))
    check_classes(evalset, "eval", len(labels))
    pick = lambda given, default: default if given is None else given  # noqa: E731 (0 is a value, not "unset")
    batch_size, max_length = pick(args.batch_size, profile.batch_size), pick(args.max_length, profile.max_length)
    if batch_size < 1 or max_length < 2:
        raise ValueError(f"--batch-size must be at least 1 and --max-length at least 2, got {batch_size} and "
                         f"{max_length}: pass positive values, or leave them out to use the profile's")
    default_lr = {"head": profile.head_lr, "adapter": profile.peft_lr, "lora": profile.peft_lr}.get(args.method, profile.lr)
    config = TrainConfig(
        epochs=pick(args.epochs, profile.epochs), lr=pick(args.lr, default_lr),
        patience=args.patience, checkpoint_dir=str(Path(args.out) / "checkpoints"),
        save_every=50, resume=args.resume, progress=not args.quiet)

    print(runtime.stamp())
    model, tokenizer = load_text_classifier(profile.text_model, labels)
    apply_method(model, args.method, **_settings(args))
    loaders = {name: make_loader(tokenize(ds, tokenizer, max_length=max_length), tokenizer,
                                 batch_size=batch_size if name == "train" else 2 * batch_size,
                                 shuffle=name == "train", seed=args.seed)
               for name, ds in [("train", train), ("eval", evalset), ("test", testset)] if ds is not None}
    trainable, total = count_parameters(model)
    started = time.perf_counter()
    history = fit(model, loaders["train"], loaders["eval"], runtime=runtime, config=config)
    metrics = {
        "eval": evaluate(model, loaders["eval"], runtime),
        "train_seconds": time.perf_counter() - started,
        "trainable_params": trainable, "total_params": total, "epochs_run": len(history),
        "best_epoch": history.best_epoch, "profile": runtime.profile, "model": profile.text_model.name,
        "method": args.method, "labels": labels, "train_examples": len(train), "history": list(history),
    }
    if "test" in loaders:
        metrics["test"] = evaluate(model, loaders["test"], runtime)
    out = Path(args.out)
    metrics["saved_bytes"] = save_finetuned(model, tokenizer, out / "model", args.method, **_settings(args))
    _write_metrics(out, metrics)
    return metrics


def _write_metrics(out: Path, metrics: dict) -> None:
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, out / "metrics.json")  # atomic: never a half-written metrics file


def _qa_data(args) -> dict:
    """The question-answer files, checked, and the training sample if --max-train is given."""
    import random

    from .qa import load_qa

    sets = {name: load_qa(path) for name, path in [("train", args.train), ("eval", args.eval), ("test", args.test)]
            if path}
    if args.max_train is not None:
        if args.max_train < 1:
            raise ValueError(f"--max-train must be at least 1, got {args.max_train}: pass a number of examples, or leave it out")
        train = sets["train"]
        sets["train"] = random.Random(args.seed).sample(train, min(args.max_train, len(train)))
    return sets


def _qa_scores(model, tokenizer, records, loader, runtime, max_new_tokens: int) -> dict:
    from .evaluation import evaluate
    from .qa import generate_answers, qa_scores

    answers = generate_answers(model, tokenizer, [r["question"] for r in records], runtime,
                               max_new_tokens=max_new_tokens)
    return {**evaluate(model, loader, runtime), **qa_scores(answers, [r["answer"] for r in records])}


def finetune_qa(args) -> dict:
    """``--task qa``: the profile's causal LM learns to answer; LoRA (peft) or full fine-tuning."""
    from .catalog import get_profile
    from .lora import peft_config
    from .models import count_parameters, load_causal_lm
    from .qa import make_qa_loader
    from .runtime import get_runtime
    from .training import TrainConfig, fit

    if args.method not in ("lora", "full"):
        raise ValueError(f"--method {args.method} does not apply to --task qa: use lora (the default) or full")
    runtime = get_runtime(args.profile, seed=args.seed)
    profile = get_profile(runtime.profile)
    sets = _qa_data(args)
    pick = lambda given, default: default if given is None else given  # noqa: E731 (0 is a value, not "unset")
    batch_size, max_length = pick(args.batch_size, profile.qa_batch_size), pick(args.max_length, profile.qa_max_length)
    if batch_size < 1 or max_length < 2:
        raise ValueError(f"--batch-size must be at least 1 and --max-length at least 2, got {batch_size} and "
                         f"{max_length}: pass positive values, or leave them out to use the profile's")
    config = TrainConfig(
        epochs=pick(args.epochs, profile.qa_epochs), lr=pick(args.lr, profile.qa_lr if args.method == "lora" else profile.lr),
        patience=args.patience, monitor="eval_loss", checkpoint_dir=str(Path(args.out) / "checkpoints"),
        save_every=50, resume=args.resume, progress=not args.quiet)
    print(runtime.stamp())
    model, tokenizer = load_causal_lm(profile.causal_lm)
    if args.method == "lora":
        from peft import get_peft_model

        targets = args.lora_targets.split(",") if args.lora_targets else profile.qa_lora_targets
        model = get_peft_model(model, peft_config(targets, r=args.lora_r, alpha=args.lora_alpha, train_also=(),
                                                  task_type="CAUSAL_LM"))
    loaders = {name: make_qa_loader(records, tokenizer, batch_size=batch_size if name == "train" else 2 * batch_size,
                                    shuffle=name == "train", seed=args.seed, max_length=max_length)
               for name, records in sets.items()}
    trainable, total = count_parameters(model)
    started = time.perf_counter()
    history = fit(model, loaders["train"], loaders["eval"], runtime=runtime, config=config)
    score = lambda name: _qa_scores(model, tokenizer, sets[name], loaders[name], runtime,  # noqa: E731
                                    profile.qa_max_new_tokens)
    metrics = {
        "eval": score("eval"), "train_seconds": time.perf_counter() - started,
        "trainable_params": trainable, "total_params": total, "epochs_run": len(history),
        "best_epoch": history.best_epoch, "profile": runtime.profile, "model": profile.causal_lm.name,
        "method": args.method, "train_examples": len(sets["train"]), "history": list(history),
    }
    if "test" in sets:
        metrics["test"] = score("test")
    out = Path(args.out)
    model.save_pretrained(out / "model")  # peft: only the adapter and its config
    tokenizer.save_pretrained(out / "model")
    metrics["saved_bytes"] = sum(f.stat().st_size for f in (out / "model").glob("*.safetensors"))
    _write_metrics(out, metrics)
    return metrics


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.method is None:
        args.method = "lora" if args.task == "qa" else "full"
    from .checkpoints import CheckpointError
    from .data import DataError
    from .models import IntegrityError

    try:
        metrics = finetune_qa(args) if args.task == "qa" else finetune(args)
    except (DataError, IntegrityError, CheckpointError, FileNotFoundError, ModuleNotFoundError,
            ValueError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = {k: metrics[k] for k in ("eval", "train_seconds", "epochs_run")}
    if "test" in metrics:
        summary["test"] = metrics["test"]
    print(json.dumps(summary, indent=2))
    print(f"Saved the model and metrics.json in {args.out}")
    return 0
