"""The course as a learner sees it: JupyterLab in a real browser (Debian's chromium).

A JupyterLab from the project's .venv is started on a free loopback port with a
token and temporary settings/runtime/data folders, driven with Python
playwright, and stopped by its PID at the end whatever happens. Screenshots go
to ``test-artifacts/`` (git-ignored).

If chromium is missing the tests skip with a reason; ``.ci/run`` sets
``REQUIRE_BROWSER=1``, which turns that skip into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import CHROMIUM, CHROMIUM_FLAGS, browser_or_skip

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHAPTER_2 = "course/02_maml.ipynb"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_lab_settings(settings_dir: Path) -> None:
    """Turn off the news pop-up and update checks, which would cover the page."""
    notification = settings_dir / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A running JupyterLab on the repository: yields its base URL and token."""
    browser_or_skip()
    scratch = tmp_path_factory.mktemp("lab")
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[var] = str(scratch / var.lower())
        os.makedirs(env[var], exist_ok=True)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    settings = scratch / "user-settings"
    _write_lab_settings(settings)
    port, token = _free_port(), "course-browser-test"
    # A private nbgrader exchange with the quiz released into it, for the Assignments tab.
    exchange, gradebook = scratch / "exchange", f"sqlite:///{scratch / 'gradebook.db'}"
    exchange.mkdir()
    # nbgrader's Lab extensions read their settings from nbgrader_config.py files only.
    Path(env["JUPYTER_CONFIG_DIR"], "nbgrader_config.py").write_text(
        f"c.Exchange.root = {str(exchange)!r}\nc.CourseDirectory.db_url = {gradebook!r}\n"
    )
    nbgrader = [str(Path(sys.executable).parent / "nbgrader"), "release_assignment"]
    subprocess.run(
        [
            *nbgrader,
            "variants_quiz",
            f"--Exchange.root={exchange}",
            f"--CourseDirectory.db_url={gradebook}",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    command = [
        str(Path(sys.executable).parent / "jupyter"),
        "lab",
        "--no-browser",
        "--allow-root",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={ROOT}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={scratch / 'workspaces'}",
        # The formgrader's gradebook goes to the scratch folder, not the repository.
        f"--CourseDirectory.db_url={gradebook}",
        f"--Exchange.root={exchange}",
    ]
    log = open(scratch / "lab.log", "w")
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n" + (scratch / "lab.log").read_text())
                time.sleep(0.5)
        yield base, token
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(scratch / "lab.log", ARTIFACTS / "lab.log")


@pytest.fixture(scope="module")
def browser():
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def _kernel_status(page) -> str:
    """The kernel state as the status bar writes it ('Idle', 'Busy', ...)."""
    return page.locator("#jp-main-statusbar").inner_text()


def _pending_cells(page) -> int:
    """Cells queued or running: their prompt shows [*]."""
    return page.locator(".jp-InputPrompt", has_text="[*]").count()


def _wait_for_idle(page, timeout_s: float) -> None:
    """Wait until the status bar says Idle and no cell is queued, for a steady moment.

    The toolbar's kernel indicator turns idle too early; the status bar text,
    together with the [*] prompts, tells when the whole run is over.
    """
    deadline = time.monotonic() + timeout_s
    steady_since = None
    while time.monotonic() < deadline:
        done = "Idle" in _kernel_status(page) and _pending_cells(page) == 0
        if not done:
            steady_since = None
        elif steady_since is None:
            steady_since = time.monotonic()
        elif time.monotonic() - steady_since > 2:
            return
        page.wait_for_timeout(250)
    raise AssertionError(
        f"kernel not idle after {timeout_s} s: {_kernel_status(page)!r}, "
        f"{_pending_cells(page)} cells pending"
    )


def _open_notebook(page, lab, path: str) -> None:
    base, token = lab
    page.goto(f"{base}/lab/tree/{path}?token={token}")
    page.locator(".jp-Notebook").first.wait_for()
    deadline = time.monotonic() + 60
    while "Idle" not in _kernel_status(page):
        if time.monotonic() > deadline:
            page.screenshot(path=str(ARTIFACTS / "kernel-not-ready.png"))
            raise AssertionError(f"kernel never became idle: {_kernel_status(page)!r}")
        page.wait_for_timeout(250)


def _run_all(page) -> None:
    page.locator(".jp-Notebook").first.click()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator('li[data-command="runmenu:run-all"]').click()


@pytest.fixture(scope="module")
def chapter_2(browser, lab):
    """Chapter 2 opened and run top to bottom, shared by the widget tests."""
    if not (ROOT / CHAPTER_2).exists():
        pytest.fail(f"{CHAPTER_2} is missing")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    _open_notebook(page, lab, CHAPTER_2)
    started = time.monotonic()
    _run_all(page)
    page.locator(".jp-InputPrompt", has_text="[*]").first.wait_for(timeout=30_000)
    _wait_for_idle(page, timeout_s=300)
    page.run_duration = time.monotonic() - started
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chapter-2-after-run-all.png"))
    yield page
    context.close()


def test_chapter_2_runs_without_errors(chapter_2):
    # JupyterLab renders both tracebacks and stderr with this mime type.
    errors = chapter_2.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    )
    assert errors.count() == 0, errors.first.inner_text()
    assert chapter_2.locator(".jp-OutputArea-output img").count() > 0
    print(f"chapter 2 ran in the browser in {chapter_2.run_duration:.1f} s")


def _slider(page):
    """The inner-steps slider: its handle, its readout and the plot beside it."""
    widget = page.locator(".inner-steps-slider").first
    widget.wait_for()
    cell = page.locator(".jp-Cell", has=widget)
    return widget.locator(".noUi-handle"), widget.locator(".widget-readout"), cell


def _plot_source(cell) -> str:
    """The src of the widget's picture (a blob URL that changes on every redraw)."""
    images = cell.locator("img.inner-steps-plot")
    assert images.count() == 1, "no inner-steps plot next to the slider"
    return images.first.get_attribute("src")


def _wait_for_new_plot(cell, before: str) -> str:
    for _ in range(80):
        now = _plot_source(cell)
        if now != before:
            return now
        cell.page.wait_for_timeout(100)
    raise AssertionError("the plot did not change after the slider moved")


def _assert_readout_matches(handle, readout, cell):
    """The slider's readout, and the kernel's own 'picture drawn for' label, equal the slider."""
    value = handle.get_attribute("aria-valuenow")
    assert value is not None
    assert float(readout.inner_text()) == float(value)
    drawn = cell.locator(".inner-steps-readout")
    for _ in range(80):  # the kernel answers asynchronously
        if drawn.inner_text().strip() == readout.inner_text().strip():
            break
        cell.page.wait_for_timeout(100)
    assert drawn.inner_text().strip() == readout.inner_text().strip()
    return float(value)


def test_inner_steps_slider_with_keyboard(chapter_2):
    handle, readout, cell = _slider(chapter_2)
    cell.scroll_into_view_if_needed()
    start = _assert_readout_matches(handle, readout, cell)
    before = _plot_source(cell)
    cell.screenshot(path=str(ARTIFACTS / "inner-steps-keyboard-before.png"))
    handle.focus()
    chapter_2.keyboard.press("ArrowRight")
    chapter_2.keyboard.press("ArrowRight")
    _wait_for_new_plot(cell, before)
    assert _assert_readout_matches(handle, readout, cell) > start
    cell.screenshot(path=str(ARTIFACTS / "inner-steps-keyboard-after.png"))


def test_inner_steps_slider_with_mouse(chapter_2):
    handle, readout, cell = _slider(chapter_2)
    cell.scroll_into_view_if_needed()
    start = _assert_readout_matches(handle, readout, cell)
    before = _plot_source(cell)
    track = handle.locator("xpath=ancestor::*[contains(@class, 'noUi-target')]").first
    box, grip = track.bounding_box(), handle.bounding_box()
    mouse = chapter_2.mouse
    mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
    mouse.down()
    mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2, steps=10)
    mouse.up()
    _wait_for_new_plot(cell, before)
    assert _assert_readout_matches(handle, readout, cell) > start
    cell.screenshot(path=str(ARTIFACTS / "inner-steps-mouse-after.png"))


ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())


def test_formgrader_lists_the_course_assignments(page, lab):
    base, token = lab
    page.goto(f"{base}/formgrader?token={token}")
    table = page.locator("#main-table")
    for name in ASSIGNMENTS:
        table.get_by_text(name, exact=True).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "formgrader.png"))


def test_assignments_page_lists_a_released_assignment(page, lab):
    """The student's Assignments tab shows the quiz released into the test's exchange."""
    _open_notebook(page, lab, "course/01_few_shot_tasks.ipynb")
    page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
    page.get_by_role("menuitem", name="Assignment List").click()
    released = page.locator("#released_assignments_list")
    released.get_by_text("variants_quiz").first.wait_for()
    assert "maml-course" in released.inner_text()
    page.screenshot(path=str(ARTIFACTS / "assignment-list.png"))
