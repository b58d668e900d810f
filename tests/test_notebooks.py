"""Notebooks: committed clean, and every course chapter runs top to bottom without complaint.

The execution tests run each ``course/*.ipynb`` through ``website/chapter_runs.py``,
the executor the course website shares: nbclient, a fresh ``python3`` kernel
(the venv's), ``course/`` as working directory, widget state stored. Within one
test run each chapter executes once: the executed notebook goes to a chapter
cache that the site build (``tests/test_site.py``) then reads instead of
executing the chapter again. The tests use a cache of their own in the
session's scratch folder, so every test run really executes the chapters;
set ``CHAPTER_CACHE_DIR`` to reuse one across runs.

A chapter passes when no cell raises, nothing at all is written to stderr (no
warnings, no progress bars: ``tqdm.auto`` renders as a widget in a kernel), and
its outputs contain at least one PNG figure.

Execution times are printed and written, one JSON line per notebook, to
``<tmp>/metalearn-notebook-times.txt``; they are never asserted.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "website"))

import chapter_runs  # noqa: E402

COURSE = chapter_runs.course_chapters()
COMMITTED_DIRS = ("course", "solutions", "exercises")
TIMES_FILE = Path(tempfile.gettempdir()) / "metalearn-notebook-times.txt"
# One chapter cache per test session, shared with tests/test_site.py (same expression there).
os.environ.setdefault(
    "CHAPTER_CACHE_DIR",
    str(Path(os.environ.get("JUPYTER_CONFIG_DIR", tempfile.mkdtemp())).parent / "chapter-cache"),
)


def _committed_notebooks() -> list[Path]:
    found = []
    for folder in COMMITTED_DIRS:
        for path in sorted((ROOT / folder).rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in path.parts:
                found.append(path)
    return found


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_there_are_course_notebooks():
    assert COURSE, "no notebooks found in course/"


@pytest.mark.parametrize("path", _committed_notebooks(), ids=_name)
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, f"{_name(path)}: cells {dirty} have outputs or execution counts; clear them"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", (
        f"{_name(path)}: kernelspec must be python3"
    )


@pytest.fixture(scope="session")
def executed_chapters():
    """Chapter runs by path, each executed at most once per session (see chapter_runs)."""
    runs: dict[Path, chapter_runs.ChapterRun] = {}

    def get(path: Path) -> chapter_runs.ChapterRun:
        if path not in runs:
            runs[path] = chapter_runs.run_chapter(path)
        return runs[path]

    return get


def _count_pngs(nb) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", COURSE, ids=_name)
def test_course_notebook_runs_cleanly(path, executed_chapters):
    run = executed_chapters(path)
    how = "taken from CHAPTER_CACHE_DIR" if run.from_cache else "executed"
    print(f"\n{run.name} {how}: {run.seconds:.1f} s wall, {run.cpu_seconds:.1f} s CPU (kernel)")
    if not run.from_cache:
        with TIMES_FILE.open("a") as times:
            record = {"notebook": run.name, "seconds": run.seconds, "cpu_seconds": run.cpu_seconds}
            times.write(json.dumps(record) + "\n")

    assert not run.errors, f"{run.name} raised:\n" + "\n".join(run.errors)
    assert not run.stderr, f"{run.name} wrote to stderr:\n" + "\n".join(run.stderr)
    assert _count_pngs(run.notebook) >= 1, f"{run.name} produced no figure (image/png output)"


def test_chapter_cache_key_follows_notebook_and_library(tmp_path, monkeypatch):
    """An edited notebook or library file gives a new key; nothing else does."""
    library = tmp_path / "lib"
    (library / "sub").mkdir(parents=True)
    (library / "sub" / "module.py").write_text("x = 1\n")
    monkeypatch.setattr(chapter_runs, "LIBRARY", library)
    notebook = tmp_path / "chapter.ipynb"
    notebook.write_text(nbformat.writes(nbformat.v4.new_notebook()))
    first = chapter_runs.cache_key(notebook)
    assert chapter_runs.cache_key(notebook) == first
    (library / "sub" / "module.py").write_text("x = 2\n")
    second = chapter_runs.cache_key(notebook)
    assert second != first
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    notebook.write_text(nbformat.writes(nb))
    assert chapter_runs.cache_key(notebook) not in (first, second)
