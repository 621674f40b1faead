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
