"""The course's benchmark suite: figures measured side by side, reported as ratios and medians.

    make bench                               # everything, about 15 minutes on 2 cores + the lessons
    python bench/run.py --only trainer,padding --repeats 5

Writes bench/results.json and bench/results.md. The machines these run on are noisy, so
every comparison interleaves its two sides (A, B, A, B, ...) in one process and reports
the median of the per-pair ratios, never a lone absolute time. Run it on an otherwise
idle machine: a second busy process halves a 2-core machine's speed.

Keys (see the README's "Benchmarks" section for what each means and its goal):
trainer_ratio, padding_efficiency, padding_efficiency_fixed, length_grouping_speedup,
lora_trainable_fraction, lora_state_ratio, lora_peak_rss_ratio, lora_step_time_ratio,
sst2, lessons, cpu_matmul_gflops, train_step_gflops, train_step_utilisation.
SST-2 (GLUE) is read from --sst2 (default ../shared/datasets/sst2); its test split is never used.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ftlib import catalog, models  # noqa: E402
from ftlib.data import LengthGroupedBatchSampler, load_table, make_loader, prepare_classification, tokenize  # noqa: E402
from ftlib import setup  # noqa: E402
from ftlib.optim import adamw  # noqa: E402
from ftlib.training import TrainConfig, fit  # noqa: E402

GOALS = {"trainer_ratio": (">=", 1.0), "padding_efficiency": (">=", 0.85), "length_grouping_speedup": (">=", 1.3),
         "lora_trainable_fraction": ("<=", 0.01), "lora_state_ratio": ("<=", 0.05),
         "lora_peak_rss_ratio": ("<=", 0.6), "lora_step_time_ratio": ("<=", 0.9)}


def sst2(folder: Path, split: str, n: int | None = None):
    if split == "test":
        raise ValueError("the SST-2 test split is never used for measurements")
    table, _ = prepare_classification(load_table(folder / f"{split}.tsv"), "sentence", "label", labels=["0", "1"])
    return table.shuffle(seed=0).select(range(min(n, len(table)))) if n else table


def encoder(dropout: float = 0.1):
    labels = ["negative", "positive"]
    model, tok = models.load_text_classifier(catalog.MINILM, labels)
    if dropout == 0.0:  # a deterministic forward pass, so that two loops can be compared step by step
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    return model, tok


# --- ftlib's loop against the Hugging Face Trainer ---------------------------------------

def _trainer(model, loader, steps: int, lr: float, warmup: int):
    from transformers import Trainer, TrainingArguments

    class SameBatches(Trainer):  # the very batches ftlib sees: same sampler, same collator
        def get_train_dataloader(self):
            return loader

    args = TrainingArguments(output_dir="/tmp/ftlib-bench-trainer", max_steps=steps, learning_rate=lr,
                             weight_decay=0.01, warmup_steps=warmup, lr_scheduler_type="linear",
                             max_grad_norm=1.0, per_device_train_batch_size=loader.batch_sampler.batch_size,
                             save_strategy="no", report_to=[], logging_strategy="no", disable_tqdm=True,
                             use_cpu=True, seed=0, dataloader_num_workers=0, remove_unused_columns=False)
    return SameBatches(model=model, args=args)


def trainer_ratio(folder: Path, repeats: int, n: int = 640, batch_size: int = 16) -> dict:
    """Samples/s of ftlib.fit over the Trainer's, same model/data/batches/optimizer/schedule, fp32, 2 threads."""
    import copy

    base, tok = encoder(dropout=0.0)
    data = tokenize(sst2(folder, "train", n), tok, max_length=128)
    steps = -(-n // batch_size)
    warmup = int(0.1 * steps)
    runtime, _ = setup("lite", seed=0)  # seeded, as a lesson is
    config = TrainConfig(epochs=1, lr=5e-5, warmup_ratio=0.1, progress=False)

    def run(kind: str, record: list | None = None) -> float:
        model = copy.deepcopy(base)
        loader = make_loader(data, tok, batch_size=batch_size, shuffle=True, seed=0)
        hook = model.register_forward_hook(lambda m, i, o: record.append(o.loss.item())) if record is not None else None
        start = time.perf_counter()
        if kind == "ftlib":
            fit(model, loader, runtime=runtime, config=config)
        else:
            _trainer(model, loader, steps, config.lr, warmup).train()
        seconds = time.perf_counter() - start
        if hook:
            hook.remove()
        return n / seconds

    losses_ftlib, losses_trainer = [], []
    run("ftlib", losses_ftlib)
    run("trainer", losses_trainer)
    diff = max(abs(a - b) for a, b in zip(losses_ftlib[:20], losses_trainer[:20]))
    pairs = []
    for i in range(repeats):
        order = ["ftlib", "trainer"] if i % 2 == 0 else ["trainer", "ftlib"]
        speed = {kind: run(kind) for kind in order}
        pairs.append(speed)
    ratios = [p["ftlib"] / p["trainer"] for p in pairs]
    return {"trainer_ratio": round(statistics.median(ratios), 3),
            "trainer_detail": {"ratios": [round(r, 3) for r in ratios],
                               "ftlib_samples_per_s": round(statistics.median(p["ftlib"] for p in pairs), 1),
                               "trainer_samples_per_s": round(statistics.median(p["trainer"] for p in pairs), 1),
                               "max_loss_diff_first_20_steps": diff, "steps_compared": min(20, len(losses_ftlib)),
                               "examples": n, "batch_size": batch_size, "repeats": repeats}}


# --- padding and length grouping ---------------------------------------------------------

def padding(folder: Path, batch_size: int = 16, max_length: int = 128) -> dict:
    """Real tokens / processed tokens over one epoch of SST-2 train, grouped batches vs padding to 128."""
    _, tok = encoder()
    lengths = [len(ids) for ids in tok(list(sst2(folder, "train")["text"]), truncation=True, max_length=max_length)["input_ids"]]
    sampler = LengthGroupedBatchSampler(lengths, batch_size, shuffle=True, seed=0)
    processed = sum(len(b) * max(lengths[i] for i in b) for b in sampler.batches())
    plain = LengthGroupedBatchSampler(lengths, batch_size, shuffle=True, group_by_length=False, seed=0)
    processed_plain = sum(len(b) * max(lengths[i] for i in b) for b in plain.batches())
    real = sum(lengths)
    return {"padding_efficiency": round(real / processed, 4),
            "padding_efficiency_fixed": round(real / (len(lengths) * max_length), 4),
            "padding_detail": {"sentences": len(lengths), "real_tokens": real, "batch_size": batch_size,
                               "dynamic_padding_without_grouping": round(real / processed_plain, 4)}}


def length_grouping(folder: Path, repeats: int, n: int = 1024, batch_size: int = 16) -> dict:
    """Epoch samples/s with length-grouped batches over plain shuffled batches (both padded per batch)."""
    import copy

    base, tok = encoder()
    data = tokenize(sst2(folder, "train", n), tok, max_length=128)
    runtime, _ = setup("lite", seed=0)  # seeded, as a lesson is

    def run(grouped: bool) -> float:
        model = copy.deepcopy(base)
        loader = make_loader(data, tok, batch_size=batch_size, shuffle=True, seed=0, group_by_length=grouped)
        start = time.perf_counter()
        fit(model, loader, runtime=runtime, config=TrainConfig(epochs=1, lr=5e-5, progress=False))
        return n / (time.perf_counter() - start)

    ratios = []
    for i in range(repeats):
        first, second = (True, False) if i % 2 == 0 else (False, True)
        speed = {first: run(first), second: run(second)}
        ratios.append(speed[True] / speed[False])
    return {"length_grouping_speedup": round(statistics.median(ratios), 3),
            "length_grouping_detail": {"ratios": [round(r, 3) for r in ratios], "examples": n, "repeats": repeats}}


# --- LoRA against full fine-tuning of the lite causal LM, each in a fresh process -------

def lora(repeats: int) -> dict:
    models.load_causal_lm(catalog.SMOLLM2_GGUF)  # make sure the de-quantized cache exists before timing
    runs = {"lora": [], "full": []}
    for i in range(max(1, repeats // 2)):
        for method in (["lora", "full"] if i % 2 == 0 else ["full", "lora"]):
            out = subprocess.run([sys.executable, str(ROOT / 'bench' / 'lora_probe.py'), method], capture_output=True,
                                 text=True, check=True, cwd=ROOT)
            runs[method].append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {m: {k: statistics.median(r[k] for r in rs) for k in ("peak_rss", "step_seconds")} for m, rs in runs.items()}
    first = {m: rs[0] for m, rs in runs.items()}
    return {"lora_trainable_fraction": round(first["lora"]["trainable"] / first["lora"]["total"], 5),
            "lora_state_ratio": round(first["lora"]["state_bytes"] / first["full"]["state_bytes"], 5),
            "lora_peak_rss_ratio": round(med["lora"]["peak_rss"] / med["full"]["peak_rss"], 3),
            "lora_step_time_ratio": round(med["lora"]["step_seconds"] / med["full"]["step_seconds"], 3),
            "lora_detail": {"runs": runs, "model": catalog.SMOLLM2_GGUF.name, "r": 8, "targets": ["q_proj", "v_proj"],
                            "batch": "4 x 128 tokens"}}


# --- SST-2 with the lite encoder ------------------------------------------------------------

def sst2_run(folder: Path, n: int = 5000, epochs: int = 3) -> dict:
    from ftlib.evaluation import evaluate

    model, tok = encoder()
    runtime, _ = setup("lite", seed=0)  # seeded, as a lesson is
    train = make_loader(tokenize(sst2(folder, "train", n), tok, max_length=128), tok, batch_size=16, shuffle=True)
    dev = make_loader(tokenize(sst2(folder, "dev"), tok, max_length=128), tok, batch_size=64, shuffle=False)
    start = time.perf_counter()
    history = fit(model, train, runtime=runtime, config=TrainConfig(epochs=epochs, lr=1e-4, progress=False))
    seconds = time.perf_counter() - start
    accuracy = evaluate(model, dev, runtime)["accuracy"]
    return {"sst2": {"dev_accuracy": round(accuracy, 4), "train_examples": n, "seconds": round(seconds, 1),
                     "epochs": epochs, "train_loss_last_epoch": round(history[-1]["train_loss"], 4)}}


# --- the machine's matmul peak against a training step's FLOP rate --------------------------

def flops(repeats: int) -> dict:
    size = 2048
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    times = []
    for _ in range(max(5, repeats)):
        start = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - start)
    peak = 2 * size ** 3 / statistics.median(times) / 1e9

    model, _ = encoder()
    # Embedding tables are looked up, not multiplied: counting them in 6 x params x tokens (half of
    # MiniLM's 22.7 M) would claim FLOPs that never happen.
    embeddings = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    params = sum(p.numel() for p in model.parameters() if id(p) not in embeddings)
    batch = {"input_ids": torch.randint(1000, 30000, (32, 128)), "attention_mask": torch.ones(32, 128, dtype=torch.long),
             "labels": torch.randint(0, 2, (32,))}
    optimizer = adamw(model.parameters(), lr=1e-5)
    step_times = []
    for i in range(max(4, repeats)):
        start = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if i:  # the first step allocates the optimizer state
            step_times.append(time.perf_counter() - start)
    achieved = 6 * params * 32 * 128 / statistics.median(step_times) / 1e9
    return {"cpu_matmul_gflops": round(peak, 1), "train_step_gflops": round(achieved, 1),
            "train_step_utilisation": round(achieved / peak, 3),
            "flops_detail": {"matmul": f"{size}x{size} fp32", "step": "lite encoder, full fine-tuning, 32 x 128 tokens",
                             "non_embedding_params": params, "step_seconds": round(statistics.median(step_times), 3),
                             "note": "6 x non-embedding params x tokens counts the weight matmuls only (no attention scores)"}}


# --- lessons ------------------------------------------------------------------------------------

def lessons(run: bool) -> dict:
    """Wall time of every solution notebook, smoke and lite, against its budget."""
    from tools.course import budget, run_notebooks

    result = {}
    for profile in ("smoke", "lite"):
        out = ROOT / "build" / f"executed-{profile}"
        report = out / f"timing-{profile}.json"
        times = run_notebooks("solutions", profile, out)["lessons"] if run or not report.exists() else \
            json.loads(report.read_text())["lessons"]
        for name, seconds in times.items():
            limit = budget(name, profile)
            result.setdefault(name, {})[profile] = {"seconds": seconds, "budget": limit, "ok": seconds <= limit}
    return {"lessons": result}


PARTS = {"trainer": lambda a: trainer_ratio(a.sst2, a.repeats), "padding": lambda a: padding(a.sst2),
         "grouping": lambda a: length_grouping(a.sst2, a.repeats), "lora": lambda a: lora(a.repeats),
         "sst2": lambda a: sst2_run(a.sst2), "flops": lambda a: flops(a.repeats),
         "lessons": lambda a: lessons(a.run_lessons)}


def markdown(results: dict) -> str:
    lines = ["| key | value | goal | met |", "| --- | --- | --- | --- |"]
    for key, value in results.items():
        if key in ("lessons", "machine") or key.endswith("_detail"):
            continue
        goal = GOALS.get(key)
        met = "" if goal is None else ("yes" if (value >= goal[1] if goal[0] == ">=" else value <= goal[1]) else "no")
        lines.append(f"| `{key}` | {json.dumps(value)} | {'' if goal is None else ' '.join(map(str, goal))} | {met} |")
    if "lessons" in results:
        lines += ["", "| lesson | smoke s (budget) | lite s (budget) |", "| --- | --- | --- |"]
        for name, row in results["lessons"].items():
            cell = lambda p: f"{row[p]['seconds']} ({row[p]['budget']})" if p in row else "—"
            lines.append(f"| {name} | {cell('smoke')} | {cell('lite')} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {list(PARTS)}")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sst2", type=Path, default=ROOT.parent / "shared" / "datasets" / "sst2")
    parser.add_argument("--run-lessons", action="store_true", help="execute the lessons even if timing reports exist")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for part in args.only.split(","):
        started = time.perf_counter()
        results.update(PARTS[part](args))
        print(f"{part}: done in {time.perf_counter() - started:.0f} s", flush=True)
    results["machine"] = {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                          "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    args.out.write_text(json.dumps(results, indent=2))
    args.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
