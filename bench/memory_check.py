"""Does ftlib.memory's estimate match a measured peak? (lesson 01's memory estimator)

Each measurement runs in a fresh Python process (``ftlib.peak_memory.measure_training_peak``):
the baseline is that process's resident memory once torch is imported and the input batch
exists; the peak covers loading the lite text encoder, building AdamW and two full
fine-tuning steps (the second has the optimizer state in memory). It is compared with
``estimate_training_memory(model, method="full")`` (CPU, fp32).

    python bench/memory_check.py            # 32 x 128 (the target), 16 x 128 and 8 x 256
    python bench/memory_check.py 32x128     # only the shapes named

Prints one line per shape and writes bench/memory_check.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ftlib import catalog  # noqa: E402
from ftlib.memory import activation_bytes, estimate_training_memory, model_on_meta  # noqa: E402
from ftlib.peak_memory import measure_training_peak  # noqa: E402
from ftlib.models import resolve  # noqa: E402

SHAPES = ("32x128", "16x128", "8x256")
OUT = Path(__file__).with_suffix(".json")


def check(source, batch_size: int, seq_len: int) -> dict:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(resolve(source), num_labels=2)
    model = model_on_meta(config)  # the same architecture, no weights: only counts
    estimate = estimate_training_memory(model, batch_size=batch_size, seq_len=seq_len)
    measured = measure_training_peak(source, batch_size=batch_size, seq_len=seq_len)
    saved = activation_bytes(config, batch_size=batch_size, seq_len=seq_len)
    states = estimate.weights + estimate.gradients + estimate.optimizer
    peak = measured["peak_bytes"]
    return {
        "shape": f"{batch_size}x{seq_len}", "measured_peak_bytes": peak, "estimate_bytes": estimate.total,
        "error_percent": round(100 * (estimate.total - peak) / peak, 1), "estimate": estimate.as_dict(),
        "saved_activation_bytes": saved,
        "measured_overhead": round((peak - states) / saved, 3),  # what ACTIVATION_OVERHEAD calibrates
        "seconds": measured["seconds"], "torch_threads": measured["threads"],
    }


def main(shapes) -> None:
    rows = []
    for shape in shapes:
        b, s = map(int, shape.split("x"))
        row = check(catalog.MINILM, b, s)
        rows.append(row)
        print(f"{row['shape']:>7}: measured {row['measured_peak_bytes'] / 1e9:.2f} GB, "
              f"estimated {row['estimate_bytes'] / 1e9:.2f} GB, error {row['error_percent']:+.1f} % "
              f"(overhead measured {row['measured_overhead']}, {row['seconds']} s)", flush=True)
    OUT.write_text(json.dumps({"model": catalog.MINILM.name, "method": "full fine-tuning, fp32, AdamW, CPU",
                               "measure": "process peak RSS minus baseline, fresh process per shape",
                               "rows": rows}, indent=2) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main(sys.argv[1:] or SHAPES)
