"""The library's layout: floors that import only downwards, no cycle, and a loop a learner can read.

The rule is written in docs/ARCHITECTURE.md ("Floors"); this test is its enforcement. A new
module must be given a floor here, which is the moment to decide where it belongs.
"""
import ast
import inspect
from pathlib import Path

import ftlib.training

PACKAGE = Path(ftlib.training.__file__).parent

FLOORS = {  # a module may import modules of its own floor or lower, never higher
    0: {"runtime", "files", "distributed", "catalog", "data", "evaluation", "checkpoints", "freezing", "images",
        "plots", "baselines", "calibration", "regularization", "selection", "__init__"},
    1: {"memory", "optim", "lora", "adapters", "cleaning", "qa", "resume", "oom", "models"},
    2: {"live", "training", "lr_finder", "peak_memory", "small_cnn", "widgets"},
    3: {"methods", "vision", "compare", "inference", "preference", "cli", "__main__"},
}
FLOOR_OF = {module: floor for floor, modules in FLOORS.items() for module in modules}


def imports() -> dict[str, set[str]]:
    """Each ftlib module and the ftlib modules it imports (at the top or inside functions)."""
    graph = {}
    for path in sorted(PACKAGE.glob("*.py")):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.level == 1:  # from . import x: a module, or a name of __init__
                found |= {a.name if (PACKAGE / f"{a.name}.py").exists() else "__init__" for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ftlib."):
                found.add(node.module.split(".")[1])
        graph[path.stem] = found - {path.stem}
    return graph


def test_every_module_has_a_floor_and_imports_only_downwards():
    graph = imports()
    assert set(graph) == set(FLOOR_OF), f"give these modules a floor: {sorted(set(graph) - set(FLOOR_OF))}"
    upward = [(m, d) for m, deps in graph.items() for d in deps if FLOOR_OF[d] > FLOOR_OF[m]]
    assert upward == [], f"imports that point up a floor: {upward}"


def test_no_import_cycle():
    graph, state = imports(), {}

    def visit(module, path):
        if state.get(module) == "open":
            raise AssertionError(f"import cycle: {' -> '.join(path + [module])}")
        if state.get(module) is None:
            state[module] = "open"
            for dep in sorted(graph[module]):
                visit(dep, path + [module])
            state[module] = "done"

    for module in graph:
        visit(module, [])


def test_the_loop_fits_on_one_screen():
    fit = inspect.getsource(ftlib.training.fit)
    step = inspect.getsource(ftlib.training.train_step)
    assert len(fit.splitlines()) <= 45 and "train_step(" in fit
    assert len(step.splitlines()) <= 20
    positions = [step.index(s) for s in ("zero_grad", "model(", ".backward(", "clip_grad_norm_", "optimizer.step(",
                                         "scheduler.step(")]
    assert positions == sorted(positions), "train_step reads: zero_grad, forward, backward, clip, step, schedule"


def test_the_test_catches_an_upward_import(tmp_path, monkeypatch):
    # The rule can fail: a ground-floor module that imports the training loop is reported.
    fake = tmp_path / "ftlib"
    fake.mkdir()
    for path in PACKAGE.glob("*.py"):
        (fake / path.name).write_text(path.read_text())
    (fake / "runtime.py").write_text((fake / "runtime.py").read_text() + "\nfrom .training import fit\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    try:
        test_every_module_has_a_floor_and_imports_only_downwards()
    except AssertionError as err:
        assert "('runtime', 'training')" in str(err)
    else:
        raise AssertionError("an upward import went unnoticed")
