"""The course site's source: front page from the README's lesson table, every lesson in the contents."""
from pathlib import Path

import pytest

from tools import book

ROOT = Path(__file__).resolve().parent.parent


def test_front_page_is_the_readmes_lesson_table_with_links_beside_it():
    page = book.front_page((ROOT / "README.md").read_text())
    assert page.startswith("# ") and "## Lessons" in page
    assert "](00_welcome.ipynb)" in page and "](lessons/" not in page
    assert "| # | lesson |" in page


def test_front_page_without_a_lesson_table_is_refused():
    with pytest.raises(ValueError, match="Lessons"):
        book.front_page("# Title\n\nIntro.\n\n## Other\n\ntext\n")


def test_write_book_lists_every_lesson(tmp_path):
    out = book.write_book(tmp_path / "book")
    lessons = sorted(p.stem for p in (ROOT / "lessons").glob("*.ipynb"))
    toc = (out / "_toc.yml").read_text()
    assert [line.split(": ")[1] for line in toc.splitlines() if line.startswith("- file")] == lessons
    assert all((out / f"{name}.ipynb").exists() for name in lessons)
    assert "execute_notebooks: 'off'" in (out / "_config.yml").read_text()
