"""Lesson 09's checks: a right answer passes, each common slip gets its own hint, no hint gives the answer."""
import pytest

from ftlib.exercises import Hint, check
from ftlib.exercises import lesson09


def hint_of(fn, *args):
    with pytest.raises(Hint) as info:
        fn(*args)
    return str(info.value)


SWEEP = [
    {"lr": 1e-3, "epoch": 1, "train_loss": 2.0, "val_loss": 1.50},
    {"lr": 1e-3, "epoch": 2, "train_loss": 1.2, "val_loss": 1.10},
    {"lr": 1e-3, "epoch": 3, "train_loss": 0.8, "val_loss": 1.20},
    {"lr": 3e-3, "epoch": 1, "train_loss": 1.5, "val_loss": 1.30},
    {"lr": 3e-3, "epoch": 2, "train_loss": 0.6, "val_loss": 1.25},
    {"lr": 3e-3, "epoch": 3, "train_loss": 0.2, "val_loss": 1.40},
]


def test_choice_right_answer_passes():
    lesson09.check_choice((1e-3, 2), SWEEP)
    lesson09.check_choice((0.001, 2), SWEEP)


def test_choice_hints_name_the_slip():
    check_ = lesson09.check_choice
    assert "*training* loss" in hint_of(check_, (3e-3, 3), SWEEP)
    assert "last epoch" in hint_of(check_, (1e-3, 3), SWEEP)
    assert "val_loss column" in hint_of(check_, (3e-3, 1), SWEEP)
    assert "learning rate first" in hint_of(check_, (2, 1e-3), SWEEP)
    assert "not in the sweep" in hint_of(check_, (1e-2, 2), SWEEP)
    assert "a pair" in hint_of(check_, 1e-3, SWEEP)
    assert "a float and an int" in hint_of(check_, (1e-3, 2.0), SWEEP)


def test_choice_hints_never_give_the_answer():
    for wrong in [(3e-3, 3), (1e-3, 3), (3e-3, 1), (2, 1e-3), (1e-2, 2)]:
        h = hint_of(lesson09.check_choice, wrong, SWEEP)
        assert "1.1" not in h and "(0.001, 2)" not in h


def test_unanswered_exercises_say_not_answered_yet(capsys):
    check(lesson09.check_choice, ..., SWEEP, strict=False)
    assert capsys.readouterr().out.count("Not answered yet") == 1


def test_lesson09_quiz_is_complete():
    assert 4 <= len(lesson09.QUIZ.questions) <= 6
    for q in lesson09.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3
    assert "-100" in lesson09.QUIZ.as_text() and "DPO" in lesson09.QUIZ.as_text()


# Exercise 1: the whole example, encoded by the learner, against encode_qa (English and Korean).
from ftlib import catalog  # noqa: E402
from ftlib.exercises import check as run_check  # noqa: E402
from ftlib.models import load_tokenizer  # noqa: E402
from ftlib.qa import encode_qa, prompt_ids  # noqa: E402

PAIR = ("What is 7 times 8?", "56")


@pytest.fixture(scope="module", params=["chat template", "plain"])
def tok(request):
    # SmolLM2's tokenizer has a chat template (as the full profile's Qwen2.5); Gemma 3's (lite, smoke) has none.
    return load_tokenizer(catalog.TINY_LLAMA if request.param == "chat template" else catalog.TINY_GEMMA)


MAX_LENGTH = 256


def make_encode(slip=None):
    """Exercise 1's function as a learner writes it, with the slips the tests need."""
    def my_encode_qa(tokenizer, question, answer, max_length):
        prompt = prompt_ids(tokenizer, question)
        if slip == "unanswered":
            return {"input_ids": ..., "attention_mask": ..., "labels": ...}
        if len(prompt) >= max_length and slip not in ("no error", "assert"):
            raise ValueError(f"the prompt is {len(prompt)} tokens: no room for an answer in max_length={max_length}")
        assert slip != "assert" or len(prompt) < max_length, "no room"
        gap = "" if tokenizer.chat_template or slip == "no space" else " "  # 'A: 56' in the plain format
        answer_ids = tokenizer(gap + answer.strip(), add_special_tokens=False)["input_ids"]
        if slip != "no eos":
            answer_ids = answer_ids + [tokenizer.eos_token_id]
        room = {"cut to max_length": max_length, "no cut": len(answer_ids)}.get(slip, max_length - len(prompt))
        if slip == "eos after cut" and len(answer_ids) > room:
            answer_ids = answer_ids[:room - 1] + [tokenizer.eos_token_id]
        answer_ids = answer_ids[:room]
        input_ids = prompt + answer_ids
        if slip == "cut from the left":
            input_ids = (prompt + tokenizer(gap + answer.strip(), add_special_tokens=False)["input_ids"]
                         + [tokenizer.eos_token_id])[-max_length:]
            answer_ids = input_ids[len(prompt):]
        labels = {
            "mask answer": prompt + [-100] * len(answer_ids),
            "no mask": input_ids,
            "mask eos": [-100] * len(prompt) + answer_ids[:-1] + [-100],
            "shifted": input_ids[1:] + [-100],
            "zeros": [0] * len(prompt) + answer_ids,
        }.get(slip, [-100] * len(prompt) + answer_ids)
        attention_mask = {
            "mask like labels": [0] * len(prompt) + [1] * len(answer_ids),
            "mask -100": [-100] * len(prompt) + [1] * len(answer_ids),
            "mask short": [1] * len(answer_ids),
        }.get(slip, [1] * len(input_ids))
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    return my_encode_qa


def encode_args(tok, slip=None):
    fn = make_encode(slip)
    return fn(tok, *PAIR, MAX_LENGTH)["labels"], fn, tok, *PAIR, MAX_LENGTH


SLIPS = {  # slip -> a phrase of its hint
    "mask answer": "other way round", "no mask": "not hidden", "no eos": "stop",
    "mask eos": "end-of-turn token is hidden",
    "shifted": "shift", "zeros": "real token id", "no cut": "must be cut", "cut to max_length": "prompt included",
    "eos after cut": "middle of an answer", "cut from the left": "prompt always stays whole",
    "no error": "ValueError", "assert": "-O", "mask like labels": "*read*", "mask -100": "belongs in the labels",
    "mask short": "one entry per token",
}


def test_my_encode_qa_plain_format_needs_the_space(tok):
    if tok.chat_template:
        lesson09.check_my_encode_qa(*encode_args(tok, "no space"))  # with a template there is no space to forget
    else:
        assert "follows a space" in hint_of(lesson09.check_my_encode_qa, *encode_args(tok, "no space"))


def test_my_encode_qa_right_answer_passes(tok):
    lesson09.check_my_encode_qa(*encode_args(tok))
    for q, a in lesson09._PAIRS + (PAIR, lesson09._LONG_PAIR):  # the reference itself, on English and Korean
        for m in (MAX_LENGTH, len(prompt_ids(tok, q)) + 2):
            assert make_encode()(tok, q, a, m) == encode_qa(tok, q, a, max_length=m)
    assert any("\uac00" <= ch <= "\ud7a3" for q, _ in lesson09._PAIRS for ch in q)


def test_my_encode_qa_hints_name_the_slip(tok):
    check_ = lesson09.check_my_encode_qa
    for slip, phrase in SLIPS.items():
        assert phrase in hint_of(check_, *encode_args(tok, slip)), slip
    assert "a dict" in hint_of(check_, [1], lambda t, q, a, m: [1], tok, *PAIR, MAX_LENGTH)
    no_mask_key = lambda t, q, a, m: {k: v for k, v in make_encode()(t, q, a, m).items() if k != "attention_mask"}
    assert "'attention_mask'" in hint_of(check_, [1], no_mask_key, tok, *PAIR, MAX_LENGTH)


def test_my_encode_qa_unanswered_says_so(tok, capsys):
    run_check(lesson09.check_my_encode_qa, *encode_args(tok, "unanswered"), strict=False)
    assert "Not answered yet" in capsys.readouterr().out


def test_my_encode_qa_hints_never_give_the_answer(tok):
    n = len(prompt_ids(tok, PAIR[0]))
    for slip in SLIPS:
        hint = hint_of(lesson09.check_my_encode_qa, *encode_args(tok, slip))
        assert "[-100] *" not in hint and "eos_token_id" not in hint and "prompt +" not in hint
        assert "[1] *" not in hint and "max_length -" not in hint and "[:" not in hint
        assert str(n) not in hint
