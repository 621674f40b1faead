"""Every notebook, executed end to end in the smoke profile, offline.

Solution notebooks run strict: a failing exercise check fails the test. Learner notebooks
run with their exercises unfilled and must still run to the end.
"""
from pathlib import Path

import pytest

from ftlib.course import run_notebook

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 90  # smoke-profile budget per lesson, on 2 cores


@pytest.mark.notebooks
@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.name)
def test_solution_notebook_runs_with_its_checks_passing(path, tmp_path):
    seconds = run_notebook(path, profile="smoke", strict=True, out=tmp_path / "executed", workdir=tmp_path)
    assert seconds < BUDGET_S * 1.5, f"{path.name} took {seconds:.0f} s in smoke (budget {BUDGET_S} s)"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", sorted((ROOT / "lessons").glob("*.ipynb")), ids=lambda p: p.name)
def test_learner_notebook_runs_with_exercises_unfilled(path, tmp_path):
    run_notebook(path, profile="smoke", strict=False, out=tmp_path / "executed", workdir=tmp_path)
    text = (tmp_path / "executed" / path.name).read_text()
    assert "Not answered yet" in text  # the checks noticed the empty exercises, and did not crash
