"""LoRA written from scratch, and the bridge to peft.

Introduced in lesson 06. A frozen linear layer W0 gets a trainable low-rank update:

    h = W0·x + (alpha / r) · B·A·x        A: (r, in), B: (out, r), r << min(in, out)

B starts at zero, so at first the model is exactly the pretrained one; A starts random
(Kaiming-uniform, as in peft), so that gradients reach B from the first step. Only A and
B train: r·(in + out) numbers instead of in·out. After training, B·A can be merged into
W0, and the model is as fast as before (Hu et al. 2021, arXiv 2106.09685).

With ``rslora=True`` the scale is alpha / sqrt(r) instead (rank-stabilized LoRA, Kalajdzievski 2023,
arXiv 2312.03732; peft's ``use_rslora=True``): with alpha fixed, alpha / r shrinks the update as r
grows, and the paper shows that learning stays stable across ranks when the scale shrinks like 1/sqrt(r).
"""
from __future__ import annotations

import math
import re

import torch
from torch import nn

from .freezing import HEADS

__all__ = ["ALL_LINEAR_TARGETS", "ALPHA", "DEFAULT_TARGETS", "R", "FFN_TARGETS", "LoRALinear", "add_lora",
           "lora_scaling", "merge_lora", "peft_config"]

R, ALPHA = 8, 16.0  # the course's default rank and scaling numerator (alpha / r = 2), as in many LoRA recipes

# The attention projections LoRA adapts by default (query and value, as in Hu et al.), per architecture.
DEFAULT_TARGETS = {"bert": ("query", "value"), "distilbert": ("q_lin", "v_lin"), "llama": ("q_proj", "v_proj")}
# The two feed-forward projections of each block (regular expressions: BERT's 'output.dense'
# would otherwise also match the attention's 'attention.output.dense').
FFN_TARGETS = {"bert": (r".*intermediate\.dense", r".*layer\.\d+\.output\.dense"),
               "distilbert": (r".*ffn\.lin1", r".*ffn\.lin2"), "llama": ("gate_proj", "up_proj", "down_proj")}
# Every linear layer of every block: the four attention projections and the feed-forward ones. The command
# line's default for text classification: on SST-2 (5,000 sentences, lite) it came within 2 points of full
# fine-tuning, where query and value alone fell 2.2 points short (issue 17; README, "From the command line").
ALL_LINEAR_TARGETS = {"bert": ("query", "key", "value", r".*attention\.output\.dense", *FFN_TARGETS["bert"]),
                      "distilbert": ("q_lin", "k_lin", "v_lin", "out_lin", *FFN_TARGETS["distilbert"]),
                      "llama": ("q_proj", "k_proj", "v_proj", "o_proj", *FFN_TARGETS["llama"])}
# Gemma 3 and Qwen2 (the course's causal LMs in lite and full) name their layers as Llama does.
for _table in (DEFAULT_TARGETS, FFN_TARGETS, ALL_LINEAR_TARGETS):
    _table.update({"gemma3_text": _table["llama"], "qwen2": _table["llama"]})
del _table


def lora_scaling(r: int, alpha: float = ALPHA, rslora: bool = False) -> float:
    """The factor on B·A: alpha / r, or alpha / sqrt(r) with rank-stabilized LoRA (as peft computes it)."""
    return alpha / math.sqrt(r) if rslora else alpha / r


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update of rank `r`."""

    def __init__(self, base: nn.Linear, r: int = R, alpha: float = ALPHA, dropout: float = 0.0,
                 rslora: bool = False):
        super().__init__()
        if r < 1:
            raise ValueError(f"LoRA rank r must be at least 1, got {r}: typical values are 4 to 64")
        self.base = base
        self.base.requires_grad_(False)
        device = base.weight.device  # next to the weight it updates (a GPU, if the model is already there)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=device))  # zero: the update starts at 0
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)
        self.r, self.alpha, self.rslora = r, alpha, rslora
        self.scaling = lora_scaling(r, alpha, rslora)  # alpha / r, or alpha / sqrt(r) (rsLoRA)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.dropout(x) @ self.lora_A.T @ self.lora_B.T  # (..., in) -> (..., r) -> (..., out)
        return self.base(x) + self.scaling * update

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with W0 + scaling·B·A folded in."""
        linear = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(self.base.weight + self.scaling * self.lora_B @ self.lora_A)
            if self.base.bias is not None:
                linear.bias.copy_(self.base.bias)
        return linear.to(self.base.weight.device, self.base.weight.dtype)


def _matches(name: str, targets) -> bool:
    # A target matches the end of a module's dotted name ('query' matches 'encoder.layer.0.attention.self.query');
    # a target with regex characters is matched as a regular expression against the full name.
    return any(re.fullmatch(t, name) if any(c in t for c in "*+?[(\\|") else (name == t or name.endswith("." + t))
               for t in targets)


def add_lora(model: nn.Module, targets=None, *, r: int = R, alpha: float = ALPHA,
             dropout: float = 0.0, rslora: bool = False, train_also=HEADS) -> list[str]:
    """Freeze `model`, replace every ``nn.Linear`` named by `targets` with a LoRALinear, in place.

    Modules named in `train_also` (the new task head) stay trainable. `targets` defaults to
    the architecture's query and value projections; ``rslora=True`` scales by alpha / sqrt(r)
    instead of alpha / r. Returns the names of the replaced layers; raises if none matched.
    """
    if targets is None:
        kind = getattr(getattr(model, "config", None), "model_type", None)
        if kind not in DEFAULT_TARGETS:
            raise ValueError(f"no default LoRA targets for model type {kind!r}: pass targets=[...]")
        targets = DEFAULT_TARGETS[kind]
    model.requires_grad_(False)
    replaced = []
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and _matches(name, targets):
            parent, _, child = name.rpartition(".")
            lora = LoRALinear(module, r, alpha, dropout, rslora)
            setattr(model.get_submodule(parent) if parent else model, child, lora)
            replaced.append(name)
    if not replaced:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"no linear layer matches {list(targets)}: this model's linear layers are named {linear}")
    for name, module in model.named_modules():
        if _matches(name, train_also):
            module.requires_grad_(True)
    return replaced


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear by the merged ``nn.Linear``, in place; outputs stay the same."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, module.merged())
    return model


def peft_config(targets=DEFAULT_TARGETS["bert"], *, r: int = R, alpha: float = ALPHA, dropout: float = 0.0,
                rslora: bool = False, train_also=HEADS, task_type: str = "SEQ_CLS"):
    """The same set-up as :func:`add_lora`, as a ``peft.LoraConfig``."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, use_rslora=rslora,
                      target_modules=list(targets), modules_to_save=list(train_also) or None, task_type=task_type)
