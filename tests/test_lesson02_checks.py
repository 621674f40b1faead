"""Lesson 02's checks: a right answer passes, each common slip gets its own hint, no hint gives the answer."""
import pytest

from ftlib.exercises import Hint, check
from ftlib.exercises import lesson02


def hint_of(fn, *args):
    with pytest.raises(Hint) as info:
        fn(*args)
    return str(info.value)


TEST_ROWS = [
    {"id": "t1", "text": "Great film, loved it."},
    {"id": "t2", "text": "Cold soup and rude staff tonight."},
    {"id": "t3", "text": "The battery lasts two whole days easily."},
    {"id": "t4", "text": "Nothing like the others."},
]
LEAKY_TRAIN = [
    {"id": "a1", "text": "Great film, loved it."},                          # verbatim copy of t1
    {"id": "a2", "text": "COLD SOUP AND RUDE STAFF TONIGHT"},               # t2 after normalisation
    {"id": "a3", "text": "The battery lasts two whole days easily. Wow."},  # near copy of t3 (J = 7/8)
    {"id": "a4", "text": "A review of something else entirely."},
]
TRUTH = {"t1", "t2"}


def test_leaked_ids_right_answer_passes():
    lesson02.check_leaked_ids(TRUTH, LEAKY_TRAIN, TEST_ROWS)
    lesson02.check_leaked_ids(sorted(TRUTH), LEAKY_TRAIN, TEST_ROWS)  # a list is fine too


def test_leaked_ids_hints_name_the_slip():
    check_ = lesson02.check_leaked_ids
    assert "letter case" in hint_of(check_, {"t1"}, LEAKY_TRAIN, TEST_ROWS)  # raw strings compared
    assert "near copies" in hint_of(check_, {"t1", "t2", "t3"}, LEAKY_TRAIN, TEST_ROWS)
    assert "not test reviews" in hint_of(check_, {"a1", "a2"}, LEAKY_TRAIN, TEST_ROWS)
    assert "positions" in hint_of(check_, {0, 1}, LEAKY_TRAIN, TEST_ROWS)
    assert "empty" in hint_of(check_, set(), LEAKY_TRAIN, TEST_ROWS)
    assert "set of ids" in hint_of(check_, "t1", LEAKY_TRAIN, TEST_ROWS)
    assert "normalise every text" in hint_of(check_, {"t1", "t4"}, LEAKY_TRAIN, TEST_ROWS)


def test_leaked_ids_hints_never_give_the_answer():
    for wrong in ({"t1"}, {"t1", "t2", "t3"}, {"a1", "a2"}, {0, 1}, set(), {"t1", "t4"}):
        hint = hint_of(lesson02.check_leaked_ids, wrong, LEAKY_TRAIN, TEST_ROWS)
        assert "t2" not in hint and ("t1" not in hint or "t1" in str(wrong))


LENGTHS = [2, 4, 6, 8, 3]
BATCHES = [[0, 1], [2, 3], [4]]
REAL, POSITIONS = 23, 2 * 4 + 2 * 8 + 1 * 3  # each batch padded to its own longest example
FRACTION = REAL / POSITIONS


def test_fraction_real_right_answer_passes():
    lesson02.check_fraction_real(FRACTION, LENGTHS, BATCHES)
    lesson02.check_fraction_real(round(FRACTION, 9), LENGTHS, BATCHES)


def test_fraction_real_hints_name_the_slip():
    check_ = lesson02.check_fraction_real
    assert "percentage" in hint_of(check_, 100 * FRACTION, LENGTHS, BATCHES)
    assert "share of padding" in hint_of(check_, 1 - FRACTION, LENGTHS, BATCHES)
    assert "wrong way round" in hint_of(check_, POSITIONS / REAL, LENGTHS, BATCHES)
    per_batch = (6 / 8 + 14 / 16 + 3 / 3) / 3  # the mean of the three batches' own fractions
    assert per_batch != FRACTION and "averaged the per-batch" in hint_of(check_, per_batch, LENGTHS, BATCHES)
    assert "common width" in hint_of(check_, REAL / (5 * 8), LENGTHS, BATCHES)  # all padded to the longest
    assert "common width" in hint_of(check_, REAL / (5 * 128), LENGTHS, BATCHES)  # all padded to max_length
    assert "for each batch" in hint_of(check_, 0.5, LENGTHS, BATCHES)
    assert "number between 0 and 1" in hint_of(check_, "0.85", LENGTHS, BATCHES)
    assert "number between 0 and 1" in hint_of(check_, True, LENGTHS, BATCHES)
    assert "not a fraction" in hint_of(check_, float("nan"), LENGTHS, BATCHES)


def test_fraction_real_hints_never_give_the_answer():
    for wrong in (100 * FRACTION, 1 - FRACTION, POSITIONS / REAL, REAL / 40, 0.5):
        hint = hint_of(lesson02.check_fraction_real, wrong, LENGTHS, BATCHES)
        assert "0.85" not in hint and "85." not in hint and "23" not in hint and "27" not in hint


EXAMPLE = {"input_ids": [11, 12, 13, 14, 15, 16], "attention_mask": [1] * 6, "labels": [-100] * 4 + [15, 16]}


def test_tokens_in_loss():
    check_ = lesson02.check_tokens_in_loss
    check_(2, EXAMPLE)
    check_(2.0, EXAMPLE)
    assert "ignores" in hint_of(check_, 4, EXAMPLE)
    assert "every token" in hint_of(check_, 6, EXAMPLE)
    assert "end-of-turn" in hint_of(check_, 1, EXAMPLE)
    assert "whole number" in hint_of(check_, "2", EXAMPLE)
    assert "whole number" in hint_of(check_, 2.5, EXAMPLE)
    assert "not -100" in hint_of(check_, 3, EXAMPLE)
    for wrong in (4, 6, 1, 3):
        assert "2" not in hint_of(check_, wrong, EXAMPLE).replace("-100", "")


def test_unfilled_exercise_says_not_answered(capsys):
    check(lesson02.check_fraction_real, ..., LENGTHS, BATCHES)
    assert "Not answered yet" in capsys.readouterr().out


def test_lesson02_quiz_is_complete():
    assert 4 <= len(lesson02.QUIZ.questions) <= 6
    for q in lesson02.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3
    assert "-100" in lesson02.QUIZ.as_text()


# Exercise 2: a collate function, against DataCollatorWithPadding.
import torch  # noqa: E402


@pytest.fixture(scope="module")
def collate_setting():
    import tiny
    from ftlib.data import tokenize

    tok = tiny.tokenizer()
    ds = tokenize(tiny.dataset(8), tok, max_length=32)
    examples = [ds[i] for i in range(4)]
    assert len({len(e["input_ids"]) for e in examples}) > 1  # the padding shows
    return examples, tok


def learner_collate(examples, tok, *, width=None, mask="right", labels=True, side="right", pad=None):
    """The exercise as a learner writes it, with the slips the tests need."""
    width = width or max(len(e["input_ids"]) for e in examples)
    pad = tok.pad_token_id if pad is None else pad
    ids, masks = [], []
    for e in examples:
        fill = width - len(e["input_ids"])
        ids.append(e["input_ids"] + [pad] * fill if side == "right" else [pad] * fill + e["input_ids"])
        masks.append([1] * len(e["input_ids"]) + [0] * fill if mask == "right" else [1] * width)
    batch = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(masks)}
    if mask is None:
        del batch["attention_mask"]
    if labels:
        batch["labels"] = torch.tensor([e["labels"] for e in examples])
    return batch


def test_collate_right_answer_passes(collate_setting):
    examples, tok = collate_setting
    lesson02.check_collate(learner_collate(examples, tok), examples, tok)
    from transformers import DataCollatorWithPadding
    lesson02.check_collate(DataCollatorWithPadding(tok, return_tensors="pt")(examples), examples, tok)


def test_collate_hints_name_the_slip(collate_setting):
    examples, tok = collate_setting
    check = lesson02.check_collate
    assert "not to a fixed length" in hint_of(check, learner_collate(examples, tok, width=32), examples, tok)
    assert "no 'attention_mask'" in hint_of(check, learner_collate(examples, tok, mask=None), examples, tok)
    assert "every position is real" in hint_of(check, learner_collate(examples, tok, mask="ones"), examples, tok)
    assert "no 'labels'" in hint_of(check, learner_collate(examples, tok, labels=False), examples, tok)
    assert "after the text" in hint_of(check, learner_collate(examples, tok, side="left"), examples, tok)
    assert "padding token" in hint_of(check, learner_collate(examples, tok, pad=7), examples, tok)
    assert "dict of tensors" in hint_of(check, [e["input_ids"] for e in examples], examples, tok)
    as_lists = {k: v.tolist() for k, v in learner_collate(examples, tok).items()}
    assert "should be a tensor" in hint_of(check, as_lists, examples, tok)
    shuffled = learner_collate(examples, tok)
    shuffled["labels"] = shuffled["labels"].flip(0)
    assert "each example's label" in hint_of(check, shuffled, examples, tok)


def test_collate_unanswered_says_so(collate_setting, capsys):
    examples, tok = collate_setting
    check(lesson02.check_collate, ..., examples, tok)
    assert "Not answered yet" in capsys.readouterr().out


def test_collate_hints_never_give_the_answer(collate_setting):
    examples, tok = collate_setting
    for slip in ({"width": 32}, {"mask": "ones"}, {"side": "left"}, {"pad": 7}):
        hint = hint_of(lesson02.check_collate, learner_collate(examples, tok, **slip), examples, tok)
        assert "[pad]" not in hint and "torch.tensor(" not in hint and "* (" not in hint
