"""Checks and knowledge test for lesson 06 (LoRA)."""
from __future__ import annotations

import copy

import torch
from torch import nn

from . import Hint, Question, Quiz

__all__ = ["QUIZ", "check_chosen_rank", "check_lora_params", "check_my_add_lora", "check_my_lora_linear"]


def check_lora_params(lora_params, d_in: int, d_out: int, r: int) -> None:
    """Exercise 1: trainable numbers LoRA adds to one d_in -> d_out linear layer at rank r."""
    if not isinstance(lora_params, int):
        raise Hint(f"`lora_params` should be a whole number, got {type(lora_params).__name__}")
    truth = r * (d_in + d_out)
    if lora_params == truth:
        return
    if lora_params in (r * d_in, r * d_out):
        raise Hint("that is one of the two matrices: LoRA trains both A and B")
    if lora_params == d_in * d_out:
        raise Hint("that is the size of the frozen weight W0 itself, which LoRA does not train")
    if lora_params in (r * r, 2 * r * r):
        raise Hint("A and B are not r x r: A maps d_in numbers down to r, B maps r back up to d_out")
    raise Hint("write down the shapes of A and B, then add up their entries")


def _close(a, b) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5)


def _trained_looking(layer) -> None:
    """Non-zero A and B, as after some training, so that the update matters."""
    with torch.no_grad():
        layer.lora_A.normal_(std=0.3)
        layer.lora_B.normal_(std=0.3)


@torch.no_grad()
def check_my_lora_linear(my_out, my_layer, x) -> None:
    """Exercise 2a: the learner's LoRA layer; `my_out` is its output for `x` right after it was built.

    With the same A and B in ``ftlib.lora.LoRALinear`` around the same frozen layer, both must compute the same.
    """
    from ..lora import LoRALinear

    base = getattr(my_layer, "base", None)
    if not isinstance(base, nn.Linear):
        raise Hint("the layer should keep the frozen nn.Linear it wraps in `self.base`, as the given __init__ does")
    if not isinstance(my_out, torch.Tensor):
        raise Hint(f"forward should return a tensor, got {type(my_out).__name__}: did it end with the output?")
    want_shape = (*x.shape[:-1], base.out_features)
    if tuple(my_out.shape) != want_shape:
        raise Hint(f"the output has shape {tuple(my_out.shape)}, the frozen layer's has {want_shape}: "
                   "the update must end as wide as the layer's output")
    r, alpha = my_layer.lora_A.shape[0], getattr(my_layer, "alpha", None)
    reference = LoRALinear(base, r=r, alpha=alpha)
    mine = copy.deepcopy(my_layer)
    _trained_looking(reference)
    mine.lora_A.copy_(reference.lora_A)
    mine.lora_B.copy_(reference.lora_B)
    try:
        got = mine(x)
    except RuntimeError as error:
        raise Hint("with a rank below the layer's width, the shapes in your forward do not fit "
                   f"({str(error).splitlines()[0][:80]}): A takes the input down to r numbers, B takes them back up") from None
    want = reference(x)
    if _close(got, want):
        if not _close(my_out, base(x)):
            raise Hint("a new LoRA layer should give exactly the frozen layer's output (B starts at zero): yours "
                       "did not, so something besides the low-rank path changed it")
        return
    A, B, W = reference.lora_A, reference.lora_B, base.weight
    update = x @ A.T @ B.T
    if _close(got, base(x) + update):
        raise Hint("the low-rank path is not scaled: LoRA multiplies it by a factor made of alpha and r")
    if _close(got, base(x) + (r / alpha) * update):
        raise Hint("the scale is upside down: it grows with alpha and shrinks with r")
    if _close(got, reference.scaling * update) or _close(got, update):
        raise Hint("that is only the low-rank update: the frozen layer's own output must be there too")
    if _close(got, x @ W.T + reference.scaling * update) and base.bias is not None:
        raise Hint("the frozen layer's bias is missing: let the wrapped layer compute its own output")
    if torch.is_tensor(got) and got.shape == want.shape and A.shape[1] == B.shape[0]:
        swapped = base(x) + reference.scaling * (x @ B @ A)
        if _close(got, swapped):
            raise Hint("A and B are swapped: the input goes through A first (down to r numbers), then through B")
    raise Hint("with ftlib's A and B copied in, your layer computes something else: the frozen layer's output, "
               "plus the low-rank path (A, then B) times its scale")


def _tiny_bert():
    """A tiny random BERT classifier (offline, a fraction of a second to build)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config).eval()


def check_my_add_lora(my_replaced, my_add_lora) -> None:
    """Exercise 2b: the learner's injection, on a tiny BERT, against ``ftlib.lora.add_lora`` with the same A and B.

    `my_replaced` is what it returned on the lesson's model (``...`` when not answered).
    """
    from ..lora import add_lora

    if not isinstance(my_replaced, list) or not all(isinstance(n, str) for n in my_replaced):
        raise Hint(f"`replaced` should be a list of the names of the layers you replaced, got "
                   f"{type(my_replaced).__name__}")
    targets = ("query", "value")
    mine, theirs = _tiny_bert(), _tiny_bert()
    names = my_add_lora(mine, targets, r=4, alpha=8)
    want = add_lora(theirs, targets, r=4, alpha=8)
    wrapped = [n for n, m in mine.named_modules()  # a LoRA layer: a wrapped nn.Linear with A and B
               if isinstance(getattr(m, "base", None), nn.Linear) and hasattr(m, "lora_A") and hasattr(m, "lora_B")]
    if any("." in k for m in mine.modules() for k in m._modules):
        raise Hint("the model still holds its original layers: a module stored under a dotted name is a new "
                   "attribute, not the layer it names; put the new module on the parent, under the last part "
                   "of the name")
    if not wrapped:
        raise Hint("after your function, the model holds no LoRA layer: each matching nn.Linear must be replaced "
                   "in its parent module by a wrapped one")
    extra = sorted(set(wrapped) - set(want))
    if extra:
        raise Hint(f"you also wrapped {extra[0].rsplit('.', 1)[-1]!r} layers, which are not among the targets: "
                   "compare the last part of each layer's name with the targets")
    if sorted(wrapped) != sorted(want):
        raise Hint("some targeted layers were not replaced: every nn.Linear whose name ends with a target gets one")
    if not isinstance(names, list) or sorted(names) != sorted(want):
        raise Hint("the layers are replaced, but the list your function returns does not name them: return the "
                   "name of every layer you replaced")
    trainable = lambda m: sorted(n for n, p in m.named_parameters() if p.requires_grad)
    if trainable(mine) != trainable(theirs):
        raise Hint("the layers are in place, but the parameters that train differ from ftlib's: only A and B of "
                   "each new layer, and the task head, should train")
    for name in want:
        a, b = mine.get_submodule(name), theirs.get_submodule(name)
        _trained_looking(b)
        with torch.no_grad():
            a.lora_A.copy_(b.lora_A)
            a.lora_B.copy_(b.lora_B)
    ids = torch.randint(64, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        same = _close(mine(input_ids=ids).logits, theirs(input_ids=ids).logits)
    if not same:
        raise Hint("the right layers are replaced, but with the same A and B the model computes something else "
                   "than ftlib's: does your layer pass exercise 2a's check?")


def check_chosen_rank(chosen_r, results) -> None:
    """Exercise 3: the smallest rank whose validation accuracy is within one point of the best."""
    ranks = {row["r"]: row["val_accuracy"] for row in results}
    if chosen_r not in ranks:
        raise Hint(f"choose one of the ranks that were run: {sorted(ranks)}")
    best = max(ranks.values())
    good = sorted(r for r, acc in ranks.items() if acc >= best - 0.01)
    if chosen_r == good[0]:
        return
    on_test = {row["r"]: row["accuracy"] for row in results}
    best_test = max(on_test.values())
    by_test = sorted(r for r, acc in on_test.items() if acc >= best_test - 0.01)
    if chosen_r == by_test[0]:
        raise Hint("that is the choice the *test* accuracy makes: choose on the validation accuracy, and leave "
                   "the test set for the final report")
    if chosen_r not in good:
        raise Hint(f"rank {chosen_r} is more than one point below the best validation accuracy ({best:.3f})")
    raise Hint("a smaller rank is also within one point of the best validation accuracy: fewer parameters, "
               "same quality")


QUIZ = Quiz("Knowledge test: lesson 06", [
    Question(
        "Why is B initialised to zero (and not A)?",
        ("So that training is faster", "So that the adapted model starts exactly as the pretrained one, while gradients still reach B",
         "Because zeros use less memory", "It makes no difference"),
        1,
        ("Speed is the same; the reason is the starting point.",
         "Right: B·A = 0 at first, so outputs are unchanged; with A random, the gradient of B is not zero and training starts.",
         "A zero matrix takes as much memory as any other.",
         "If both were zero, no gradient would reach either, and LoRA would never train."),
    ),
    Question(
        "A 384 x 384 projection gets LoRA with r = 8. About how many numbers train there?",
        ("147,456", "6,144", "64", "3,072"),
        1,
        ("That is the frozen W0 (384 x 384).",
         "Right: A is 8 x 384 and B is 384 x 8, 2 x 8 x 384 = 6,144: about 4 % of W0.",
         "That is r x r; A and B connect r to the layer's width.",
         "That is only one of the two matrices."),
    ),
    Question(
        "After merging (W = W0 + (alpha/r)·B·A), what changes at prediction time?",
        ("Predictions get worse", "Nothing in the outputs, and the extra matrix multiplications disappear",
         "The model needs peft to run", "The adapter file becomes larger"),
        1,
        ("Merging is exact arithmetic: the outputs stay the same (up to rounding).",
         "Right: a merged model is an ordinary model, as fast as the original.",
         "A merged model is a plain transformers model.",
         "Merging does not touch the saved adapter; it changes the in-memory model."),
    ),
    Question(
        "A rank sweep keeps alpha = 16 for every r, and r = 64 ends below r = 4. What can you conclude about the rank?",
        ("Large ranks overfit this task",
         "Not much yet: the scale alpha/r also fell 16-fold, so r = 64 took smaller steps; hold the scale's rule "
         "fixed (alpha = 2r, or rsLoRA) and compare against the seed spread",
         "The task needs exactly rank 4", "LoRA does not work above rank 16"),
        1,
        ("Perhaps, but two things changed at once: the rank and the size of the update.",
         "Right: with alpha fixed, rank and step size are confounded; a fair sweep changes only the rank, and a "
         "difference counts only when it is larger than what the seed alone produces.",
         "One confounded sweep cannot say that; smaller ranks might do as well with a matching scale.",
         "Nothing in the sweep shows that: at r = 64 the update was scaled by 0.25, against 4 at r = 4."),
    ),
    Question(
        "With alpha fixed, what does doubling r do to the scaling alpha / r?",
        ("Doubles it", "Halves it", "Nothing", "Squares it"),
        1,
        ("alpha / (2r) is half of alpha / r.",
         "Right: that is why alpha and r are usually changed together (alpha = 2r keeps the scale fixed).",
         "The scaling depends on r.",
         "It is a division, not a power."),
    ),
    Question(
        "rsLoRA scales LoRA's update by alpha / sqrt(r). With alpha fixed, what does going from r = 4 to r = 16 do to the scale?",
        ("Divides it by 4", "Halves it", "Leaves it unchanged", "Doubles it"),
        1,
        ("That is what alpha / r does; rsLoRA divides by the square root of r.",
         "Right: sqrt(16) = 2 sqrt(4). The scale still shrinks with r, but more slowly than alpha / r, which "
         "Kalajdzievski (2023) shows keeps learning stable as r grows.",
         "That would be alpha = 2r with plain alpha / r; rsLoRA's scale still depends on r.",
         "The scale goes down with r, not up."),
    ),
])
