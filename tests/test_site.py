"""The course website (``make site``): built once per test run, then read in a real browser.

The site is built with ``website/build.py`` into a temporary folder. Its
chapters come from the chapter cache that ``tests/test_notebooks.py`` fills in
the same test run (same ``CHAPTER_CACHE_DIR``), so no chapter executes twice.

Checks without a browser: graded material stays off the site, widgets are
static pictures with no placeholder, a failing chapter fails the build with its
name and error, and every internal link resolves. Then the site is served
from loopback and opened in Debian's chromium with playwright: on the landing
page, every chapter page and the three documents, no console error, no request leaving loopback
(each is counted and blocked), every image loaded, maths rendered; search finds
"Reptile". Screenshots of the landing page and chapter 2 go to ``test-artifacts/``.

Without chromium the browser tests skip; ``REQUIRE_BROWSER=1`` (set by
``.ci/run``) turns the skip into a failure.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from conftest import CHROMIUM, CHROMIUM_FLAGS, browser_or_skip

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHAPTERS = sorted((ROOT / "course").glob("*.ipynb"))
# One chapter cache per test session, shared with tests/test_notebooks.py (same expression there).
os.environ.setdefault(
    "CHAPTER_CACHE_DIR",
    str(Path(os.environ.get("JUPYTER_CONFIG_DIR", tempfile.mkdtemp())).parent / "chapter-cache"),
)

pytestmark = pytest.mark.slow


def _build(out: Path, *chapters: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    command = [sys.executable, str(ROOT / "website" / "build.py"), "--out", str(out)]
    return subprocess.run(
        [*command, *map(str, chapters)], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The built site's folder (built once for the whole test run)."""
    out = tmp_path_factory.mktemp("site") / "html"
    start = time.perf_counter()
    result = _build(out)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, f"make site failed:\n{result.stdout}\n{result.stderr[-5000:]}"
    index = Path(result.stdout.strip().splitlines()[-1])
    assert index == out / "index.html" and index.is_file(), result.stdout
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"\nsite built in {seconds:.1f} s, {size / 1e6:.1f} MB:\n{result.stdout}")
    return out


def _chapter_page(site: Path, notebook: Path) -> Path:
    return site / "chapters" / f"{notebook.stem}.html"


def _pages(site: Path) -> list[Path]:
    return [site / "index.html", *(_chapter_page(site, nb) for nb in CHAPTERS)]


def _all_html(site: Path) -> list[Path]:
    """Every page (not the theme's template fragments that Sphinx copies into _static/)."""
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


# ---------------------------------------------------------------------------
# Without a browser
# ---------------------------------------------------------------------------


def test_site_has_every_chapter_and_document(site):
    expected = _pages(site) + [
        site / "docs" / f"{name}.html" for name in ("benchmarks", "instructor_guide", "classroom")
    ]
    missing = [str(p.relative_to(site)) for p in expected if not p.is_file()]
    assert not missing, f"pages missing from the site: {missing}"
    landing = (site / "index.html").read_text()
    for notebook in CHAPTERS:
        assert f'href="chapters/{notebook.stem}.html"' in landing, (
            f"the landing page does not describe {notebook.name}: add it to website/index.md"
        )
    words = re.sub(r"<[^>]+>", "", landing)  # code is split into highlighted spans
    assert "make lab" in words and "make test" in words
    benchmarks = (site / "docs" / "benchmarks.html").read_text()
    pictures = re.findall(r'<img[^>]+src="([^"]+\.png)"', benchmarks)
    assert len(pictures) >= len(list((ROOT / "docs" / "benchmarks").glob("*.png"))), pictures


def _hidden_lines() -> set[str]:
    """Distinctive lines of solutions and hidden tests, absent from the public course text."""
    public = "\n".join(
        cell.source
        for folder in ("course",)
        for path in (ROOT / folder).glob("*.ipynb")
        for cell in nbformat.read(path, as_version=4).cells
    )
    public += "\n".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    hidden: set[str] = set()
    blocks = (
        r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS",
        r"### BEGIN SOLUTION(.*?)### END SOLUTION",
    )
    for path in (ROOT / "solutions").rglob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            for pattern in blocks:
                for block in re.findall(pattern, cell.source, flags=re.S):
                    for line in block.splitlines():
                        line = line.strip()
                        if len(line) >= 30 and line not in public:
                            hidden.add(line)
    return hidden


def test_graded_material_stays_off_the_site(site):
    hidden = _hidden_lines()
    assert hidden, "no hidden tests or solutions found in solutions/: the check would be empty"
    graded = {p.stem for folder in ("solutions", "exercises") for p in (ROOT / folder).rglob("*")}
    on_site = {p.stem for p in site.rglob("*")}
    assert not graded & on_site - {"index", "search", "genindex", "README"}, graded & on_site
    leaks = []
    for path in site.rglob("*"):
        if path.suffix in (".html", ".js", ".txt", ".ipynb", ".json") and path.is_file():
            text = path.read_text(errors="replace")
            # The instructor guide explains these markers; a chapter never shows them.
            if path.parent.name == "chapters" or path.name == "index.html":
                markers = ("BEGIN HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION")
                leaks += [f"{path.name}: {m}" for m in markers if m in text]
            leaks += [f"{path.name}: {line[:60]}" for line in hidden if line in text]
    assert not leaks, f"graded material on the site: {leaks[:10]}"


def test_widgets_are_static_pictures_with_a_live_line(site):
    widget_chapters = []
    for notebook in CHAPTERS:
        page = _chapter_page(site, notebook).read_text()
        words = re.sub(r"<[^>]+>", "", page)  # `make lab` is split into highlighted spans
        for placeholder in ("widget-view+json", "jupyter-widgets", "require.min.js", "embed-amd"):
            assert placeholder not in page, f"{notebook.name}: widget placeholder {placeholder!r}"
        if "live in JupyterLab" in words:
            widget_chapters.append(notebook.name)
            assert "make lab" in words
    # Chapters 1 and 2 show figure widgets (task sampler, inner-steps explorer).
    assert {"01_few_shot_tasks.ipynb", "02_maml.ipynb"} <= set(widget_chapters), widget_chapters


def _widget_notebook(models: dict, view_ids: list[str], first_pictures: dict):
    views = [
        nbformat.v4.new_output(
            "display_data",
            data={"application/vnd.jupyter.widget-view+json": {"model_id": i}, "text/plain": "W"},
        )
        for i in view_ids
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("w", outputs=views)])
    state = {"state": models, "version_major": 2, "version_minor": 0}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": state}
    nb.metadata["course_first_pictures"] = first_pictures
    return nb


def test_static_widgets_show_the_first_picture_and_progress_as_text():
    sys.path.insert(0, str(ROOT / "website"))
    from static_widgets import make_widgets_static

    def model(name, **state):
        return {"model_name": name, "state": state}

    image = model("ImageModel", format="png")
    image["buffers"] = [{"path": ["value"], "data": "TEFTVA==", "encoding": "base64"}]
    models = {
        "box": model("VBoxModel", children=["IPY_MODEL_steps", "IPY_MODEL_image"]),
        "steps": model("IntSliderModel", description="inner steps", value=5),
        "image": image,
        "bar": model("HBoxModel", children=["IPY_MODEL_label", "IPY_MODEL_progress"]),
        "label": model("HTMLModel", value="MAML:\u2007 99%"),
        "progress": model("FloatProgressModel", value=1000.0, max=1000.0),
    }
    nb = _widget_notebook(models, ["box", "bar"], {"image": "Rklyc3Q="})
    assert make_widgets_static(nb) == 2
    picture, line, progress = nb.cells[0].outputs
    assert picture["data"]["image/png"] == "Rklyc3Q="  # the first picture, not the last
    assert "inner steps" in line["data"]["text/markdown"]
    assert "live in JupyterLab (`make lab`)" in line["data"]["text/markdown"]
    assert progress["text"] == "MAML: 1000/1000\n"
    assert "widgets" not in nb.metadata and "course_first_pictures" not in nb.metadata


def test_a_failing_chapter_fails_the_build_with_its_name_and_error(tmp_path):
    broken = tmp_path / "99_broken_chapter.ipynb"
    cells = [nbformat.v4.new_code_cell("raise RuntimeError('deliberately broken for the test')")]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, broken)
    result = _build(tmp_path / "html", broken)
    assert result.returncode != 0
    assert "99_broken_chapter.ipynb" in result.stderr, result.stderr
    assert "RuntimeError" in result.stderr and "deliberately broken" in result.stderr
    assert not (tmp_path / "html" / "index.html").exists()


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.sources: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.sources.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.sources.append(attrs["href"])


@functools.cache
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text())
    return parser


def test_every_internal_link_resolves(site):
    broken, checked = [], 0
    for page in _all_html(site):
        parsed = _parse(page)
        for href in parsed.hrefs + parsed.sources:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc:
                continue  # an external link (e.g. nbgrader's docs): followed by nobody here
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            checked += 1
            if not target.is_file() or site.resolve() not in target.resolve().parents:
                broken.append(f"{page.relative_to(site)}: {href}")
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in _parse(target).ids:
                    broken.append(f"{page.relative_to(site)}: {href} (no such anchor)")
    assert checked > 100, f"only {checked} internal links found"
    assert not broken, f"{len(broken)} broken internal links: {broken[:20]}"


def test_no_page_points_at_another_host_for_scripts_styles_or_pictures(site):
    remote = [
        f"{page.relative_to(site)}: {src}"
        for page in _all_html(site)
        for src in _parse(page).sources
        if urlsplit(src).scheme in ("http", "https") or src.startswith("//")
    ]
    assert not remote, remote[:10]


# ---------------------------------------------------------------------------
# In chromium
# ---------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def served(site):
    """The site served over HTTP on loopback: yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


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


class _Visit:
    """A page opened with every non-loopback request blocked and counted."""

    def __init__(self, browser, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1300, "height": 900})
        self.outside: list[str] = []
        self.console_errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.on(
            "console",
            lambda m: self.console_errors.append(m.text) if m.type == "error" else None,
        )
        self.page.on("pageerror", lambda e: self.console_errors.append(f"page error: {e}"))
        self.page.goto(url, wait_until="networkidle")

    def _route(self, route):
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith("data:") or host == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def close(self) -> None:
        self.context.close()


def _page_ids() -> list[str]:
    """The landing page, every chapter, and the three documents from docs/."""
    documents = ("benchmarks", "instructor_guide", "classroom")
    return ["index", *(nb.stem for nb in CHAPTERS), *(f"docs/{name}" for name in documents)]


def _relative_url(name: str) -> str:
    if name == "index" or name.startswith("docs/"):
        return f"{name}.html"
    return f"chapters/{name}.html"


@pytest.mark.parametrize("name", _page_ids())
def test_page_in_chromium(name, site, served, browser):
    relative = _relative_url(name)
    visit = _Visit(browser, f"{served}/{relative}")
    try:
        page = visit.page
        # Every picture: scroll through the page so that nothing waits to be shown.
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_load_state("networkidle")
        images = page.evaluate(
            "[...document.images].map(i => [i.currentSrc || i.src, i.complete && i.naturalWidth])"
        )
        if relative.startswith("chapters/") or name in ("index", "docs/benchmarks"):
            assert images, f"{relative}: no images at all"
        unloaded = [src for src, width in images if not width]
        assert not unloaded, f"{relative}: images not loaded: {unloaded}"
        # Maths: MathJax turns every math element into an mjx-container, with no error.
        maths = page.locator(".math").count()
        if maths:
            page.wait_for_function(
                "document.querySelectorAll('mjx-container').length >= "
                "document.querySelectorAll('.math').length"
            )
            assert page.locator("mjx-merror").count() == 0, f"{relative}: a formula failed"
        if name in ("index", "02_maml"):  # both show the meta-gradient formula
            assert maths > 0, f"{relative}: no maths found"
        if name in ("index", "02_maml"):
            page.evaluate("window.scrollTo(0, 0)")
            if name == "02_maml":  # the inner-steps widget's static picture
                widget_line = page.get_by_text("live in JupyterLab").first
                widget_line.evaluate("e => e.scrollIntoView({block: 'end'})")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"site-{name}.png"))
        print(f"\n{relative}: {len(images)} images, {maths} formulas, 0 outside requests")
        assert not visit.outside, f"{relative}: {len(visit.outside)} requests left loopback"
        assert not visit.console_errors, f"{relative}: console errors {visit.console_errors}"
    finally:
        visit.close()


def test_outside_requests_are_counted_and_blocked(site, served, browser):
    """The counter the page tests rely on sees a request to another host, and blocks it."""
    visit = _Visit(browser, f"{served}/index.html")
    try:
        outside = "https://cdn.example.invalid/picture.png"
        visit.page.evaluate(
            f"document.body.appendChild(Object.assign(new Image(), {{src: '{outside}'}}))"
        )
        visit.page.wait_for_timeout(500)
        assert visit.outside == [outside]
        assert visit.console_errors, "a blocked picture logs a console error"
    finally:
        visit.close()


def test_search_finds_reptile(site, served, browser):
    visit = _Visit(browser, f"{served}/search.html?q=Reptile")
    try:
        results = visit.page.locator("#search-results li")
        results.first.wait_for()
        found = visit.page.locator("#search-results").inner_text()
        assert "First-order variants" in found or "Reptile" in found, found[:500]
        assert results.count() >= 2, found[:500]
        assert not visit.outside, visit.outside
        assert not visit.console_errors, visit.console_errors
    finally:
        visit.close()
