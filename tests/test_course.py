"""The course's notebooks: generated learner copies, badges, setup cells, stripped outputs."""
import json
from pathlib import Path

import nbformat
import pytest

from tools import course

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))


def test_stub_keeps_the_names_and_hides_the_values():
    code = "from collections import Counter\ncounts = Counter(x)\ntotal: int = 3\ncounts = dict(counts)"
    assert course.stub_solution(code) == "counts = ...  # YOUR CODE HERE\ntotal = ...  # YOUR CODE HERE"
    assert course.stub_solution("print('hi')") == "# YOUR CODE HERE"


def test_learner_source_replaces_only_the_marked_block():
    src = "a = 1\n    ### BEGIN SOLUTION\n    b = secret()\n    ### END SOLUTION\nc = 2"
    assert course._learner_source(src) == "a = 1\n    b = ...  # YOUR CODE HERE\nc = 2"
    with pytest.raises(ValueError):
        course._learner_source("### BEGIN SOLUTION\nx = 1")


def test_there_are_lessons_and_each_has_a_solution():
    assert SOLUTIONS, "no solution notebooks"
    assert [p.name for p in SOLUTIONS] == [p.name for p in LESSONS]


def test_lessons_are_up_to_date_with_solutions():
    assert course.stale_lessons() == [], "run `make lessons` after editing solutions/"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_learner_notebooks_hide_every_solution(path):
    text = path.read_text()
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    source = lambda cell: "".join(cell["source"])  # noqa: E731
    solution_cells = json.loads((ROOT / "solutions" / path.name).read_text())["cells"]
    learner_cells = json.loads(text)["cells"]
    assert len(solution_cells) == len(learner_cells)
    for theirs, ours in zip(solution_cells, learner_cells):  # every solution block became a stub, in its own cell
        assert ("### BEGIN SOLUTION" in source(theirs)) == ("# YOUR CODE HERE" in source(ours)), source(ours)[:80]


@pytest.mark.parametrize("path", SOLUTIONS + LESSONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_outputs_are_stripped(path):
    nb = json.loads(path.read_text())
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_badge_setup_cell_and_template(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source
    assert f"]({course.colab_url(path.name)})" in first, "the Open-in-Colab badge must point at this lesson"
    assert "Time:" in first and "T4" in first and "CPU" in first
    setup = nb.cells[1].source
    assert "google.colab" in setup and "requirements.txt" in setup and "torch" not in setup.replace("leaves Colab's own torch", "")
    assert course.REPO_URL in setup
    text = "\n".join(c.source for c in nb.cells)
    assert "runtime.stamp()" in text, "every lesson prints the environment stamp"
    assert "Explain it like I'm five" in text and "Expert deep dive" in text
    assert text.count("### BEGIN SOLUTION") >= 1 and "check(" in text
    assert "QUIZ.show()" in text and "## Summary" in text


def test_colab_url_is_derived_from_the_repository():
    assert course.colab_url("00_welcome.ipynb") == (
        "https://colab.research.google.com/github/ftlib-course/finetuning-course/blob/main/lessons/00_welcome.ipynb")


def test_timing_report_runs_the_chosen_lessons_and_writes_json_and_markdown(monkeypatch, tmp_path):
    from tools import course

    ran = []
    monkeypatch.setattr(course, "run_notebook", lambda path, **kw: ran.append(path.name) or 700.0)
    report = course.run_notebooks("solutions", "lite", tmp_path, only=["00", "06"])
    assert ran == ["00_welcome.ipynb", "06_lora.ipynb"]
    assert "profile=lite" in report["stamp"]
    table = (tmp_path / "timing-lite.md").read_text()
    assert "| 00_welcome.ipynb | 700 | 11.7 | 10 min | **no** |" in table  # over the 10-minute budget
    assert (tmp_path / "timing-lite.json").exists()
    assert course.budget("09_qa_causal_lm.ipynb", "lite") == 900 and course.budget("09_x", "smoke") == 120

    # Re-running one lesson into the same folder updates its row and keeps the others.
    monkeypatch.setattr(course, "run_notebook", lambda path, **kw: 30.0)
    report = course.run_notebooks("solutions", "lite", tmp_path, only=["06"])
    assert report["lessons"] == {"00_welcome.ipynb": 700.0, "06_lora.ipynb": 30.0}
    # A different folder is a different measurement: nothing is carried over.
    report = course.run_notebooks("lessons", "lite", tmp_path, only=["06"])
    assert report["lessons"] == {"06_lora.ipynb": 30.0}


def test_executed_notebooks_keep_their_figures(tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    from tools import course

    path = tmp_path / "plot.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2], [3, 4])\nplt.show()")]),
                   path)
    course.run_notebook(path, profile="smoke", strict=True, out=tmp_path / "out")
    outputs = nbformat.read(tmp_path / "out" / "plot.ipynb", as_version=4).cells[0].outputs
    assert any("image/png" in o.get("data", {}) for o in outputs)  # instructors project the executed copies


def test_a_loop_variable_is_not_stubbed_as_a_name_to_define():
    code = "losses = []\nfor batch in batches:\n    losses.append(step(batch))\ntotal: float = sum(losses)"
    assert course.stub_solution(code) == "losses = ...  # YOUR CODE HERE\ntotal = ...  # YOUR CODE HERE"
