"""Lesson 10's checks: a right answer passes, each common slip gets its own hint, and no hint gives the answer."""
import pytest

from ftlib.exercises import Hint
from ftlib.exercises import lesson10

MB = 1_000_000


def row(method, accuracy, trainable, seconds, peak, checkpoint, total=22_713_986):
    return {"method": method, "accuracy": accuracy, "f1_macro": accuracy - 0.01, "trainable": trainable,
            "total": total, "percent": 100 * trainable / total, "train_seconds": seconds,
            "peak_memory_bytes": peak, "checkpoint_bytes": checkpoint}


# Shaped like a lite run: head and freeze:4 are saved whole, lora and adapter are small files.
ROWS = [
    row("head", 0.71, 770, 12.0, 180 * MB, 91 * MB),
    row("lora", 0.84, 74_498, 41.0, 420 * MB, int(0.30 * MB), total=22_787_714),
    row("adapter", 0.86, 605_954, 47.0, 450 * MB, int(2.43 * MB), total=23_309_186),
    row("freeze:4", 0.87, 3_697_538, 25.0, 300 * MB, 91 * MB),
    row("full", 0.89, 22_713_986, 55.0, 700 * MB, 91 * MB),
]


def hint_of(fn, *args):
    with pytest.raises(Hint) as info:
        fn(*args)
    return str(info.value)


def best_affordable(rows):
    full = next(r for r in rows if r["method"] == "full")
    return max((r for r in rows if r["checkpoint_bytes"] <= 0.05 * full["checkpoint_bytes"]),
               key=lambda r: r["accuracy"])["method"]


def test_choice_right_answer_passes_and_depends_on_the_table():
    assert best_affordable(ROWS) == "adapter"
    lesson10.check_choice("adapter", ROWS)
    flipped = [dict(r, accuracy=0.9) if r["method"] == "lora" else r for r in ROWS]
    lesson10.check_choice("lora", flipped)
    with pytest.raises(Hint):
        lesson10.check_choice("adapter", flipped)
    tied = [dict(r, accuracy=0.5) for r in ROWS]  # the smoke profile: every method predicts the majority
    lesson10.check_choice("lora", tied)
    lesson10.check_choice("adapter", tied)


def test_choice_hints_name_the_slip():
    check = lesson10.check_choice
    assert "checkpoint_bytes" in hint_of(check, "head", ROWS) and "whole" in hint_of(check, "head", ROWS)
    assert "not on trainable" in hint_of(check, "freeze:4", ROWS)
    assert "best accuracy overall" in hint_of(check, "full", ROWS)
    assert "fewest parameters" in hint_of(check, "lora", ROWS)
    assert "spelled differently" in hint_of(check, "Adapter", ROWS)
    assert "not a method in the table" in hint_of(check, "prefix", ROWS)
    assert "string" in hint_of(check, ROWS[2], ROWS)
    assert "string" in hint_of(check, 0.86, ROWS)
    assert "no row for 'full'" in hint_of(check, "lora", ROWS[:4])


def test_choice_hints_never_give_the_answer():
    for wrong in ("head", "freeze:4", "full", "lora", 0.86):  # (a misspelling or an unknown name lists all methods)
        assert "adapter" not in hint_of(lesson10.check_choice, wrong, ROWS).lower()


FULL, LORA = ROWS[4], ROWS[1]
P, T = FULL["trainable"] / LORA["trainable"], FULL["train_seconds"] / LORA["train_seconds"]


def test_ratios_right_answer_passes():
    lesson10.check_ratios(P, T, ROWS)
    lesson10.check_ratios(22_713_986 / 74_498, 55.0 / 41.0, ROWS)
    lesson10.check_ratios(round(P), round(T, 2), ROWS)  # typed from the printed table: close enough


def test_ratios_hints_name_the_slip():
    check = lesson10.check_ratios
    assert "swapped" in hint_of(check, T, P, ROWS)
    assert "upside down" in hint_of(check, 1 / P, T, ROWS)
    assert "upside down" in hint_of(check, P, 1 / T, ROWS)
    assert "'total'" in hint_of(check, FULL["total"] / LORA["total"], T, ROWS)
    assert "factor of 100" in hint_of(check, P * 100, T, ROWS)
    assert "peak memories" in hint_of(check, P, FULL["peak_memory_bytes"] / LORA["peak_memory_bytes"], ROWS)
    assert "accuracies" in hint_of(check, P, FULL["accuracy"] / LORA["accuracy"], ROWS)
    assert "'train_seconds'" in hint_of(check, P, 3.0, ROWS)
    assert "'trainable'" in hint_of(check, 5.0, T, ROWS)
    assert "number" in hint_of(check, "305", T, ROWS)
    assert "positive" in hint_of(check, P, 0.0, ROWS)
    assert "positive" in hint_of(check, P, float("inf"), ROWS)


def test_ratios_hints_never_give_the_answer():
    for p, t in [(T, P), (1 / P, T), (P, 1 / T), (P * 100, T), (P, 3.0), (5.0, T)]:
        hint = hint_of(lesson10.check_ratios, p, t, ROWS)
        for shown in (f"{P:.0f}", f"{P:.1f}", f"{T:.2f}", f"{T:.1f}"):
            assert shown not in hint, hint


def test_lesson10_quiz_is_complete():
    assert 4 <= len(lesson10.QUIZ.questions) <= 6
    for q in lesson10.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3
    assert "4 + 4 + 8" in lesson10.QUIZ.as_text()
