"""The static course site: the lessons as a Jupyter Book, with the lesson table as its front page.

    make timings     # executes every solution notebook into build/executed-lite (about 50 min, 2 cores)
    make site        # = python -m tools.book build/book --executed build/executed-lite, then jupyter-book build

This module only writes the book's source folder (front page, table of contents,
configuration, one page per lesson); Jupyter Book, installed in its own environment
(``.venv-site``, from ``requirements-site.txt``) because its Markdown parser pins older
versions than JupyterLab's, turns it into HTML.

A lesson page is the lesson as it ran: the solution notebook's cells with the outputs of
an executed copy (``make timings`` writes them), so every printed figure, table and plot
the prose refers to is on the page. A banner at the top names the profile, the
environment stamp and the date of that run. An executed copy whose code differs from the
current solution is stale and refused: its outputs would belong to other code. Jupyter
Book does not execute anything itself (``execute_notebooks: 'off'``).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat

from .course import REPO_URL, ROOT

__all__ = ["front_page", "executed_page", "write_book"]


def front_page(readme: str) -> str:
    """The book's first page: the README's title and first paragraph, then its lesson table."""
    title = readme.splitlines()[0]
    intro = readme.split("\n\n")[1]
    match = re.search(r"^## Lessons\n(.*?)(?=^## )", readme, flags=re.S | re.M)
    if match is None:
        raise ValueError("README.md has no '## Lessons' section to put on the front page")
    table = match.group(1).strip().replace("](lessons/", "](")  # the notebooks sit beside the page
    return f"{title}\n\n{intro}\n\n## Lessons\n\n{table}\n\nSource, set-up and tests: <{REPO_URL}>\n"


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def executed_page(solution: Path, executed: Path, report: dict) -> nbformat.NotebookNode:
    """The page for one lesson: `solution`'s cells, the outputs of its executed copy, a banner on top.

    Raises ValueError when the executed copy's code cells differ from the solution's.
    """
    page = nbformat.read(solution, as_version=4)
    ran = nbformat.read(executed, as_version=4)
    if _code(page) != _code(ran):
        raise ValueError(f"{executed} was executed from other code than {solution.name}: "
                         f"re-run `make timings` for it")
    outputs = iter([(c.outputs, c.execution_count) for c in ran.cells if c.cell_type == "code"])
    for cell in page.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = next(outputs)
    seconds = report["lessons"].get(solution.name)
    when = report.get("dates", {}).get(solution.name, "date not recorded")
    banner = (f"> **This page shows the lesson as it ran**, exercises answered, in the **{report['profile']}** "
              f"profile ({when}{f', {seconds:.0f} s' if seconds is not None else ''}):  \n"
              f"> `{report.get('stamp', 'environment not recorded')}`  \n"
              f"> Your own run prints its own figures; on another profile or machine they differ. To do the "
              f"exercises yourself, open the learner copy (`lessons/{solution.name}`, or the launch button).")
    page.cells.insert(1, nbformat.v4.new_markdown_cell(banner))  # below the title
    return page


def write_book(out: Path, executed: Path | None = None, *, require_all: bool = True) -> Path:
    """Write the book's source folder `out`; returns it.

    With `executed` (a folder written by ``tools.course run``), lesson pages carry that run's outputs;
    a lesson missing there is an error unless `require_all` is false, in which case its page is the
    learner notebook without outputs. Without `executed`, every page is a learner notebook.
    """
    lessons = sorted((ROOT / "lessons").glob("*.ipynb"))
    report = None
    if executed is not None:
        reports = sorted(Path(executed).glob("timing-*.json"))
        if not reports:
            raise FileNotFoundError(f"no executed notebooks in {executed}: run `make timings` first "
                                    f"(about 50 min on 2 cores)")
        report = json.loads(reports[0].read_text())
        missing = [p.name for p in lessons if not (Path(executed) / p.name).exists()]
        if missing and require_all:
            raise FileNotFoundError(f"{executed} lacks {missing}: run `make timings` for them")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "intro.md").write_text(front_page((ROOT / "README.md").read_text()))
    for path in lessons:
        ran = Path(executed) / path.name if executed is not None else None
        if ran is not None and ran.exists():
            nbformat.write(executed_page(ROOT / "solutions" / path.name, ran, report), out / path.name)
        else:
            shutil.copy(path, out / path.name)
    toc = "format: jb-book\nroot: intro\nchapters:\n" + "".join(f"- file: {p.stem}\n" for p in lessons)
    (out / "_toc.yml").write_text(toc)
    (out / "_config.yml").write_text(
        "title: Fine-tuning pretrained models\n"
        "author: the course's authors\n"
        "only_build_toc_files: true\n"
        "execute:\n  execute_notebooks: 'off'\n"
        "html:\n  use_repository_button: true\n"
        f"repository:\n  url: {REPO_URL}\n  branch: main\n  path_to_book: lessons\n"
        "launch_buttons:\n  colab_url: https://colab.research.google.com\n"
        "sphinx:\n  config:\n    html_show_copyright: false\n")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.book")
    parser.add_argument("out", nargs="?", default="build/book")
    parser.add_argument("--executed", default=None, help="folder of executed notebooks (make timings writes "
                                                         "build/executed-lite); without it, pages have no outputs")
    args = parser.parse_args(argv)
    try:
        print(write_book(Path(args.out), Path(args.executed) if args.executed else None))
    except (FileNotFoundError, ValueError) as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
