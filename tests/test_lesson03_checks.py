"""Lesson 03's checks: a right answer passes, and each common slip gets its own hint."""
import pytest
from torch import nn

from ftlib.exercises import Hint, check, lesson03

LABELS = ["5", "6", "7", "8", "9"]
ID2LABEL = {0: "5", 1: "6", 2: "7", 3: "8", 4: "9"}
LABEL2ID = {"5": 0, "6": 1, "7": 2, "8": 3, "9": 4}


def hint_of(fn, *args):
    with pytest.raises(Hint) as info:
        fn(*args)
    return str(info.value)


def test_label_maps_right_answer_passes():
    lesson03.check_label_maps(dict(ID2LABEL), dict(LABEL2ID), LABELS)
    lesson03.check_label_maps({0: "neg", 1: "pos"}, {"neg": 0, "pos": 1}, ["neg", "pos"])


SLIPS = {
    "swapped id2label": ((LABEL2ID, LABEL2ID), "names to ids"),
    "swapped label2id": ((ID2LABEL, ID2LABEL), "ids to names"),
    "string ids": (({str(i): n for i, n in ID2LABEL.items()}, LABEL2ID), "Python ints"),
    "digits as ids": (({int(n): n for n in LABELS}, {n: int(n) for n in LABELS}), "not at output 5"),
    "ids from 1": (({i + 1: n for i, n in ID2LABEL.items()}, LABEL2ID), "0, 1, ..., num_labels - 1"),
    "wrong order": (({i: n for i, n in enumerate(reversed(LABELS))}, {n: i for i, n in enumerate(reversed(LABELS))}),
                    "order of `labels`"),
    "int names": (({i: int(n) for i, n in ID2LABEL.items()}, LABEL2ID), "exactly as the dataset spells"),
    "not inverse": ((ID2LABEL, {**LABEL2ID, "5": 1, "6": 0}), "undo id2label"),
    "missing class": (({i: n for i, n in ID2LABEL.items() if i < 4}, LABEL2ID), "5 classes"),
    "list": ((LABELS, LABEL2ID), "should be a dict"),
}


@pytest.mark.parametrize("slip", SLIPS)
def test_label_maps_hints_name_the_slip(slip):
    (id2label, label2id), words = SLIPS[slip]
    message = hint_of(lesson03.check_label_maps, id2label, label2id, LABELS)
    assert words in message
    assert str(ID2LABEL) not in message and str(LABEL2ID) not in message


def test_unanswered_exercise_says_not_answered(capsys):
    check(lesson03.check_label_maps, ..., ..., LABELS, strict=False)
    assert "Not answered yet" in capsys.readouterr().out


class TwoLayerHead(nn.Module):
    """Shaped like DistilBERT's head: pre_classifier (d x d) then classifier (d x 2)."""

    def __init__(self, d=8, n=2):
        super().__init__()
        self.body = nn.Linear(d, d)
        self.pre_classifier = nn.Linear(d, d)
        self.classifier = nn.Linear(d, n)


MISSING = {"pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"}
MODEL = TwoLayerHead()
TRUTH = (8 * 8 + 8) + (8 * 2 + 2)


def test_new_head_params_right_answer_passes():
    lesson03.check_new_head_params(TRUTH, MODEL, MISSING)
    lesson03.check_new_head_params(float(TRUTH), MODEL, MISSING)
    small = nn.Module()
    small.classifier = nn.Linear(384, 2)
    lesson03.check_new_head_params(770, small, {"classifier.weight", "classifier.bias"})


@pytest.mark.parametrize("wrong, words", [
    (4, "number of missing tensors"),
    (8 * 8 + 8 * 2, "weight matrices only"),
    (8 + 2, "biases only"),
    (8 * 2 + 2, "one of the missing tensors"),
    (8 * 2, "one of the missing tensors"),
    (TRUTH + 72, "whole model"),
    (TRUTH + 1, "too many"),
    (5, "look each name"),
    ("90", "should be a number"),
    (89.5, "whole number"),
])
def test_new_head_params_hints(wrong, words):
    message = hint_of(lesson03.check_new_head_params, wrong, MODEL, MISSING)
    assert words in message and str(TRUTH) not in message


def test_quiz_is_well_formed():
    assert 4 <= len(lesson03.QUIZ.questions) <= 6
    for q in lesson03.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3


# Exercise 3: a new head for a new task, on the text model.
import copy  # noqa: E402

import torch  # noqa: E402

DOMAINS = ["electronics", "film", "restaurant"]


@pytest.fixture(scope="module")
def head_setting():
    import tiny
    from ftlib.data import make_loader, tokenize
    from ftlib.runtime import get_runtime

    tok = tiny.tokenizer()
    ds = tiny.dataset(8).map(lambda r, i: {"label": i % 3}, with_indices=True)
    batch = next(iter(make_loader(tokenize(ds, tok, max_length=32), tok, batch_size=8, shuffle=False)))
    return tiny.classifier(), batch, get_runtime("smoke", device="cpu")


def new_head(text_model, *, outputs=3, id2label=True, num_labels=True, keys=int, touch_body=False):
    """The exercise as a learner writes it, with the slips the tests need."""
    my_model = copy.deepcopy(text_model)
    my_model.classifier = nn.Linear(my_model.classifier.in_features, outputs)
    if num_labels:
        my_model.num_labels = len(DOMAINS)
    if id2label:
        my_model.config.id2label = {keys(i): name for i, name in enumerate(DOMAINS)}
        my_model.config.label2id = {name: i for i, name in enumerate(DOMAINS)}
    if touch_body:
        with torch.no_grad():
            my_model.bert.pooler.dense.bias.add_(1.0)
    return my_model


def test_my_new_head_right_answer_passes(head_setting):
    text_model, batch, runtime = head_setting
    lesson03.check_my_new_head(new_head(text_model), text_model, DOMAINS, batch, runtime)


def test_my_new_head_hints_name_the_slip(head_setting):
    text_model, batch, runtime = head_setting
    check = lesson03.check_my_new_head
    args = (text_model, DOMAINS, batch, runtime)
    assert "one output per class" in hint_of(check, new_head(text_model, outputs=2), *args)
    assert "still names the old classes" in hint_of(check, new_head(text_model, id2label=False), *args)
    assert "an int" in hint_of(check, new_head(text_model, keys=str), *args)
    assert "its loss uses it" in hint_of(check, new_head(text_model, num_labels=False), *args)
    assert "body changed" in hint_of(check, new_head(text_model, touch_body=True), *args)
    assert "a copy" in hint_of(check, text_model, *args)
    assert "one output per class" in hint_of(check, copy.deepcopy(text_model), *args)


def test_my_new_head_on_the_wrong_device(head_setting):
    import emulated_gpu

    text_model, batch, runtime = head_setting
    with emulated_gpu.emulate_gpu():
        on_gpu = copy.deepcopy(text_model).to("cuda")
        forgot = new_head(on_gpu)  # the new layer stays on the CPU
        assert "created on the CPU" in hint_of(lesson03.check_my_new_head, forgot, on_gpu, DOMAINS, batch, runtime)


def test_my_new_head_unanswered_says_so(head_setting, capsys):
    text_model, batch, runtime = head_setting
    check(lesson03.check_my_new_head, ..., text_model, DOMAINS, batch, runtime)
    assert "Not answered yet" in capsys.readouterr().out


def test_my_new_head_hints_never_give_the_answer(head_setting):
    text_model, batch, runtime = head_setting
    for slip in ({"outputs": 2}, {"id2label": False}, {"num_labels": False}):
        hint = hint_of(lesson03.check_my_new_head, new_head(text_model, **slip), text_model, DOMAINS, batch, runtime)
        assert "nn.Linear(" not in hint and "num_labels =" not in hint and "enumerate" not in hint
