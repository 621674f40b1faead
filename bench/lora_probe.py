"""One LoRA-or-full training measurement of the lite causal LM, in this (fresh) process.

    python bench/lora_probe.py lora|full     # prints one JSON line

Batch 4 x 128 tokens, AdamW, fp32, 2 threads; LoRA r=8 (alpha 16) on q_proj and v_proj
through peft. Peak RSS is the process's maximum resident memory (weights, gradients,
optimizer state, activations and the loading itself, the same for both methods).
"""
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ftlib import catalog, models  # noqa: E402
from ftlib.lora import peft_config  # noqa: E402
from ftlib.optim import adamw  # noqa: E402


def main(method: str, steps: int = 5) -> dict:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model, _ = models.load_causal_lm(catalog.SMOLLM2_GGUF)
    if method == "lora":
        from peft import get_peft_model

        model = get_peft_model(model, peft_config(("q_proj", "v_proj"), r=8, alpha=16, train_also=(), task_type="CAUSAL_LM"))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = adamw(trainable, lr=1e-4)
    ids = torch.randint(100, 40000, (4, 128))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    times = []
    for i in range(steps):
        start = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        if i == steps - 1:  # gradients and optimizer state, as they stand after a step
            state = sum(p.grad.nbytes for p in trainable) + sum(
                t.nbytes for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t) and t.dim() > 0)
        optimizer.zero_grad()
        if i:
            times.append(time.perf_counter() - start)
    return {"method": method, "trainable": sum(p.numel() for p in trainable),
            "total": sum(p.numel() for p in model.parameters()), "state_bytes": state,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux: KiB
            "step_seconds": statistics.median(times)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
