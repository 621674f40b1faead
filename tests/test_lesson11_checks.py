"""Lesson 11's checks: a right DPO loss passes, each common slip gets its own hint, no hint gives the answer."""
import pytest
import torch
import torch.nn.functional as F

from ftlib.exercises import Hint, check
from ftlib.exercises import lesson11


def solution(pc, pr, rc, rr, beta):
    return -F.logsigmoid(beta * (pc - rc) - beta * (pr - rr)).mean()


WRONG = {  # a typical slip -> words its hint must contain
    "negative": (lambda pc, pr, rc, rr, b: F.logsigmoid(b * ((pc - rc) - (pr - rr))).mean(), "negative"),
    "swapped": (lambda pc, pr, rc, rr, b: -F.logsigmoid(b * ((pr - rr) - (pc - rc))).mean(), "rejected"),
    "no reference": (lambda pc, pr, rc, rr, b: -F.logsigmoid(b * (pc - pr)).mean(), "reference"),
    "no beta": (lambda pc, pr, rc, rr, b: -F.logsigmoid((pc - rc) - (pr - rr)).mean(), "beta is missing"),
    "beta outside": (lambda pc, pr, rc, rr, b: -b * F.logsigmoid((pc - rc) - (pr - rr)).mean(), "inside"),
    "sum": (lambda pc, pr, rc, rr, b: -F.logsigmoid(b * ((pc - rc) - (pr - rr))).sum(), "mean"),
    "no log": (lambda pc, pr, rc, rr, b: -torch.sigmoid(b * ((pc - rc) - (pr - rr))).mean(), "*log*"),
    "unstable": (lambda pc, pr, rc, rr, b: -torch.log(torch.sigmoid(b * ((pc - rc) - (pr - rr)))).mean(),
                 "logsigmoid"),
    "per pair": (lambda pc, pr, rc, rr, b: -F.logsigmoid(b * ((pc - rc) - (pr - rr))), "mean over its pairs"),
    "tuple": (lambda pc, pr, rc, rr, b: (solution(pc, pr, rc, rr, b), pc - rc), "tuple"),
    "float": (lambda pc, pr, rc, rr, b: float(solution(pc, pr, rc, rr, b)), "tensor"),
    "crash": (lambda pc, pr, rc, rr: 0, "raised TypeError"),
}
LESSON_BATCH = tuple(torch.tensor(v) for v in ([-3.0, -5.0], [-9.0, -4.0], [-4.0, -5.5], [-8.0, -4.5]))


def hint_of(fn):
    with pytest.raises(Hint) as info:
        lesson11.check_my_dpo_loss(solution(*LESSON_BATCH, 0.1), fn)
    return str(info.value)


def test_solution_passes():
    lesson11.check_my_dpo_loss(solution(*LESSON_BATCH, 0.1), solution)
    from ftlib.preference import dpo_loss

    lesson11.check_my_dpo_loss(solution(*LESSON_BATCH, 0.1), lambda *a: dpo_loss(*a)[0])


@pytest.mark.parametrize("slip", sorted(WRONG))
def test_each_slip_gets_its_own_hint(slip):
    fn, words = WRONG[slip]
    assert words in hint_of(fn)


def test_hints_are_distinct_and_never_give_the_answer():
    hints = {slip: hint_of(fn) for slip, (fn, _) in WRONG.items()}
    assert len(set(hints.values())) == len(hints)
    for h in hints.values():
        assert "-F.logsigmoid(" not in h and "beta * (pc" not in h and "(pc - rc)" not in h


def test_unanswered_stub_says_not_answered_yet(capsys):
    stub = lambda pc, pr, rc, rr, beta: ...  # noqa: E731 - what the learner's copy returns
    check(lesson11.check_my_dpo_loss, stub(*LESSON_BATCH, 0.1), stub, strict=False)
    assert capsys.readouterr().out.count("Not answered yet") == 1
    with pytest.raises(Hint, match="still returns"):
        lesson11.check_my_dpo_loss(torch.tensor(0.7), stub)


def test_lesson11_quiz_is_complete():
    assert 4 <= len(lesson11.QUIZ.questions) <= 6
    for q in lesson11.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3
    text = lesson11.QUIZ.as_text()
    assert "beta" in text and "disable_adapter" in text and "log 2" in text
