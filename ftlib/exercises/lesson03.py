"""Checks and knowledge test for lesson 03 (Replacing the head).

Each check raises :class:`~ftlib.exercises.Hint` with a pointer, never the answer.
"""
from __future__ import annotations

import math
import numbers

from . import Hint, Question, Quiz

__all__ = ["check_label_maps", "check_my_new_head", "check_new_head_params", "QUIZ"]


def _ids_hint(id2label: dict, labels: list[str]) -> None:
    keys = list(id2label)
    if any(isinstance(k, str) for k in keys):
        if set(keys) == set(labels):
            raise Hint("your id2label maps names to ids; id2label goes the other way: from an id (a number) "
                       "to a class name")
        raise Hint("the keys of id2label are class ids, Python ints (the positions of the model's outputs), "
                   "not strings; config.json shows them as strings only because JSON keys must be")
    if not all(isinstance(k, numbers.Integral) and not isinstance(k, bool) for k in keys):
        raise Hint("the keys of id2label are class ids: whole numbers")
    if sorted(keys) != list(range(len(labels))):
        if sorted(keys) == sorted(int(name) for name in labels if name.isdigit()):
            raise Hint("the ids are positions of the model's outputs, so they always run from 0 to num_labels - 1, "
                       "whatever the class names are: here the class named '5' is not at output 5")
        raise Hint(f"the ids must be 0, 1, ..., num_labels - 1: one per output of the head ({len(labels)} outputs), "
                   "with no gap")


def check_label_maps(id2label, label2id, labels: list[str]) -> None:
    """Exercise 1: id2label (id -> name) and label2id (name -> id) for `labels`, ids in the data's order."""
    for name, value in (("id2label", id2label), ("label2id", label2id)):
        if not isinstance(value, dict):
            raise Hint(f"`{name}` should be a dict, got {type(value).__name__}: {{key: value, ...}}")
    if len(id2label) != len(labels) or len(label2id) != len(labels):
        raise Hint(f"one entry per class: the task has {len(labels)} classes, your dicts have "
                   f"{len(id2label)} and {len(label2id)} entries")
    _ids_hint(id2label, labels)
    if not all(isinstance(v, str) for v in id2label.values()) or sorted(id2label.values()) != sorted(labels):
        raise Hint("the values of id2label are the class names, exactly as the dataset spells them "
                   "(strings, from `labels`)")
    if any(id2label[i] != labels[i] for i in range(len(labels))):
        raise Hint("id i must name the class that the dataset stores as label i: follow the order of `labels` "
                   "(the dataset's ClassLabel), not your own order")
    if set(label2id) != set(labels):
        if all(isinstance(k, numbers.Integral) for k in label2id):
            raise Hint("your label2id maps ids to names; label2id goes the other way: from a class name to its id")
        raise Hint("the keys of label2id are the class names, exactly as in `labels`")
    if any(label2id[id2label[i]] != i for i in range(len(labels))):
        raise Hint("label2id must undo id2label: label2id[id2label[i]] should give i back for every i")


def check_my_new_head(my_model, text_model, new_labels: list[str], batch, runtime) -> None:
    """Exercise 3: `text_model`'s body with a new head for `new_labels`; `batch` holds labels of the new task."""
    import copy
    import dataclasses

    import torch
    from torch import nn

    from ..freezing import changed_weights, freeze_all_but_head, weights_snapshot
    from ..optim import make_optimizer
    from ..runtime import model_device
    from ..training import train_step

    n = len(new_labels)
    if my_model is text_model:
        raise Hint("that is `text_model` itself: start from a copy of it, so that the cells above keep their model")
    head, old_head = getattr(my_model, "classifier", None), text_model.classifier
    if not isinstance(head, nn.Linear):
        raise Hint("`my_model.classifier` should be the new head, one nn.Linear layer")
    if head is old_head or head.out_features != n:
        raise Hint(f"the head has {head.out_features} outputs; the new task has {n} classes: one output per class")
    if head.in_features != old_head.in_features:
        raise Hint(f"the head takes {head.in_features} features, but the body gives it {old_head.in_features}: "
                   "read the size off the old head")
    id2label, label2id = dict(my_model.config.id2label), dict(my_model.config.label2id)
    truth = dict(enumerate(new_labels))
    if id2label != truth:
        if set(map(str, id2label.values())) == set(text_model.config.id2label.values()):
            raise Hint("`my_model.config.id2label` still names the old classes: predictions would come back "
                       "with the old names")
        if {str(k) for k in id2label} == {str(k) for k in truth} and id2label != truth:
            raise Hint("`config.id2label` should map each output position, an int, to its class name, in the "
                       "order of the new labels")
        raise Hint(f"`config.id2label` should name the {n} new classes, position by position")
    if label2id != {name: i for i, name in truth.items()}:
        raise Hint("`config.label2id` should be the way back: from each class name to its output position")
    if getattr(my_model, "num_labels", None) != n:
        raise Hint(f"the model itself still counts {getattr(my_model, 'num_labels', None)} classes: transformers "
                   "keeps the count in the model too, and its loss uses it")
    body = model_device(my_model)
    if head.weight.device != body:
        raise Hint(f"the new head is on {head.weight.device}, the rest of the model on {body}: a new layer is "
                   "created on the CPU")
    old = dict(text_model.named_parameters())
    changed = [name for name, p in my_model.named_parameters() if not name.startswith("classifier.")
               and (name not in old or not torch.equal(p.detach().cpu(), old[name].detach().cpu()))]
    if changed:
        raise Hint(f"the pretrained body changed (e.g. {changed[0]}): keep it as it is, only the head is new")
    trial = copy.deepcopy(my_model)
    freeze_all_but_head(trial)
    before = weights_snapshot(trial)
    optimizer = make_optimizer(trial, lr=1e-3)
    constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    with torch.no_grad():
        logits = trial(**{k: v.to(body) for k, v in batch.items() if k != "labels"}).logits
    if tuple(logits.shape) != (len(batch["labels"]), n):
        raise Hint(f"the logits have shape {tuple(logits.shape)}, expected one row per example and one column "
                   "per class")
    train_step(trial, [(batch, 1.0)], optimizer, constant, dataclasses.replace(runtime, precision="fp32"))
    moved = changed_weights(trial, before)
    if not moved or any(not name.split(".")[0] in ("classifier", "pre_classifier") for name in moved):
        raise Hint(f"a training step with the body frozen should change the head only; it changed {moved[:3]}")


def check_new_head_params(new_params, model, missing_keys) -> None:
    """Exercise 2: how many parameters transformers initialised at random (those named in missing_keys)."""
    if isinstance(new_params, bool) or not isinstance(new_params, numbers.Real):
        raise Hint(f"`new_params` should be a number (a count of parameters), got {type(new_params).__name__}")
    if not math.isfinite(new_params) or new_params != int(new_params):
        raise Hint(f"a parameter count is a whole number, got {new_params}")
    value = int(new_params)
    params = dict(model.named_parameters())
    sizes = {key: params[key].numel() for key in missing_keys if key in params}
    truth = sum(sizes.values())
    if value == truth:
        return
    if value == len(missing_keys):
        raise Hint("that is the number of missing tensors (names); the question asks for the numbers inside "
                   "them: .numel() of each")
    weights = sum(n for key, n in sizes.items() if key.endswith("weight"))
    if value == weights:
        raise Hint("you counted the weight matrices only: the biases are newly initialised too")
    if value == truth - weights:
        raise Hint("you counted the biases only: the weight matrices are newly initialised too")
    modules = {}
    for key, n in sizes.items():  # per layer: 'classifier.weight' and 'classifier.bias' -> 'classifier'
        modules[key.rsplit(".", 1)[0]] = modules.get(key.rsplit(".", 1)[0], 0) + n
    if len(sizes) > 1 and (value in set(sizes.values()) or value in set(modules.values())):
        raise Hint("that is one of the missing tensors; add up every tensor named in missing_keys")
    total = sum(p.numel() for p in params.values())
    if value == total:
        raise Hint("that is the whole model; only the tensors in missing_keys were initialised at random, "
                   "the rest came from the checkpoint")
    if value > truth:
        raise Hint("too many: count only the tensors whose names are in missing_keys")
    raise Hint("look each name in missing_keys up in dict(model.named_parameters()) and add up their .numel()")


QUIZ = Quiz("Knowledge test: lesson 03", [
    Question(
        "A model pretrained on ImageNet (1000 classes) is loaded for a 5-class task with "
        "ignore_mismatched_sizes=True. What happens to the old 1000-class head?",
        ("It is kept, and its first 5 outputs are used",
         "It is dropped: a new 5-output head with random weights takes its place; the backbone keeps its weights",
         "The whole model is re-initialised",
         "transformers averages the 1000 outputs into 5 groups"),
        1,
        ("The first 5 ImageNet classes (tench, goldfish, ...) have nothing to do with the new task.",
         "Right: the load report lists the head as MISMATCH and it starts at random; everything below it is "
         "the checkpoint's.",
         "Only the tensors whose shapes do not match (the head) are new; the rest is loaded.",
         "Nothing like that happens: the old head's weights are simply not used."),
    ),
    Question(
        "The loading report of a text classifier says classifier.weight and classifier.bias are MISSING "
        "(newly initialised). What should you do?",
        ("Nothing before training: it is expected, the head is new and training will fit it",
         "Reinstall transformers: the checkpoint is damaged",
         "Load it again with a different seed until the warning goes away",
         "Use the model as it is for predictions"),
        0,
        ("Right: the checkpoint has no head for your labels, so it cannot be there. Worry only if backbone "
         "weights (encoder layers, embeddings) are reported missing.",
         "The file is fine: a head for your classes was never in it.",
         "The warning describes which weights are new; no seed changes that.",
         "Untrained, the head's outputs are random guesses: it must be fine-tuned first."),
    ),
    Question(
        "With id2label = {0: '5', 1: '6', 2: '7', 3: '8', 4: '9'}, the model's largest logit is at position 2. "
        "What does the model predict?",
        ("The digit 2", "The digit 7", "The digit 5", "Nothing: the ids must equal the digits"),
        1,
        ("2 is the position of the output, an id; the class name is id2label[2].",
         "Right: id2label[2] is '7'.",
         "'5' is the name of id 0.",
         "The ids are output positions and always start at 0; the names can be anything, here digits."),
    ),
    Question(
        "With 10 labelled images per class, why does a pretrained backbone with a new head usually beat the "
        "same network trained from scratch?",
        ("It has more parameters",
         "Its features (edges, strokes, shapes) were already learned from many images; the few labels only "
         "have to fit the head and adjust those features",
         "It trains with a larger learning rate",
         "Pretrained models cannot overfit"),
        1,
        ("It is the same architecture, with exactly the same number of parameters.",
         "Right: from scratch, the same few images must teach every layer, and they are not enough.",
         "Each run's rate was chosen the same way, on validation; the rate is not the cause.",
         "They can, and with few labels they do: lesson 08 is about that."),
    ),
    Question(
        "How does transformers initialise the new linear head of BertForSequenceClassification?",
        ("Weights from a normal distribution with std config.initializer_range (0.02), biases at zero",
         "All zeros",
         "Copied from the masked-language-model head",
         "Uniformly between -1 and 1"),
        0,
        ("Right: the lesson measured a std close to 0.02 and zero biases.",
         "Not what transformers does. (For this last layer zeros would even train: each class's row gets its "
         "own gradient, the class's probability minus its target times the features. It is hidden layers "
         "that zeros leave symmetric, every unit with the same gradient.)",
         "The MLM head predicts words, not your labels; it is not used.",
         "That would be far too large: outputs would be big and the first steps unstable."),
    ),
])
