"""Every notebook, executed end to end in the smoke profile, offline.

Solution notebooks run strict (a failing exercise check fails the test) and on an emulated
T4 (tests/emulated_gpu.py): "cuda" with fp16 and a GradScaler, where a tensor left on the
CPU next to one on the GPU stops the run as it would on Colab. Learner notebooks run on the
plain CPU with their exercises unfilled, and must still run to the end.
"""
import os
from pathlib import Path

import pytest
import torch

from tools.course import run_notebook

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 90  # smoke-profile budget per lesson, on 2 cores
REAL_GPU = torch.cuda.is_available()  # then the notebooks run on it, not on the emulation
EMULATED_GPU = {"FTLIB_EMULATE_GPU": "1",  # tests/emulated_gpu_site/sitecustomize.py starts the emulation
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests" / "emulated_gpu_site"),
                                                            os.environ.get("PYTHONPATH")]))}


@pytest.mark.notebooks
@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.name)
def test_solution_notebook_runs_on_an_emulated_gpu_with_its_checks_passing(path, tmp_path):
    seconds = run_notebook(path, profile="smoke", strict=True, out=tmp_path / "executed", workdir=tmp_path,
                           extra_env=None if REAL_GPU else EMULATED_GPU)
    text = (tmp_path / "executed" / path.name).read_text()
    assert REAL_GPU or "device=cuda (emulated T4 (CPU)) precision=fp16" in text  # the stamp: it ran as on a T4
    # The emulation costs about 2x (every tensor operation passes through Python), hence 2x the budget.
    assert seconds < BUDGET_S * 2 * 1.5, f"{path.name} took {seconds:.0f} s in smoke on the emulated GPU"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", sorted((ROOT / "lessons").glob("*.ipynb")), ids=lambda p: p.name)
def test_learner_notebook_runs_with_exercises_unfilled(path, tmp_path):
    run_notebook(path, profile="smoke", strict=False, out=tmp_path / "executed", workdir=tmp_path)
    text = (tmp_path / "executed" / path.name).read_text()
    assert "Not answered yet" in text  # the checks noticed the empty exercises, and did not crash
