"""The command line: the same engine as the notebooks, for scripts and servers.

    python -m ftlib finetune --task text-classification --train train.csv --eval dev.csv \\
        --text-column text --label-column label --out runs/reviews
    python -m ftlib finetune --task qa --train qa_train.jsonl --eval qa_dev.jsonl --out runs/qa
    python -m ftlib finetune --task preference --train pairs.jsonl --eval pairs_dev.jsonl --out runs/dpo

    python -m ftlib predict --model runs/reviews --input new.csv --out predicted.csv
    python -m ftlib evaluate --model runs/reviews --input labelled.csv
    python -m ftlib export --model runs/reviews-lora --out runs/reviews-merged

``finetune`` writes ``OUT/metrics.json``, the fine-tune in ``OUT/model`` (``ftlib.methods``: a
transformers model, a peft adapter for ``--method lora``, or the adapter weights for
``--method adapter``, with ``method.json`` saying how to rebuild the model), resumable
checkpoints in ``OUT/checkpoints`` (only what trains, when part of the model is frozen), and
with ``--merge`` a plain transformers model in ``OUT/merged``. With ``--task qa`` (records
with ``question`` and ``answer`` fields) the profile's causal LM learns to answer (lesson 09):
LoRA through peft by default, and the metrics add exact match and token F1 of greedy answers.
With ``--task preference`` (``prompt``, ``chosen``, ``rejected``) a LoRA adapter learns the
preferences by DPO (lesson 11); ``predict`` answers with it as with a qa run.
``predict`` and ``evaluate`` open any of these (``ftlib/inference.py``).
Bad input ends with a one-line message and exit status 2, before anything is written.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["main"]

_DEFAULTS_NOTE = "values not given come from the profile (ftlib/catalog.py)"


def build_parser() -> argparse.ArgumentParser:
    from . import adapters, lora  # the method defaults are written there, once
    from .runtime import PROFILE_NAMES

    parser = argparse.ArgumentParser(prog="python -m ftlib", description="Fine-tune a pretrained model.")
    sub = parser.add_subparsers(dest="command", required=True)
    ft = sub.add_parser("finetune", help="fine-tune a model on a data file", description=_DEFAULTS_NOTE)
    ft.add_argument("--task", required=True, choices=["text-classification", "qa", "preference"],
                    help="text-classification (text and label columns), qa (question and answer fields) or "
                         "preference (prompt, chosen and rejected fields: DPO on the profile's causal LM)")
    ft.add_argument("--train", required=True, help="training data: .csv, .tsv or .jsonl")
    ft.add_argument("--eval", required=True, help="validation data, evaluated after every epoch")
    ft.add_argument("--test", help="test data, evaluated once at the end")
    ft.add_argument("--text-column", default="text")
    ft.add_argument("--label-column", default="label")
    ft.add_argument("--labels", help="comma-separated label names in id order (default: sorted values)")
    ft.add_argument("--method", type=_method,
                    help="what trains: full | head | freeze:K (first K blocks frozen) | adapter | lora "
                         "(default: full; for --task qa: lora, and only lora or full)")
    ft.add_argument("--lora-r", type=int, default=lora.R)
    ft.add_argument("--lora-alpha", type=float, default=lora.ALPHA)
    ft.add_argument("--lora-targets", help="comma-separated layer names (default: every linear layer of every "
                                           "block; for --task qa the profile's qa_lora_targets)")
    ft.add_argument("--adapter-size", type=int, default=adapters.BOTTLENECK, help="adapter bottleneck width")
    ft.add_argument("--profile", choices=PROFILE_NAMES)
    ft.add_argument("--epochs", type=int)
    ft.add_argument("--lr", type=float)
    ft.add_argument("--batch-size", type=int)
    ft.add_argument("--max-length", type=int)
    ft.add_argument("--max-train", type=int, help="use at most N training examples (a random sample)")
    ft.add_argument("--patience", type=int, help="stop after N epochs without a better eval accuracy (eval loss for --task qa)")
    ft.add_argument("--beta", type=float, help="--task preference: DPO's beta (default: the profile's pref_beta)")
    ft.add_argument("--sft-epochs", type=int, help="--task preference: epochs on the chosen answers before DPO, the "
                                                      "reference (default: the profile's pref_sft_epochs; 0: none)")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints")
    ft.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    ft.add_argument("--merge", action="store_true",
                    help="also write OUT/merged: LoRA folded into a plain transformers model that pipeline() loads")
    ft.add_argument("--out", required=True, help="output folder")
    for name, text in [("predict", "predict the label (or answer) of every text in a file"),
                       ("evaluate", "score a fine-tune on a labelled file")]:
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--model", required=True, help="a run folder (finetune's --out) or a model folder")
        cmd.add_argument("--input", required=True, help=".csv, .tsv or .jsonl")
        cmd.add_argument("--text-column", help="default: text (question for --task qa runs)")
        if name == "evaluate":
            cmd.add_argument("--label-column", help="default: label (answer for --task qa runs)")
        cmd.add_argument("--out", required=name == "predict",
                         help="the predictions, in the format its name ends with" if name == "predict" else
                         "the report as JSON (default: MODEL/evaluation-INPUT.json)")
        cmd.add_argument("--batch-size", type=int, default=64)
        cmd.add_argument("--max-length", type=int, help="default: the run's --max-length")
        cmd.add_argument("--profile", choices=PROFILE_NAMES,
                         help="the profile the run was trained with (default: as method.json says)")
        cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    ex = sub.add_parser("export", help="write a LoRA run as a plain transformers model (LoRA merged)")
    ex.add_argument("--model", required=True, help="a run folder or a model folder")
    ex.add_argument("--out", required=True, help="the folder to write")
    ex.add_argument("--profile", choices=PROFILE_NAMES)
    return parser


def _method(value: str) -> str:
    from .methods import check_method

    try:
        return check_method(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _settings(args, model_type: str | None = None) -> dict:
    from .lora import ALL_LINEAR_TARGETS
    from .methods import method_settings

    targets = args.lora_targets.split(",") if args.lora_targets else None
    if args.method == "lora" and targets is None and model_type in ALL_LINEAR_TARGETS:
        targets = list(ALL_LINEAR_TARGETS[model_type])  # the command line's default (ftlib/lora.py says why)
    return method_settings(args.method, adapter_size=args.adapter_size, lora_r=args.lora_r,
                           lora_alpha=args.lora_alpha, lora_targets=targets)


def _labels(args, tables: dict) -> list[str]:
    """The label set: --labels as declared, or the training file's labels, which every other file must keep to."""
    from .data import DataError, label_names, require_column, unseen_labels

    if args.labels:
        return [s.strip() for s in args.labels.split(",") if s.strip()]
    labels = label_names([tables["train"]], args.label_column)
    if len(labels) < 2:  # said first: it is why any other file's labels look unknown
        raise DataError(f"the training set has only one class (label {labels[0] if labels else None!r}): "
                        "a classifier needs examples of at least two classes")
    for name in ("eval", "test"):
        if name in tables:
            require_column(tables[name], args.label_column, "label")
            unseen = unseen_labels(tables[name], args.label_column, labels)
            if unseen:
                raise DataError(
                    f"{getattr(args, name)} has labels {unseen[:5]} that never appear in the training file "
                    f"{args.train}, so the model could never predict them: fix the file, or declare the full "
                    f"label set on purpose with --labels {','.join(labels + unseen)}")
    return labels


def _warn_untrained(train, labels: list[str]) -> None:
    seen = set(train["label"])
    for i, name in enumerate(labels):
        if i not in seen:
            print(f"warning: class {name!r} has no training examples: the model cannot learn to predict it",
                  file=sys.stderr)


def _selection(history, config, args) -> dict:
    """Which epoch was kept, chosen on which set: the eval scores of that epoch are optimistic."""
    return {"best_epoch": history.best_epoch, "monitor": config.monitor, "chosen_on": "eval", "eval_file": args.eval,
            "note": "the weights kept are those of the epoch with the best "
                    f"{config.monitor} on the eval file, so the eval scores are optimistic; "
                    + ("the test scores come from a file that chose nothing: an unbiased estimate"
                       if args.test else "pass --test FILE for an unbiased estimate")}


def finetune(args) -> dict:
    from .data import check_classes, count_truncated, load_table, make_loader, prepare_classification, tokenize
    from .evaluation import evaluate
    from . import setup
    from .methods import apply_method, method_lr, save_finetuned, save_merged
    from .models import count_parameters, load_text_classifier
    from .training import TrainConfig, fit

    if args.merge and args.method == "adapter":
        raise ValueError("--merge does not apply to --method adapter: adapters add layers that a plain "
                         "transformers model does not have; leave --merge out (predict and evaluate read the run)")
    runtime, profile = setup(args.profile, seed=args.seed)  # seeded: --seed decides the head, the order, dropout
    paths = {name: path for name, path in [("train", args.train), ("eval", args.eval), ("test", args.test)] if path}
    tables = {name: load_table(path) for name, path in paths.items()}
    labels = _labels(args, tables)
    train, evalset, testset = (
        prepare_classification(tables[name], args.text_column, args.label_column, labels, source=paths[name])[0]
        if name in tables else None for name in ("train", "eval", "test"))
    if args.max_train is not None:
        if args.max_train < 1:
            raise ValueError(f"--max-train must be at least 1, got {args.max_train}: pass a number of examples, or leave it out")
        train = train.shuffle(seed=args.seed).select(range(min(args.max_train, len(train))))
    check_classes(train, "training", len(labels))
    check_classes(evalset, "eval", len(labels))
    _warn_untrained(train, labels)
    pick = lambda given, default: default if given is None else given  # noqa: E731 (0 is a value, not "unset")
    batch_size, max_length = pick(args.batch_size, profile.batch_size), pick(args.max_length, profile.max_length)
    if batch_size < 1 or max_length < 2:
        raise ValueError(f"--batch-size must be at least 1 and --max-length at least 2, got {batch_size} and "
                         f"{max_length}: pass positive values, or leave them out to use the profile's")
    default_lr = method_lr(profile, args.method)
    config = TrainConfig(
        epochs=pick(args.epochs, profile.epochs), lr=pick(args.lr, default_lr),
        patience=args.patience, checkpoint_dir=str(Path(args.out) / "checkpoints"),
        save_every=50, resume=args.resume, progress=not args.quiet)

    print(runtime.stamp())
    model, tokenizer = load_text_classifier(profile.text_model, labels)
    settings = _settings(args, model.config.model_type)
    apply_method(model, args.method, **settings)
    sets = {name: ds for name, ds in [("train", train), ("eval", evalset), ("test", testset)] if ds is not None}
    truncated = {name: count_truncated(ds["text"], tokenizer, max_length) for name, ds in sets.items()}
    for name, n in truncated.items():
        if n:
            print(f"note: {n} of {len(sets[name])} {name} texts are longer than --max-length {max_length} tokens "
                  "and were truncated")
    loaders = {name: make_loader(tokenize(ds, tokenizer, max_length=max_length), tokenizer,
                                 batch_size=batch_size if name == "train" else 2 * batch_size,
                                 shuffle=name == "train", seed=args.seed)
               for name, ds in sets.items()}
    trainable, total = count_parameters(model)
    started = time.perf_counter()
    history = fit(model, loaders["train"], loaders["eval"], runtime=runtime, config=config)
    metrics = {
        "eval": evaluate(model, loaders["eval"], runtime),
        "selection": _selection(history, config, args),
        "train_seconds": time.perf_counter() - started,
        "trainable_params": trainable, "total_params": total, "epochs_run": len(history),
        "best_epoch": history.best_epoch, "profile": runtime.profile, "model": profile.text_model.name,
        "method": args.method, "labels": labels, "train_examples": len(train), "max_length": max_length,
        "truncated": truncated, "history": list(history),
    }
    if "test" in loaders:
        metrics["test"] = evaluate(model, loaders["test"], runtime)
    out = Path(args.out)
    metrics["saved_bytes"] = save_finetuned(model, tokenizer, out / "model", args.method, profile=runtime.profile,
                                            max_length=max_length, **settings)
    if args.merge:
        if args.method == "lora":
            metrics["merged_bytes"] = save_merged(model, tokenizer, out / "merged")
        else:
            print(f"--merge: {out / 'model'} is already a plain transformers model; nothing to merge")
    _write_metrics(out, metrics)
    return metrics


def _write_metrics(out: Path, metrics: dict) -> None:
    from .files import write_text_atomic

    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2))  # never a half-written file


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
    from .qa import generate_answers, qa_scores_by_language

    answers = generate_answers(model, tokenizer, [r["question"] for r in records], runtime,
                               max_new_tokens=max_new_tokens)
    scores = qa_scores_by_language(answers, records)  # 'all', and one entry per 'lang' when the records have it
    overall = {k: v for k, v in scores.pop("all").items() if k != "questions"}
    return {**evaluate(model, loader, runtime), **overall, **({"per_language": scores} if scores else {})}


def finetune_qa(args) -> dict:
    """``--task qa``: the profile's causal LM learns to answer; LoRA (peft) or full fine-tuning."""
    from .files import share
    from .lora import peft_config
    from . import setup
    from .methods import save_merged
    from .models import count_parameters, load_causal_lm
    from .qa import make_qa_loader
    from .training import TrainConfig, fit

    if args.method not in ("lora", "full"):
        raise ValueError(f"--method {args.method} does not apply to --task qa: use lora (the default) or full")
    if args.labels:
        raise ValueError("--labels does not apply to --task qa: the answers are free text; leave it out")
    runtime, profile = setup(args.profile, seed=args.seed)  # seeded: --seed decides the order and dropout
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
                                    shuffle=name == "train", seed=args.seed, max_length=max_length,
                                    answer_logits_only=True)  # the output layer only where the loss looks
               for name, records in sets.items()}
    trainable, total = count_parameters(model)
    started = time.perf_counter()
    history = fit(model, loaders["train"], loaders["eval"], runtime=runtime, config=config)
    score = lambda name: _qa_scores(model, tokenizer, sets[name], loaders[name], runtime,  # noqa: E731
                                    profile.qa_max_new_tokens)
    metrics = {
        "eval": score("eval"), "selection": _selection(history, config, args),
        "train_seconds": time.perf_counter() - started,
        "trainable_params": trainable, "total_params": total, "epochs_run": len(history),
        "best_epoch": history.best_epoch, "profile": runtime.profile, "model": profile.causal_lm.name,
        "method": args.method, "train_examples": len(sets["train"]), "history": list(history),
    }
    if "test" in sets:
        metrics["test"] = score("test")
    out = Path(args.out)
    model.save_pretrained(out / "model")  # peft: only the adapter and its config
    tokenizer.save_pretrained(out / "model")
    recipe = {"task": "qa", "method": args.method, "profile": runtime.profile, "seed": args.seed,
              "max_length": max_length, "max_new_tokens": profile.qa_max_new_tokens}
    (out / "model" / "method.json").write_text(json.dumps(recipe, indent=2))
    share(out / "model")
    metrics["saved_bytes"] = sum(f.stat().st_size for f in (out / "model").glob("*.safetensors"))
    if args.merge and args.method == "lora":
        metrics["merged_bytes"] = save_merged(model, tokenizer, out / "merged")
    _write_metrics(out, metrics)
    return metrics


def finetune_preference(args) -> dict:
    """``--task preference``: DPO on the profile's causal LM with a LoRA adapter (lesson 11).

    The files hold pairs (``prompt``, ``chosen``, ``rejected``). First ``--sft-epochs`` of lesson
    09's training on the chosen answers, merged into the weights: that model is DPO's reference
    (0 skips it, and the pretrained model is the reference). Then DPO trains a fresh adapter; the
    reference is the same model with it switched off, and its log-probabilities are computed
    once. The metrics give, on --eval (and --test), how often the implicit reward prefers the
    chosen answer, the mean reward margin, and how often the reference's and the pretrained
    model's own log-probabilities already did. ``model/`` holds the DPO adapter, and
    ``model/sft/`` the SFT adapter that goes under it (``predict`` merges both).
    """
    import random

    from . import setup
    from .files import share
    from .lora import peft_config
    from .models import count_parameters, load_causal_lm
    from .preference import (add_reference_logprobs, answer_logprobs, fit_dpo, load_preferences, make_preference_loader,
                             preference_scores, sft_reference)

    if args.method != "lora":
        raise ValueError(f"--method {args.method} does not apply to --task preference: DPO here trains a LoRA "
                         "adapter (the reference is the model with the adapter off); use lora, the default")
    if args.labels or args.resume or args.merge or args.patience is not None:
        raise ValueError("--labels, --resume, --merge and --patience do not apply to --task preference; leave them out")
    runtime, profile = setup(args.profile, seed=args.seed)
    sets = {name: load_preferences(path) for name, path in [("train", args.train), ("eval", args.eval),
                                                            ("test", args.test)] if path}
    if args.max_train is not None:
        if args.max_train < 1:
            raise ValueError(f"--max-train must be at least 1, got {args.max_train}: pass a number of pairs, or leave it out")
        sets["train"] = random.Random(args.seed).sample(sets["train"], min(args.max_train, len(sets["train"])))
    pick = lambda given, default: default if given is None else given  # noqa: E731 (0 is a value, not "unset")
    batch_size, max_length = pick(args.batch_size, profile.pref_batch_size), pick(args.max_length, profile.qa_max_length)
    epochs, lr, beta = pick(args.epochs, profile.pref_epochs), pick(args.lr, profile.pref_lr), pick(args.beta, profile.pref_beta)
    sft_epochs = pick(args.sft_epochs, profile.pref_sft_epochs)
    if batch_size < 1 or max_length < 2 or epochs < 1 or not lr > 0 or not beta > 0 or sft_epochs < 0:
        raise ValueError(f"--batch-size, --epochs must be at least 1, --max-length at least 2, --lr and --beta "
                         f"positive, --sft-epochs at least 0; got {batch_size}, {epochs}, {max_length}, {lr}, {beta}, "
                         f"{sft_epochs}: leave them out to use the profile's")
    print(runtime.stamp())
    model, tokenizer = load_causal_lm(profile.causal_lm)
    from peft import get_peft_model

    targets = args.lora_targets.split(",") if args.lora_targets else profile.qa_lora_targets
    lora = lambda: peft_config(targets, r=args.lora_r, alpha=args.lora_alpha, train_also=(),  # noqa: E731
                               task_type="CAUSAL_LM")
    loaders = {name: make_preference_loader(records, tokenizer, batch_size=batch_size, shuffle=name == "train",
                                            seed=args.seed, max_length=max_length,
                                            max_answer_tokens=profile.pref_max_answer_tokens)
               for name, records in sets.items()}
    model.to(runtime.device)
    # the pretrained model's own ordering; without SFT it is the reference, scored below anyway
    pretrained = {name: answer_logprobs(model, loaders[name], runtime) for name in loaders
                  if name != "train" and sft_epochs}
    started, out = time.perf_counter(), Path(args.out)
    if sft_epochs:  # the reference: the pretrained model fine-tuned on the chosen answers (its adapter merged)
        model, _ = sft_reference(model, sets["train"], tokenizer, lora(), runtime=runtime, epochs=sft_epochs,
                                 lr=profile.qa_lr, batch_size=profile.qa_batch_size, max_length=max_length,
                                 seed=args.seed, progress=not args.quiet, save_adapter=out / "model" / "sft")
    model = get_peft_model(model, lora())
    for loader in loaders.values():
        add_reference_logprobs(model, loader, runtime)  # the adapter off, once
    trainable, total = count_parameters(model)
    history = fit_dpo(model, loaders["train"], runtime=runtime, beta=beta, epochs=epochs, lr=lr,
                      progress=not args.quiet)
    score = lambda name: {k: v for k, v in preference_scores(model, loaders[name], runtime, beta=beta).items()  # noqa: E731
                          if not isinstance(v, list)}
    metrics = {"eval": score("eval"), "train_seconds": time.perf_counter() - started, "beta": beta, "lr": lr,
               "trainable_params": trainable, "total_params": total, "epochs_run": len(history),
               "profile": runtime.profile, "model": profile.causal_lm.name, "method": "lora",
               "train_pairs": len(sets["train"]), "sft_epochs": sft_epochs, "history": history}
    if "test" in sets:
        metrics["test"] = score("test")
    for name in [n for n in ("eval", "test") if n in metrics]:
        if name in pretrained:
            chosen, rejected = pretrained[name]
            metrics[name]["pretrained_accuracy"] = sum(c > r for c, r in zip(chosen, rejected)) / len(chosen)
        else:  # no SFT: the reference is the pretrained model
            metrics[name]["pretrained_accuracy"] = metrics[name]["reference_accuracy"]
    model.save_pretrained(out / "model")  # only the adapter and its config; model/sft, the SFT adapter under it
    tokenizer.save_pretrained(out / "model")
    recipe = {"task": "preference", "method": "lora", "profile": runtime.profile, "seed": args.seed, "beta": beta,
              "sft_epochs": sft_epochs, "max_length": max_length, "max_new_tokens": profile.qa_max_new_tokens}
    (out / "model" / "method.json").write_text(json.dumps(recipe, indent=2))
    share(out / "model")
    metrics["saved_bytes"] = sum(f.stat().st_size for f in (out / "model").rglob("*.safetensors"))  # with model/sft
    _write_metrics(out, metrics)
    return metrics


def _preference_summary(metrics: dict, args) -> None:
    summary = {k: metrics[k] for k in ("eval", "train_seconds", "epochs_run", "beta")}
    if "test" in metrics:
        summary["test"] = metrics["test"]
    print(json.dumps(summary, indent=2))
    print("accuracy: pairs whose chosen answer gets the higher implicit reward; reference_accuracy and "
          "pretrained_accuracy: pairs the reference's (the SFT model's) and the pretrained model's own "
          "log-probability already ordered right.")
    print(f"Saved the adapter and metrics.json in {args.out}")


def _open_model(args):
    """The model of --model, on the runtime's device, with its task and recipe; --input loaded first."""
    from .data import load_table
    from .inference import load_for_inference
    from .runtime import get_runtime

    if args.batch_size < 1 or (args.max_length is not None and args.max_length < 2):
        raise ValueError(f"--batch-size must be at least 1 and --max-length at least 2, got {args.batch_size} and "
                         f"{args.max_length}: pass positive values, or leave them out")
    table = load_table(args.input)  # bad input fails before a model is loaded
    model, tokenizer, task, recipe = load_for_inference(args.model, profile=args.profile)
    runtime = get_runtime(args.profile or recipe.get("profile"), seed=recipe.get("seed", 0))
    model.to(runtime.device)
    return table, model, tokenizer, task, recipe, runtime


def _classify(args, model, tokenizer, texts, recipe, runtime):
    from .inference import classify_texts

    max_length = args.max_length or recipe.get("max_length") or 128
    started = time.perf_counter()
    probs, truncated = classify_texts(model, tokenizer, texts, batch_size=args.batch_size, max_length=max_length,
                                      autocast=runtime.autocast, progress=not args.quiet)
    seconds = time.perf_counter() - started
    if truncated:
        print(f"note: {truncated} of {len(texts)} texts are longer than {max_length} tokens and were truncated")
    print(f"{len(texts)} texts in {seconds:.1f} s ({len(texts) / seconds:.0f} texts/s on {runtime.device})")
    return probs, truncated


def _answers(args, model, tokenizer, questions, recipe, runtime):
    from .qa import generate_answers

    return generate_answers(model, tokenizer, questions, runtime, batch_size=args.batch_size,
                            max_new_tokens=recipe.get("max_new_tokens", 16))


def predict(args) -> dict:
    """``predict``: the input file's rows, plus the predicted label, its probability and one per class."""
    from .data import write_table
    from .inference import texts_of

    table, model, tokenizer, task, recipe, runtime = _open_model(args)
    column = args.text_column or ("question" if task == "qa" else "text")
    texts, rows, columns = texts_of(table, column, args.input), table.to_list(), list(table.column_names)
    if task == "qa":
        for row, answer in zip(rows, _answers(args, model, tokenizer, texts, recipe, runtime)):
            row["predicted_answer"] = answer
        added = ["predicted_answer"]
    else:
        probs, _ = _classify(args, model, tokenizer, texts, recipe, runtime)
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        for row, p in zip(rows, probs.tolist()):
            best = max(range(len(p)), key=p.__getitem__)
            row.update({"predicted_label": names[best], "probability": round(p[best], 6),
                        **{f"prob_{name}": round(q, 6) for name, q in zip(names, p)}})
        added = ["predicted_label", "probability", *(f"prob_{n}" for n in names)]
    write_table(args.out, rows, columns + [c for c in added if c not in columns])
    print(f"Wrote {len(rows)} predictions to {args.out}")
    return {"rows": len(rows)}


def evaluate_file(args) -> dict:
    """``evaluate``: accuracy, macro-F1, per-class precision and recall, confusion matrix (QA: EM and F1)."""
    from .data import DataError, require_column, unseen_labels
    from .files import share, write_text_atomic
    from .inference import evaluate_classifier, find_model_folder, format_report, texts_of

    table, model, tokenizer, task, recipe, runtime = _open_model(args)
    text_column = args.text_column or ("question" if task == "qa" else "text")
    label_column = args.label_column or ("answer" if task == "qa" else "label")
    texts = texts_of(table, text_column, args.input)
    require_column(table, label_column, "label")
    golds = ["" if v is None else str(v).strip() for v in table[label_column]]
    if "" in golds:
        raise DataError(f"{args.input}: row {golds.index('') + 1} has an empty {label_column!r}: every row of a "
                        "file to evaluate needs one; fill it in or remove the row")
    if task == "qa":
        from .qa import qa_scores_by_language

        langs = [str(v or "") for v in table["lang"]] if "lang" in table.column_names else [""] * len(texts)
        records = [{"answer": g, "lang": lang} for g, lang in zip(golds, langs)]
        scores = qa_scores_by_language(_answers(args, model, tokenizer, texts, recipe, runtime), records)
        overall = {k: v for k, v in scores.pop("all").items() if k != "questions"}
        report = {"examples": len(texts), **overall, **({"per_language": scores} if scores else {})}
        text = "\n".join([f"{len(texts)} questions  exact match {report['exact_match']:.1f}  token F1 {report['token_f1']:.1f}"]
                         + [f"  {lang}: {s['questions']} questions  exact match {s['exact_match']:.1f}  "
                            f"token F1 {s['token_f1']:.1f}" for lang, s in scores.items()])
    else:
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        unknown = unseen_labels(table, label_column, names)
        if unknown:
            raise DataError(f"{args.input} has labels {unknown[:5]} that the model does not know (it knows "
                            f"{names}): evaluate on a file with the model's labels, or fine-tune again declaring "
                            "them with --labels")
        probs, truncated = _classify(args, model, tokenizer, texts, recipe, runtime)
        report = {**evaluate_classifier(probs, golds, model.config.id2label), "truncated": truncated}
        text = format_report(report)
    report = {"model": str(find_model_folder(args.model)), "file": str(args.input), **report}
    out = Path(args.out) if args.out else Path(args.model) / f"evaluation-{Path(args.input).stem}.json"
    share(write_text_atomic(out, json.dumps(report, indent=2)))
    print(text)
    print(f"Wrote {out}")
    return report


def export(args) -> dict:
    """``export``: a run as a plain transformers model folder (LoRA merged), which pipeline() loads."""
    from .inference import load_for_inference
    from .methods import save_merged

    model, tokenizer, _, _ = load_for_inference(args.model, profile=args.profile)
    size = save_merged(model, tokenizer, args.out)
    print(f"Wrote a plain transformers model to {args.out} ({size / 1e6:.1f} MB)")
    return {"bytes": size}


def _finetune_summary(metrics: dict, args) -> None:
    summary = {k: metrics[k] for k in ("eval", "train_seconds", "epochs_run")}
    if "test" in metrics:
        summary["test"] = metrics["test"]
    print(json.dumps(summary, indent=2))
    sel = metrics["selection"]
    print(f"Kept epoch {sel['best_epoch']} of {metrics['epochs_run']}, the best {sel['monitor']} on {args.eval}: "
          + ("the eval scores are optimistic; test is the unbiased figure." if "test" in metrics else
             "the eval scores are optimistic; pass --test FILE for an unbiased figure."))
    print(f"Saved the model and metrics.json in {args.out}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "finetune" and args.method is None:
        args.method = "lora" if args.task in ("qa", "preference") else "full"
    from .checkpoints import CheckpointError
    from .data import DataError
    from .models import IntegrityError

    commands = {"predict": predict, "evaluate": evaluate_file, "export": export,
                "finetune": lambda a: {"qa": finetune_qa, "preference": finetune_preference}.get(a.task, finetune)(a)}
    try:
        result = commands[args.command](args)
    except (DataError, IntegrityError, CheckpointError, FileNotFoundError, ModuleNotFoundError,
            ValueError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "finetune":
        (_preference_summary if args.task == "preference" else _finetune_summary)(result, args)
    return 0
