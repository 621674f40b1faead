"""A real browser: lesson 00 run in JupyterLab, and the course site's front page, in headless Chromium.

Chromium is Debian's (``make test`` installs it through ``make browser``), driven by
Playwright. Screenshots go to ``build/screenshots/``. Without a Chromium the tests are
skipped, except where ``FTLIB_REQUIRE_BROWSER=1`` (set by CI), where they fail.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless, and quiet: this machine's closed network refuses Chromium's background connections.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
TOKEN = "ftlib-browser-test"

pytestmark = pytest.mark.browser


def need(path: Path | str, what: str) -> None:
    if not Path(path).exists():
        message = f"{what} not found at {path}: run `make browser site-setup`"
        if os.environ.get("FTLIB_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    need(CHROMIUM, "Debian's chromium")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab on localhost, serving a copy of lesson 00, in the smoke profile, not headless."""
    shutil.copy(ROOT / "lessons" / "00_welcome.ipynb", tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("FTLIB_HEADLESS", "MPLBACKEND", "FTLIB_STRICT")}
    env.update(FTLIB_PROFILE="smoke", HF_HUB_OFFLINE="1", JUPYTER_CONFIG_DIR=str(tmp_path / ".jupyter"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / ".runtime"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / ".ws"))
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={tmp_path}", "--LabApp.expose_app_in_browser=True", "--allow-root"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start: " + (tmp_path / "server.log").read_text()[-2000:])
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


NOTEBOOK = "window.jupyterapp.shell.currentWidget"
KERNEL_IDLE = f"{NOTEBOOK}?.sessionContext?.session?.kernel?.status === 'idle'"
ALL_RAN = f"""() => {{
  const nb = {NOTEBOOK};
  const code = nb.content.widgets.filter(c => c.model.type === 'code');
  return code.every(c => c.model.executionCount !== null && !c.promptNode.textContent.includes('*'))
         && nb.sessionContext.session.kernel.status === 'idle';
}}"""
ERRORS = f"""() => {NOTEBOOK}.content.widgets.filter(c => c.model.type === 'code')
  .flatMap(c => c.model.outputs.toJSON()).filter(o => o.output_type === 'error')
  .map(o => o.ename + ': ' + o.evalue)"""


def test_lesson_00_runs_in_jupyterlab_with_quiz_widgets_and_live_training_view(browser, jupyterlab):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(180_000)
    page.goto(f"{jupyterlab}/lab/tree/00_welcome.ipynb?token={TOKEN}")
    page.wait_for_function(KERNEL_IDLE, polling=500)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(ALL_RAN, polling=1000, timeout=900_000)

    assert page.evaluate(ERRORS) == []
    if page.get_by_role("button", name="No").count():  # JupyterLab's "news?" toast would cover the output
        page.get_by_role("button", name="No").first.click()
    live = page.locator(".ftlib-live img")
    assert live.count() >= 1, "the live training view did not render"
    live.first.scroll_into_view_if_needed()
    live.first.screenshot(path=SHOTS / "lesson00-live-view.png")
    quiz = page.locator(".widget-radio-box")
    assert quiz.count() >= 3, "the knowledge test's widgets did not render"
    quiz.first.scroll_into_view_if_needed()
    quiz.first.locator("input").first.check()  # answer a question: its explanation appears
    page.wait_for_function("[...document.querySelectorAll('.widget-html')].some(e => /Right|Not quite/.test(e.textContent))")
    page.screenshot(path=SHOTS / "lesson00-quiz.png")


def test_course_site_shows_the_lesson_table_and_a_lessons_executed_outputs(browser, tmp_path):
    builder = ROOT / ".venv-site" / "bin" / "jupyter-book"
    need(builder, "the site builder")
    from tools.book import write_book
    from tools.course import run_notebooks

    ran = tmp_path / "executed-smoke"  # what `make timings` writes, for lesson 00 only (smoke, to keep it short)
    run_notebooks("solutions", "smoke", ran, only=["00"])
    book = write_book(tmp_path / "book", ran, require_all=False)
    subprocess.run([str(builder), "build", "--quiet", str(book)], check=True, timeout=900,
                   capture_output=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto((book / "_build" / "html" / "index.html").as_uri())
    rows = page.locator("table tbody tr")
    rows.first.wait_for()
    readme_rows = [l for l in (ROOT / "README.md").read_text().split("## Lessons")[1].split("\n## ")[0].splitlines()
                   if l.startswith("| 0") or l.startswith("| 1")]
    assert rows.count() == len(readme_rows)
    page.screenshot(path=SHOTS / "site-front-page.png", full_page=True)
    page.locator("table a").first.click()  # the first lesson's page opens, with that run's outputs
    page.wait_for_load_state()
    assert "Lesson 00" in page.title()
    assert page.get_by_text("This page shows the lesson as it ran").count() == 1
    assert page.get_by_text("profile=smoke").count() >= 1  # the banner's environment stamp
    assert page.locator(".cell_output img").count() >= 1, "the lesson's plots are not on its page"
    assert page.locator(".cell_output pre").count() >= 5, "the lesson's printed results are not on its page"
    figure = page.locator(".cell_output img").first
    figure.scroll_into_view_if_needed()
    page.screenshot(path=SHOTS / "site-lesson00-outputs.png")
