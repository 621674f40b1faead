"""The static course site: the lessons as a Jupyter Book, with the lesson table as its front page.

    make site        # = python -m tools.book build/book, then jupyter-book build build/book

This module only writes the book's source folder (front page, table of contents,
configuration, the learner notebooks); Jupyter Book, installed in its own environment
(``.venv-site``, from ``requirements-site.txt``) because its Markdown parser pins older
versions than JupyterLab's, turns it into HTML. The notebooks are not executed for the
site: the outputs a learner sees are the ones their own run produces.
"""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from .course import REPO_URL, ROOT

__all__ = ["front_page", "write_book"]


def front_page(readme: str) -> str:
    """The book's first page: the README's title and first paragraph, then its lesson table."""
    title = readme.splitlines()[0]
    intro = readme.split("\n\n")[1]
    match = re.search(r"^## Lessons\n(.*?)(?=^## )", readme, flags=re.S | re.M)
    if match is None:
        raise ValueError("README.md has no '## Lessons' section to put on the front page")
    table = match.group(1).strip().replace("](lessons/", "](")  # the notebooks sit beside the page
    return f"{title}\n\n{intro}\n\n## Lessons\n\n{table}\n\nSource, set-up and tests: <{REPO_URL}>\n"


def write_book(out: Path) -> Path:
    """Write the book's source folder `out`; returns it."""
    lessons = sorted((ROOT / "lessons").glob("*.ipynb"))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "intro.md").write_text(front_page((ROOT / "README.md").read_text()))
    for path in lessons:
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


if __name__ == "__main__":
    print(write_book(Path(sys.argv[1] if len(sys.argv) > 1 else "build/book")))
