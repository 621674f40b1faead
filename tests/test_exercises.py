import pytest

from ftlib.exercises import Hint, Question, Quiz, check
from ftlib.exercises import lesson00


def test_check_passes_hints_and_reminds(capsys):
    def must_be_three(x):
        if x != 3:
            raise Hint("three is the number")

    check(must_be_three, 3)
    check(must_be_three, 4)
    check(must_be_three, ...)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✓ Correct!" and out[1] == "✗ Not yet: three is the number" and out[2].startswith("⏳ Not answered")


def test_strict_mode_raises(monkeypatch):
    monkeypatch.setenv("FTLIB_STRICT", "1")
    with pytest.raises(Hint):
        check(lambda x: (_ for _ in ()).throw(Hint("no")), 1)
    with pytest.raises(Hint, match="Not answered"):
        check(lambda x: None, ...)


def test_question_needs_one_explanation_per_option():
    with pytest.raises(ValueError):
        Question("q?", ("a", "b"), 0, ("only one",))
    with pytest.raises(ValueError):
        Question("q?", ("a", "b"), 2, ("x", "y"))


def test_quiz_text_shows_every_option_and_explanation():
    quiz = Quiz("T", [Question("q?", ("a", "b"), 1, ("why a", "why b"))])
    text = quiz.as_text()
    assert "a) a" in text and "✓ b) b" in text and "why a" in text and "why b" in text


def test_lesson00_quiz_is_complete():
    for q in lesson00.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3


class Split(dict):
    def __len__(self):
        return len(self["label"])


def hint_of(fn, *args):
    with pytest.raises(Hint) as info:
        fn(*args)
    return str(info.value)


def test_label_count_check_gives_specific_hints():
    split, id2label = Split(label=[0, 1, 1, 1]), {0: "negative", 1: "positive"}
    lesson00.check_label_counts({"negative": 1, "positive": 3}, split, id2label)
    assert "label ids" in hint_of(lesson00.check_label_counts, {0: 1, 1: 3}, split, id2label)
    assert "add up to 6" in hint_of(lesson00.check_label_counts, {"negative": 2, "positive": 4}, split, id2label)
    assert "'negative'" in hint_of(lesson00.check_label_counts, {"negative": 0, "positive": 4}, split, id2label)
    assert "dict" in hint_of(lesson00.check_label_counts, [1, 3], split, id2label)


def test_accuracy_check_recognises_common_slips():
    preds, labels = ["a", "b", "b", "a"], ["a", "b", "a", "a"]  # 3 of 4 right
    lesson00.check_accuracy(0.75, preds, labels)
    assert "percentage" in hint_of(lesson00.check_accuracy, 75, preds, labels)
    assert "number of correct" in hint_of(lesson00.check_accuracy, 3, preds, labels)
    assert "error rate" in hint_of(lesson00.check_accuracy, 0.25, preds, labels)
    assert "0.75" not in hint_of(lesson00.check_accuracy, 0.5, preds, labels)  # never the answer


def test_mistake_check():
    texts, labels = ["good", "bad"], ["positive", "negative"]
    always_positive = lambda batch: ["positive"] * len(batch)
    lesson00.check_mistake("bad", always_positive, texts, labels)
    assert "gets this one right" in hint_of(lesson00.check_mistake, "good", always_positive, texts, labels)
    assert "not in the test split" in hint_of(lesson00.check_mistake, "meh", always_positive, texts, labels)
