"""Issue 17's figures, from finished ``python -m ftlib finetune`` runs (not a test: it needs real runs).

    python bench/cli_outputs.py --full runs/sst2-full --lora runs/sst2-lora --input dev.tsv --text-column sentence

Prints, as JSON: the checkpoint bytes of each run (the newest step folder, and best/), the LoRA
run's as a share of the full run's; and the throughput of ``predict``'s batched classification
(``ftlib.inference.classify_texts``) on `--input`, for each run, on this machine's device.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ftlib.checkpoints import Checkpointer
from ftlib.data import load_table
from ftlib.inference import classify_texts, load_for_inference


def checkpoint_bytes(run: Path) -> dict:
    latest = Checkpointer(run / "checkpoints").latest()
    step = {f.name: f.stat().st_size for f in latest.iterdir()}
    best = (run / "checkpoints" / "best" / "model.safetensors").stat().st_size
    return {"step_folder": sum(step.values()), "step_weights": step["model.safetensors"], "best_weights": best}


def throughput(run: Path, texts: list[str], batch_size: int, repeats: int = 2) -> float:
    model, tokenizer, _, recipe = load_for_inference(run)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    classify_texts(model, tokenizer, texts[:64], batch_size=batch_size)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        classify_texts(model, tokenizer, texts, batch_size=batch_size, max_length=recipe.get("max_length", 128))
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", required=True, type=Path)
    parser.add_argument("--lora", required=True, type=Path)
    parser.add_argument("--input", required=True)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    texts = [str(t) for t in load_table(args.input)[args.text_column]]
    sizes = {name: checkpoint_bytes(run) for name, run in [("full", args.full), ("lora", args.lora)]}
    result = {"checkpoint_bytes": sizes,
              "lora_share_of_full": {k: sizes["lora"][k] / sizes["full"][k] for k in sizes["full"]},
              "device": "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)",
              "texts": len(texts),
              "predict_texts_per_s": {name: throughput(run, texts, args.batch_size)
                                      for name, run in [("full", args.full), ("lora", args.lora)]}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
