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


def fake_run(folder: Path, name: str = "00_welcome.ipynb", *, edit=None) -> Path:
    """An 'executed' copy of one solution: every code cell gets a stream output naming its index."""
    import json

    import nbformat

    nb = nbformat.read(ROOT / "solutions" / name, as_version=4)
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"printed by code cell {i}\n")]
        cell.execution_count = i + 1
    if edit:
        edit(nb)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)
    report = {"profile": "lite", "folder": "solutions", "stamp": "ftlib profile=lite device=cpu (test)",
              "lessons": {name: 123.4}, "dates": {name: "2026-12-01 03:00 UTC"}}
    (folder / "timing-lite.json").write_text(json.dumps(report))
    return folder


def test_pages_carry_the_executed_outputs_under_a_banner_with_profile_stamp_and_date(tmp_path):
    import nbformat

    out = book.write_book(tmp_path / "book", fake_run(tmp_path / "ran"), require_all=False)
    page = nbformat.read(out / "00_welcome.ipynb", as_version=4)
    banner = page.cells[1].source
    assert "lite" in banner and "ftlib profile=lite device=cpu (test)" in banner and "2026-12-01 03:00 UTC" in banner
    assert "123 s" in banner
    code = [c for c in page.cells if c.cell_type == "code"]
    assert [c.outputs[0].text for c in code] == [f"printed by code cell {i}\n" for i in range(len(code))]
    assert code[0].source == next(c.source for c in nbformat.read(ROOT / "solutions" / "00_welcome.ipynb",
                                                                  as_version=4).cells if c.cell_type == "code")
    other = nbformat.read(out / "01_choosing_a_model.ipynb", as_version=4)  # not executed: the learner copy
    assert all(not c.get("outputs") for c in other.cells if c.cell_type == "code")


def test_an_executed_copy_of_other_code_is_refused(tmp_path):
    def change(nb):
        next(c for c in nb.cells if c.cell_type == "code").source += "\nprint('old code')"

    with pytest.raises(ValueError, match="re-run `make timings`"):
        book.write_book(tmp_path / "book", fake_run(tmp_path / "ran", edit=change), require_all=False)


def test_site_needs_every_lesson_executed_unless_told_otherwise(tmp_path):
    with pytest.raises(FileNotFoundError, match="make timings"):
        book.write_book(tmp_path / "book", fake_run(tmp_path / "ran"))
    with pytest.raises(FileNotFoundError, match="make timings"):
        book.write_book(tmp_path / "book", tmp_path / "nothing-here")
    assert book.main([str(tmp_path / "book"), "--executed", str(tmp_path / "nothing-here")]) == 1
