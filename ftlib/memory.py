"""Memory: how much training will need, estimated before you start.

Introduced in lesson 01 (does this model fit on a 16 GB T4? on this CPU?). Measuring what a
run really took is the job of :mod:`ftlib.peak_memory`.

Training memory has four parts (the anatomy in the transformers docs, "model memory anatomy"):

    weights      every parameter, 4 bytes in fp32; mixed precision adds a half copy (2 more)
    gradients    one per *trainable* parameter, 4 bytes (fp32, also under mixed precision)
    optimizer    AdamW keeps two fp32 moments per trainable parameter: 8 bytes
    activations  what the forward pass keeps for the backward pass; grows with batch x tokens

So mixed-precision AdamW costs about 4 + 2 + 4 + 8 = 18 bytes per parameter plus activations.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .freezing import count_parameters

__all__ = [
    "ACTIVATION_OVERHEAD",
    "GB",
    "T4_BYTES",
    "MemoryEstimate",
    "activation_bytes",
    "device_budget",
    "estimate_training_memory",
    "model_on_meta",
]

GB = 1e9
T4_BYTES = int(15e9)  # a "16 GB" T4: PyTorch sees about 15.8 GB; keep some for the CUDA context
OPTIMIZER_BYTES = {"adamw": 8, "adam": 8, "sgd-momentum": 4, "sgd": 0}  # per trainable parameter
# Measured peaks are higher than the tensors autograd saves: temporaries of the backward pass and
# memory the allocator holds on to. Calibrated on a CPU (bench/memory_check.py): peak RSS of a full
# fine-tuning step of the lite encoder minus weights, gradients and AdamW state, divided by the
# saved tensors that activation_bytes counts: 1.24 to 1.37 at 32 x 128, 16 x 128 and 8 x 256 tokens.
ACTIVATION_OVERHEAD = 1.35
CAUSAL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3", "gpt2", "gpt_neox", "smollm3")
GATED_FFN = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3", "smollm3")


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
                     layers: int | None = None, flash_attention: bool = False,
                     logit_positions: int | None = None) -> int:
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
    fp32 (the logits the model returns, and the log-probabilities the loss keeps) at each of
    `logit_positions` positions per sequence (default: all `seq_len`; lesson 09 scores only the
    answer's). The rest is at `bytes_per_value`.
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
        scored = seq_len if logit_positions is None else min(logit_positions, seq_len)
        total += batch_size * scored * 2 * config.vocab_size * 4
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
                             flash_attention: bool = False, logit_positions: int | None = None,
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
        logit_positions: for a causal LM, positions per sequence where the output layer runs
            (default: every one; `make_qa_loader(answer_logits_only=True)` keeps the answer's).
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
                           layers=1 if method == "head" else None, flash_attention=flash_attention,
                           logit_positions=logit_positions)
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
