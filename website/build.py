"""Build the course website: ``make site`` (or ``python website/build.py [--out DIR]``).

1. Every ``course/*.ipynb`` is executed, or taken from the chapter cache when
   neither it nor the library changed (:mod:`chapter_runs`). A chapter that
   fails stops the build with its name and error.
2. Its widgets become static pictures (:mod:`static_widgets`).
3. A Sphinx source tree is laid out beside the output (``_build/site-src/``): this folder's
   ``conf.py``, ``index.md`` and ``_static/``, the executed chapters, the
   benchmark results, the instructor and classroom guides, and MathJax from the
   ``mathjax`` package (so no page loads anything from the internet). A file is
   rewritten only when its content changed, so Sphinx rebuilds only what changed.
4. ``sphinx-build`` (MyST-NB reads the executed notebooks; it executes nothing)
   writes the HTML into ``_build/site/`` (doctrees in ``_build/site-doctrees/``),
   and the path of its ``index.html`` is printed.

Only what is listed here goes on the site: never ``solutions/`` or ``exercises/``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chapter_runs import ROOT, ChapterRun, course_chapters, run_chapter  # noqa: E402
from static_widgets import make_widgets_static  # noqa: E402

HERE = Path(__file__).resolve().parent
BUILD = ROOT / "_build"
DEFAULT_OUT = BUILD / "site"
# The documents taken from docs/ (with the pages they link to), and their pictures.
DOCS = ("benchmarks.md", "instructor_guide.md", "classroom.md")
DOC_PICTURES = ("benchmarks/*.png", "images/*.png")
# The parts of MathJax 3 that a page can load (the TeX+MathML combined component,
# its lazily loaded extensions, fonts, menu and accessibility): about 8 MB of 24.
MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output", "ui", "a11y", "sre", "adaptors")


class ChapterFailed(RuntimeError):
    """A course chapter raised while executing: the site is not built."""


def mathjax_es5() -> Path:
    import mathjax  # the django-static-mathjax package: MathJax's files, no Django

    folder = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (folder / "tex-mml-chtml.js").is_file():
        raise FileNotFoundError(
            f"MathJax not found at {folder}: pip install -r requirements-site.txt"
        )
    return folder


def execute_chapters(chapters: list[Path]) -> list[ChapterRun]:
    """Run (or take from the cache) every chapter; raise ChapterFailed naming each failure."""
    runs, failed = [], []
    for path in chapters:
        run = run_chapter(path)
        how = "from the cache" if run.from_cache else f"executed in {run.seconds:.1f} s"
        print(f"  {run.name}: {how}", flush=True)
        runs.append(run)
        if not run.ok:
            failed.append(run)
    if failed:
        report = "\n\n".join(f"{run.name} failed:\n" + "\n".join(run.errors) for run in failed)
        raise ChapterFailed(report)
    return runs


class _Stage:
    """Writes a source tree, touching only files whose content changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.wanted: set[Path] = set()
        #: A file appeared or disappeared: every page's navigation must be rewritten.
        self.files_changed = False

    def write(self, relative: str, content: bytes) -> None:
        target = self.root / relative
        self.wanted.add(target)
        if target.is_file() and target.read_bytes() == content:
            return
        self.files_changed |= not target.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)

    def copy(self, source: Path, relative: str) -> None:
        self.write(relative, source.read_bytes())

    def copy_tree(self, source: Path, relative: str) -> None:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                self.copy(path, f"{relative}/{path.relative_to(source)}")

    def remove_the_rest(self) -> None:
        """Delete staged files that are no longer part of the site (a removed chapter)."""
        for path in sorted(self.root.rglob("*"), reverse=True):
            if path.is_file() and path not in self.wanted:
                path.unlink()
                self.files_changed = True
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


_MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")


def linked_documents(starts: list[Path], folder: Path) -> list[Path]:
    """``starts`` and every Markdown file inside ``folder`` that they link to, transitively.

    docs/benchmarks.md links to result pages such as docs/benchmarks/classroom.md;
    those go on the site too (a link out of ``folder`` is left for Sphinx to report).
    """
    found: list[Path] = []
    todo = [path.resolve() for path in starts]
    while todo:
        path = todo.pop(0)
        if path in found or not path.is_file():
            continue
        found.append(path)
        for target in _MARKDOWN_LINK.findall(path.read_text()):
            linked = (path.parent / target).resolve()
            if folder.resolve() in linked.parents:
                todo.append(linked)
    return found


def stage_sources(runs: list[ChapterRun], source: Path) -> bool:
    """Lay out the Sphinx sources; True when files were added or removed since last time."""
    stage = _Stage(source)
    for name in ("conf.py", "index.md"):
        stage.copy(HERE / name, name)
    stage.copy_tree(HERE / "_static", "_static")
    es5 = mathjax_es5()
    for part in MATHJAX_PARTS:
        path = es5 / part
        if path.is_dir():
            stage.copy_tree(path, f"_static/mathjax/{part}")
        else:
            stage.copy(path, f"_static/mathjax/{part}")
    stage.copy(es5.parent / "LICENSE", "_static/mathjax/LICENSE")
    for run in runs:
        nb = nbformat.from_dict(run.notebook)  # a copy: the cached notebook stays as executed
        make_widgets_static(nb)
        stage.write(f"chapters/{Path(run.name).name}", nbformat.writes(nb).encode())
    docs = ROOT / "docs"
    for path in linked_documents([docs / name for name in DOCS], docs):
        stage.copy(path, f"docs/{path.relative_to(docs)}")
    for pattern in DOC_PICTURES:
        for path in sorted(docs.glob(pattern)):
            stage.copy(path, f"docs/{path.relative_to(docs)}")
    stage.remove_the_rest()
    return stage.files_changed


def run_sphinx(source: Path, out: Path, *, everything: bool) -> None:
    """sphinx-build; ``everything`` rewrites every page (Sphinx alone would keep the old
    navigation of unchanged pages when a page is added or removed)."""
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-b",
        "html",
        "-q",  # warnings and errors only
        "-W",  # a warning (a broken link, a missing picture) fails the build
        "--keep-going",
        "-d",
        str(out.parent / f"{out.name}-doctrees"),
        *(["-E", "-a"] if everything else []),
        str(source),
        str(out),
    ]
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"sphinx-build failed (exit {result.returncode}); see its messages above")


def build(out: Path = DEFAULT_OUT, chapters: list[Path] | None = None) -> Path:
    """Build the site into ``out``; returns the path of its ``index.html``."""
    chapters = course_chapters() if chapters is None else chapters
    if not chapters:
        raise ValueError("chapters must name at least one notebook; course/ has none")
    start = time.perf_counter()
    print(f"Chapters ({len(chapters)}):", flush=True)
    runs = execute_chapters(chapters)
    source = out.parent / f"{out.name}-src"
    files_changed = stage_sources(runs, source)
    run_sphinx(source, out, everything=files_changed or not (out / "index.html").exists())
    # The theme's JavaScript source maps (3.4 MB) serve only a browser's developer tools.
    for source_map in (out / "_static").rglob("*.js.map"):
        source_map.unlink()
    index = out / "index.html"
    print(f"Site built in {time.perf_counter() - start:.1f} s", flush=True)
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="HTML folder (_build/site)")
    parser.add_argument(
        "chapters", nargs="*", type=Path, help="only these notebooks (default: course/*.ipynb)"
    )
    args = parser.parse_args(argv)
    try:
        index = build(args.out.resolve(), [p.resolve() for p in args.chapters] or None)
    except ChapterFailed as failure:
        print(f"\nThe site was not built: a chapter failed.\n{failure}", file=sys.stderr)
        return 1
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
