"""Checks and knowledge test for lesson 05 (Adapters).

Each check raises :class:`~ftlib.exercises.Hint` with a pointer, never the answer.
"""
from __future__ import annotations

import copy
import math
import numbers

import torch
from torch import nn

from . import Hint, Question, Quiz

__all__ = ["check_adapter_params", "check_files_per_full_model", "check_my_adapter", "QUIZ"]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5)


@torch.no_grad()
def check_my_adapter(my_out, my_adapter, h) -> None:
    """Exercise 1: the learner's adapter; `my_out` is its output for `h` right after it was built.

    With ``ftlib.adapters.Adapter``'s weights copied into a copy of it, both must compute the same.
    """
    from ..adapters import Adapter

    if not isinstance(my_out, torch.Tensor):
        raise Hint(f"forward should return a tensor, got {type(my_out).__name__}: did it end with the output?")
    if my_out.shape != h.shape:
        raise Hint(f"the output has shape {tuple(my_out.shape)}, the input {tuple(h.shape)}: an adapter gives "
                   "back a vector as wide as the one it received")
    hidden = h.shape[-1]
    down, up = getattr(my_adapter, "down", None), getattr(my_adapter, "up", None)
    if not isinstance(down, nn.Linear) or not isinstance(up, nn.Linear):
        raise Hint("name the two projections `down` and `up`, each an nn.Linear, so that the check (and the "
                   "cells below) can find them")
    if down.in_features != hidden or up.out_features != hidden or down.out_features != up.in_features:
        raise Hint(f"the shapes do not fit: `down` should take the {hidden}-wide input to the bottleneck, and "
                   "`up` the bottleneck back to the input's width")
    if down.out_features >= hidden:
        raise Hint("the bottleneck should be narrower than the input: use the `bottleneck` argument")
    reference = Adapter(hidden, down.out_features).to(h.device)
    nn.init.normal_(reference.up.weight, std=0.5)  # a trained-looking adapter: its correction is not zero
    nn.init.normal_(reference.up.bias, std=0.5)
    nn.init.normal_(reference.down.bias, std=0.5)
    mine = copy.deepcopy(my_adapter)
    mine.down.load_state_dict(reference.down.state_dict())
    mine.up.load_state_dict(reference.up.state_dict())
    x = torch.randn_like(h)
    got, want = mine(x), reference(x)
    if not isinstance(got, torch.Tensor) or not _close(got, want):
        correction = want - x
        act = reference.act
        if isinstance(got, torch.Tensor) and _close(got, correction):
            raise Hint("your output is only the correction: the adapter's input must also reach its output "
                       "(the skip connection)")
        if isinstance(got, torch.Tensor) and _close(got, x + reference.up(reference.down(x))):
            raise Hint("without a non-linearity between the two projections they collapse into one linear map")
        if isinstance(got, torch.Tensor) and _close(got, x + act(reference.up(reference.down(x)))):
            raise Hint("the non-linearity is in the wrong place: it belongs between the two projections")
        if isinstance(got, torch.Tensor) and _close(got, x + reference.up(torch.relu(reference.down(x)))):
            raise Hint("almost: the course's adapter uses GELU as its non-linearity, not ReLU")
        raise Hint("with ftlib's weights copied in, your adapter computes something else: go through the "
                   "parts in order (down, non-linearity, up, skip connection), and use each once")
    if torch.count_nonzero(down.weight) == 0:
        raise Hint("`down` starts at zero: then no gradient ever reaches either projection (the deep dive says "
                   "why); only one of the two should start at zero")
    if not _close(my_out, h):
        raise Hint("a new adapter should give back its input unchanged, so that inserting it changes nothing: "
                   "which of the two projections should start at zero, weights and bias?")


def _true_adapter_params(d: int, b: int) -> int:
    """What ftlib.adapters.Adapter(d, b) holds, counted from the module itself."""
    from ..adapters import Adapter

    return sum(p.numel() for p in Adapter(d, b).parameters())


def check_adapter_params(adapter_params, d: int, b: int) -> None:
    """Exercise 2: the parameters of one adapter (both projections, weights and biases) for width d, bottleneck b."""
    if isinstance(adapter_params, bool) or not isinstance(adapter_params, numbers.Real):
        raise Hint(f"`adapter_params` should be a number (a count of parameters), got {type(adapter_params).__name__}")
    if not math.isfinite(adapter_params) or adapter_params != int(adapter_params):
        raise Hint(f"a parameter count is a whole number, got {adapter_params}: "
                   "multiply and add the sizes of the layers, no division is needed")
    value = int(adapter_params)
    truth = _true_adapter_params(d, b)
    if value == truth:
        return
    if value == 2 * d * b:
        raise Hint("you counted the two weight matrices, but not the biases: nn.Linear(n_in, n_out) "
                   "also holds one bias per output")
    if value in (d * b, d * b + b, d * b + d):
        raise Hint("that is one projection; an adapter has two, `down` (d -> b) and `up` (b -> d): "
                   "look at Adapter.__init__ above")
    if value in (d * d, d * d + d, 2 * d * d, 2 * d * d + d, 2 * d * d + 2 * d):
        raise Hint("d * d is the size of a full d x d layer; the bottleneck replaces it by two thin "
                   "matrices, one d x b and one b x d")
    if value in (2 * d * b + b, 2 * d * b + d):
        raise Hint("you counted the biases of one projection only: `down` and `up` each have their own")
    if value in (2 * d * b + 2 * b, 2 * d * b + 2 * d):
        raise Hint("a layer has one bias per *output*: `down` outputs b values and `up` outputs d, "
                   "so their bias vectors have different sizes")
    if value > truth and value % truth == 0:
        raise Hint(f"that is {value // truth} adapters' worth; the question asks for one adapter "
                   "(one layer of width d)")
    raise Hint("count each nn.Linear in Adapter: a weight matrix of n_in x n_out, plus one bias per output; "
               "print(Adapter(d, b)) shows the in and out sizes")


def _row(results, method: str) -> dict:
    for row in results:
        if row.get("method") == method:
            return row
    raise Hint(f"`results` has no row with method {method!r}: run the comparison cells above first")


def check_files_per_full_model(files_per_full_model, results) -> None:
    """Exercise 3: how many adapter files fit in the space of one full copy, from the table's parameter counts."""
    full, adapter, head = _row(results, "full"), _row(results, "adapter"), _row(results, "head")
    exact = full["trainable"] / adapter["trainable"]
    truth = math.floor(exact)
    if isinstance(files_per_full_model, bool) or not isinstance(files_per_full_model, numbers.Real):
        raise Hint(f"`files_per_full_model` should be a number of files (an int), got "
                   f"{type(files_per_full_model).__name__}")
    if not math.isfinite(files_per_full_model) or files_per_full_model < 0:
        raise Hint(f"{files_per_full_model} is not a number of files: divide two sizes (or counts) that are both above zero")
    if 0 < files_per_full_model < 1:
        raise Hint("you divided the wrong way round: how many adapter-sized files go into one full model?")
    if not isinstance(files_per_full_model, numbers.Integral):
        if abs(files_per_full_model - exact) < 1e-6 * exact:
            raise Hint("that is the exact ratio; only whole files fit: round down (// or math.floor)")
        if files_per_full_model != int(files_per_full_model):
            raise Hint("a number of files is a whole number: round down (// or math.floor)")
    value = int(files_per_full_model)
    if value == truth:
        return
    from_percent = set()
    if adapter.get("percent"):
        from_percent = {math.floor(100 / adapter["percent"]), round(100 / adapter["percent"])}
    percent_hint = ("100 / percent divides by the adapter model's own total, which includes its adapters; "
                    "a full copy stores the 'full' row's parameters")
    if value == math.ceil(exact):
        if value in from_percent:
            raise Hint("one file too many: either you rounded up (round down: a partial file does not fit), or "
                       + percent_hint)
        raise Hint("you rounded up; the last, partial file does not fit: round down")
    if value == 0:
        raise Hint("you divided the wrong way round: how many adapter-sized files go into one full model?")
    if value in (math.floor(full["trainable"] / head["trainable"]), round(full["trainable"] / head["trainable"])):
        raise Hint("that uses the head-only row; an adapter file holds what trained in the 'adapter' run")
    if value in from_percent:
        raise Hint(percent_hint)
    raise Hint("a saved file stores the parameters that trained, 4 bytes each: compare the 'trainable' "
               "counts of the 'full' and 'adapter' rows of `results`")


QUIZ = Quiz("Knowledge test: lesson 05", [
    Question(
        "Why is an adapter's up-projection initialised to zero?",
        ("To save memory",
         "So that at first the adapter adds nothing and the model is exactly the pretrained one",
         "Because the optimiser cannot update weights that start at random",
         "So that the adapter never changes the output"),
        1,
        ("Zeros take as much memory as any other value.",
         "Right: h + up(gelu(down(h))) = h + 0, so training starts from the pretrained model, not a damaged one.",
         "Random starts train fine (the down-projection starts random); the point is not to disturb the model.",
         "Only at the start: the first gradient steps move the up-projection away from zero."),
    ),
    Question(
        "An adapter maps width d to bottleneck b and back, with biases. How many parameters does it add?",
        ("d * d", "2 * d * b", "2 * d * b + b + d", "d + b"),
        2,
        ("That is a full d x d layer, far bigger than an adapter when b is much smaller than d.",
         "Close, but that forgets the two bias vectors.",
         "Right: down has d * b weights and b biases, up has b * d weights and d biases.",
         "Those are only the biases."),
    ),
    Question(
        "With adapters, which parameters train?",
        ("All of them, a little",
         "Only the adapters",
         "The adapters, the layer norms and the task head; the pretrained weights stay frozen",
         "Only the task head"),
        2,
        ("That is full fine-tuning.",
         "Almost: the new task head must train too, and Houlsby et al. also train the layer norms.",
         "Right: a few percent of the parameters, as add_adapters sets them.",
         "That is the head-only method: the body stays exactly as it was pretrained."),
    ),
    Question(
        "Adapters train a few percent of the parameters. Why does a training step still cost much more than a "
        "few percent of a full fine-tuning step?",
        ("Adapters are computed on the CPU",
         "The gradient must still flow back through every block to reach the adapters in the lowest layers",
         "The optimizer updates the frozen weights anyway",
         "The bottleneck makes the forward pass much longer"),
        1,
        ("Every part of the model runs on the same device.",
         "Right: the forward pass is as long as before and the backward pass still goes through the whole "
         "network; what is saved is the gradients and optimizer state of the frozen weights (memory), and storage.",
         "Frozen weights get no gradient and no update.",
         "An adapter adds two thin layers per sub-layer: a small cost next to attention and the feed-forward layer."),
    ),
    Question(
        "You serve 50 tasks from one pretrained encoder. What do you store with adapters?",
        ("50 full copies of the fine-tuned model",
         "One frozen copy of the pretrained model, plus 50 small adapter files",
         "Only the 50 adapter files: the pretrained weights are not needed any more",
         "One model fine-tuned on all 50 tasks at once"),
        1,
        ("That is what full fine-tuning needs: 50 times the model's size.",
         "Right: load_finetuned loads the shared pretrained model and puts one task's adapters into it.",
         "An adapter only adjusts the pretrained model's hidden states; without the pretrained weights it does nothing.",
         "That is multi-task learning, a different method; adapters keep the tasks apart."),
    ),
])
