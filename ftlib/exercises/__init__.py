"""Exercise checks and quizzes, the mechanism every lesson uses.

Introduced in lesson 00. A *check* looks at what the learner built and answers at once:
a pass, or a hint that points at the problem without giving the answer away. A *quiz* is
a multiple-choice question with an explanation for every option: clickable
(ipywidgets) in JupyterLab and Colab, printed as text when the notebook runs headless
(``FTLIB_HEADLESS=1``, set by the course's test runner) or outside Jupyter.

Each lesson's checks and questions live in ``ftlib/exercises/lessonNN.py``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..runtime import interactive

__all__ = ["Hint", "Question", "Quiz", "check", "interactive"]


class Hint(AssertionError):
    """Raised by a check when the learner's answer is not right yet; the message is the hint."""


def check(fn, *args, strict: bool | None = None, **kwargs) -> None:
    """Run the check `fn` on the learner's answer and say what it found.

    A missing answer (the exercise left as ``...`` or ``None``) prints a reminder. A wrong
    one prints the hint; with `strict` (the default when ``$FTLIB_STRICT`` is set, as in
    the tests of the solution notebooks) it raises instead, so that a broken solution
    fails the run.
    """
    strict = bool(os.environ.get("FTLIB_STRICT")) if strict is None else strict
    if any(a is Ellipsis or a is None for a in args):
        message = "Not answered yet: replace the ... in the exercise cell, run it, then run this check."
        if strict:
            raise Hint(message)
        print("⏳ " + message)
        return
    try:
        fn(*args, **kwargs)
    except Hint as hint:
        if strict:
            raise
        print(f"✗ Not yet: {hint}")
        return
    print("✓ Correct!")


@dataclass(frozen=True)
class Question:
    """One multiple-choice question; `explanations[i]` says why option i is right or wrong."""

    text: str
    options: tuple[str, ...]
    answer: int
    explanations: tuple[str, ...]

    def __post_init__(self):
        if len(self.options) != len(self.explanations) or not 0 <= self.answer < len(self.options):
            raise ValueError(f"question {self.text[:40]!r}: one explanation per option, and a valid answer")


class Quiz:
    """A knowledge test: call ``quiz.show()`` at the end of a lesson."""

    def __init__(self, title: str, questions: list[Question]):
        self.title, self.questions = title, questions

    def as_text(self) -> str:
        lines = [self.title, ""]
        for n, q in enumerate(self.questions, 1):
            lines.append(f"{n}. {q.text}")
            for i, (option, why) in enumerate(zip(q.options, q.explanations)):
                mark = "✓" if i == q.answer else " "
                lines.append(f"   {mark} {chr(97 + i)}) {option}\n        {why}")
            lines.append("")
        return "\n".join(lines)

    def show(self) -> None:
        if not interactive():
            print(self.as_text())
            return
        import ipywidgets as w
        from IPython.display import display

        display(w.VBox([w.HTML(f"<h3>{self.title}</h3>")] + [_question_widget(n, q) for n, q in
                                                           enumerate(self.questions, 1)]))


def _question_widget(number: int, q: Question):
    import ipywidgets as w

    choice = w.RadioButtons(options=[(o, i) for i, o in enumerate(q.options)], value=None,
                            layout=w.Layout(width="auto"))
    feedback = w.HTML()

    def on_change(change):
        i = change["new"]
        verdict = "✓ Right." if i == q.answer else "✗ Not quite."
        colour = "#1b7837" if i == q.answer else "#b2182b"  # green / red, readable by most colour-blind people, with a mark
        feedback.value = f"<span style='color:{colour}'><b>{verdict}</b> {q.explanations[i]}</span>"

    choice.observe(on_change, names="value")
    return w.VBox([w.HTML(f"<b>{number}. {q.text}</b>"), choice, feedback],
                  layout=w.Layout(margin="0 0 12px 0"))
