"""Memory: how much training will need before you start, and how much it took.

Introduced in lesson 01 (does this model fit on a 16 GB T4? on this CPU?), used again in
lessons 04 and 10 to measure the peak of real runs with :class:`PeakMemory`.

Training memory has four parts (the anatomy in the transformers docs, "model memory anatomy"):

    weights      every parameter, 4 bytes in fp32; mixed precision adds a half copy (2 more)
    gradients    one per *trainable* parameter, 4 bytes (fp32, also under mixed precision)
    optimizer    AdamW keeps two fp32 moments per trainable parameter: 8 bytes
    activations  what the forward pass keeps for the backward pass; grows with batch x tokens

So mixed-precision AdamW costs about 4 + 2 + 4 + 8 = 18 bytes per parameter plus activations.
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .models import count_parameters

__all__ = [
    "ACTIVATION_OVERHEAD",
    "GB",
    "T4_BYTES",
    "MemoryEstimate",
    "PeakMemory",
    "activation_bytes",
    "device_budget",
    "estimate_training_memory",
    "measure_training_peak",
    "model_on_meta",
    "release_freed_memory",
]

GB = 1e9
T4_BYTES = int(15e9)  # a "16 GB" T4: PyTorch sees about 15.8 GB; keep some for the CUDA context
OPTIMIZER_BYTES = {"adamw": 8, "adam": 8, "sgd-momentum": 4, "sgd": 0}  # per trainable parameter
# Measured peaks are higher than the tensors autograd saves: temporaries of the backward pass and
# memory the allocator holds on to. Calibrated on a CPU (bench/memory_check.py): peak RSS of a full
# fine-tuning step of the lite encoder minus weights, gradients and AdamW state, divided by the
# saved tensors that activation_bytes counts: 1.24 to 1.37 at 32 x 128, 16 x 128 and 8 x 256 tokens.
ACTIVATION_OVERHEAD = 1.35
CAUSAL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "gpt2", "gpt_neox", "smollm3")
GATED_FFN = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "smollm3")


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes that one training step needs, by part. ``total`` is their sum."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    params: int = 0
    trainable: int = 0
    precision: str = "fp32"
    method: str = "full"
    batch_size: int = 0
    seq_len: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def fits(self, budget_bytes: float) -> bool:
        """True if the estimate is within `budget_bytes` (see :func:`device_budget`, :data:`T4_BYTES`)."""
        return self.total <= budget_bytes

    def as_dict(self) -> dict:
        return {**asdict(self), "total": self.total}

    def __str__(self) -> str:
        head = (f"{self.method} fine-tuning, {self.precision}, batch {self.batch_size} x {self.seq_len} tokens, "
                f"{self.trainable:,} of {self.params:,} parameters trainable")
        rows = [(k, getattr(self, k)) for k in ("weights", "gradients", "optimizer", "activations", "total")]
        return "\n".join([head] + [f"  {k:<12}{v / GB:>8.2f} GB" for k, v in rows])


def _config_value(config, *names, default=None):
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    if default is None:
        raise ValueError(f"the config of {getattr(config, 'model_type', '?')} has none of {names}: "
                         "pass a transformer config (BERT, DistilBERT, Llama, ...)")
    return default


def _is_causal(config) -> bool:
    architectures = getattr(config, "architectures", None) or []
    return config.model_type in CAUSAL_TYPES or any(a.endswith("ForCausalLM") for a in architectures)


def model_on_meta(config):
    """The model a config describes, built on the 'meta' device: exact parameter counts, no memory.

    A causal LM for decoder configs (Llama, ...), a sequence classifier otherwise.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    auto = AutoModelForCausalLM if _is_causal(config) else AutoModelForSequenceClassification
    with torch.device("meta"):
        return auto.from_config(config)


def activation_bytes(config, *, batch_size: int, seq_len: int, bytes_per_value: int = 4,
                     layers: int | None = None, flash_attention: bool = False) -> int:
    """Bytes of the tensors the forward pass keeps for the backward pass (before overhead).

    Per transformer block and per token, counted with autograd's saved-tensor hooks on BERT:
      10 tensors of the hidden width h  (projection inputs, queries, keys, values, context,
                                         layer-norm inputs, and two dropout masks: 8 without
                                         hidden dropout, as in Llama)
       2 of the feed-forward width i     (up-projection output and GELU output; 4 in gated
                                         feed-forwards such as Llama's SwiGLU)
       3 of width heads x seq_len        (attention probabilities, dropout mask, dropped-out
                                         probabilities; 1 without attention dropout; none with
                                         flash-style kernels that recompute them)
    plus 3 h-wide tensors for the embeddings and, for a causal LM, 2 vocabulary-wide ones in
    fp32 (the logits the model returns, and the log-probabilities the loss keeps). The rest is
    at `bytes_per_value`.
    """
    h = _config_value(config, "hidden_size", "dim")
    i = _config_value(config, "intermediate_size", "hidden_dim", default=4 * h)
    heads = _config_value(config, "num_attention_heads", "n_heads")
    layers = _config_value(config, "num_hidden_layers", "n_layers") if layers is None else layers
    attention_dropout = _config_value(config, "attention_probs_dropout_prob", "attention_dropout", default=0.0)
    hidden_dropout = _config_value(config, "hidden_dropout_prob", "dropout", default=0.0)
    width_h = 10 if hidden_dropout > 0 else 8  # two dropout masks, after attention and feed-forward
    ffn = 4 if config.model_type in GATED_FFN else 2
    attention = 0 if flash_attention else (3 if attention_dropout > 0 else 1) * heads * seq_len
    per_token_layer = bytes_per_value * (width_h * h + ffn * i + attention)
    tokens = batch_size * seq_len
    total = tokens * (layers * per_token_layer + 3 * h * bytes_per_value)
    if _is_causal(config):
        total += tokens * 2 * config.vocab_size * 4
    return int(total)


def _head_params(model) -> int:
    from .freezing import HEADS

    heads = [m for name, m in model.named_modules() if name.rsplit(".", 1)[-1] in HEADS]
    return sum(p.numel() for m in heads for p in m.parameters())


def _lora_params(config, r: int = 8) -> int:
    """Rank-r LoRA on the query and value projections of every block (the common default)."""
    h = _config_value(config, "hidden_size", "dim")
    heads = _config_value(config, "num_attention_heads", "n_heads")
    kv = h * _config_value(config, "num_key_value_heads", default=heads) // heads
    layers = _config_value(config, "num_hidden_layers", "n_layers")
    return layers * r * ((h + h) + (h + kv))


def estimate_training_memory(model, *, batch_size: int, seq_len: int, precision: str = "fp32",
                             method: str = "full", trainable: int | None = None, optimizer: str = "adamw",
                             flash_attention: bool = False,
                             overhead: float = ACTIVATION_OVERHEAD) -> MemoryEstimate:
    """Estimate the peak bytes of one training step, by part (lesson 01).

    Args:
        model: a model (its parameters are counted) or a transformers config (built on 'meta').
        precision: 'fp32', or 'fp16' / 'bf16' for mixed precision (fp32 weights + a half copy,
            half-precision activations).
        method: 'full' (everything trains), 'head' (only the new head trains: activations of one
            block in flight, nothing kept for backward) or 'lora' (rank 8 on query and value; the
            backward still passes every block, so activations as for 'full': an upper bound).
        trainable: number of trainable parameters, instead of what `method` implies.
        optimizer: 'adamw' (8 bytes per trainable parameter), 'sgd-momentum' (4) or 'sgd' (0).
        flash_attention: True where attention kernels never store the seq x seq probabilities
            (PyTorch's SDPA on a GPU); on a CPU they are stored.
        overhead: measured peak / saved activations (see :data:`ACTIVATION_OVERHEAD`).
    """
    if precision not in ("fp32", "fp16", "bf16"):
        raise ValueError(f"precision {precision!r}: choose 'fp32', 'fp16' or 'bf16' (mixed precision)")
    if method not in ("full", "head", "lora"):
        raise ValueError(f"method {method!r}: choose 'full', 'head' or 'lora', or pass trainable=<count>")
    if optimizer not in OPTIMIZER_BYTES:
        raise ValueError(f"optimizer {optimizer!r}: choose one of {', '.join(OPTIMIZER_BYTES)}")
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be at least 1, got {batch_size} and {seq_len}")
    if not isinstance(model, torch.nn.Module):
        model = model_on_meta(model)
    config = model.config
    _, params = count_parameters(model)
    if trainable is None:
        trainable = params if method == "full" else _head_params(model)
        if method == "head" and trainable == 0:
            raise ValueError(f"{type(model).__name__} has no classification head: "
                             "pass trainable=<number of trainable parameters> for method='head'")
        if method == "lora":
            trainable += _lora_params(config)
    mixed = precision != "fp32"
    act = activation_bytes(config, batch_size=batch_size, seq_len=seq_len, bytes_per_value=2 if mixed else 4,
                           layers=1 if method == "head" else None, flash_attention=flash_attention)
    return MemoryEstimate(
        weights=params * (6 if mixed else 4), gradients=trainable * 4,
        optimizer=trainable * OPTIMIZER_BYTES[optimizer], activations=int(act * overhead),
        params=params, trainable=trainable, precision=precision, method=method,
        batch_size=batch_size, seq_len=seq_len,
    )


def device_budget(device) -> int:
    """Bytes available for training on `device`: a GPU's total memory, or the CPU's available RAM."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    import psutil

    return psutil.virtual_memory().available


def release_freed_memory() -> None:
    """Return freed memory to the system, so that on a CPU the next peak RSS starts from a clean heap."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:  # glibc keeps freed blocks for reuse; a later run reusing them would look smaller than it is
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # another C library (musl): nothing to trim
            pass


def _max_rss() -> int:
    """The process's lifetime peak resident memory, in bytes (the kernel's own record)."""
    try:
        import resource  # Unix only
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux kB


class PeakMemory:
    """``with PeakMemory(runtime.device) as peak: ...``, then ``peak.bytes``: the peak above entry.

    CUDA: ``torch.cuda.max_memory_allocated`` after a reset (tensors only). CPU: the process's
    resident memory (RSS, psutil), sampled by a background thread every `interval` seconds, and
    the kernel's lifetime peak when the block set a new one, so short spikes are not missed.
    """

    def __init__(self, device="cpu", interval: float = 0.002):
        self.device = torch.device(device)
        self.interval = interval
        self.baseline = self.peak = 0
        self._stop = threading.Event()
        self._thread = None

    @property
    def bytes(self) -> int:
        return max(0, self.peak - self.baseline)

    def _now(self) -> int:
        if self.device.type == "cuda":
            return torch.cuda.memory_allocated(self.device)
        if self.device.type == "mps":
            return torch.mps.current_allocated_memory()
        import psutil

        return psutil.Process(os.getpid()).memory_info().rss

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._now())

    def __enter__(self) -> "PeakMemory":
        if self.device.type != "cuda":
            release_freed_memory()  # otherwise a run reusing memory an earlier run freed looks smaller
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.baseline = self.peak = self._now()
        self._max_rss_at_entry = _max_rss()
        if self.device.type != "cuda":
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = max(self.peak, torch.cuda.max_memory_allocated(self.device))
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._now())
        if self.device.type == "cpu" and _max_rss() > self._max_rss_at_entry:
            self.peak = max(self.peak, _max_rss())  # a new lifetime high was set inside the block


def measure_training_peak(source, *, batch_size: int, seq_len: int, steps: int = 2, timeout: float = 900) -> dict:
    """Measure full fine-tuning of the text classifier `source` in a fresh process (CPU, fp32).

    The baseline is the new process's resident memory once the libraries and the model's code are
    imported and a random batch of `batch_size` x `seq_len` tokens exists; the peak covers loading the model, building AdamW
    and `steps` training steps (from the second on, the optimizer state is in memory). A fresh
    process, because memory that earlier cells freed stays with the allocator and hides the cost.
    Returns ``peak_bytes`` (above the baseline), ``seconds`` and the model's ``params``.
    """
    payload = pickle.dumps((source, batch_size, seq_len, steps)).hex()
    code = f"import ftlib.memory as m; m._measure_in_this_process(bytes.fromhex('{payload}'))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the measuring process failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure_in_this_process(payload: bytes) -> None:
    from transformers import AutoConfig

    from .models import load_text_classifier, resolve

    source, batch_size, seq_len, steps = pickle.loads(payload)
    model_on_meta(AutoConfig.from_pretrained(resolve(source)))  # imports the model's code before the baseline
    torch.manual_seed(0)
    batch = {"input_ids": torch.randint(1000, 20000, (batch_size, seq_len)),
             "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),
             "labels": torch.randint(0, 2, (batch_size,))}
    start = time.perf_counter()
    with PeakMemory("cpu") as peak:
        model, _ = load_text_classifier(source, ["negative", "positive"])
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            model(**batch).loss.backward()
            optimizer.step()
    print(json.dumps({"peak_bytes": peak.bytes, "seconds": round(time.perf_counter() - start, 1),
                      "params": count_parameters(model)[1], "threads": torch.get_num_threads()}))
