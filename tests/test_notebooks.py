"""Notebooks: committed clean, and every course chapter runs top to bottom without complaint.

The execution tests run each ``course/*.ipynb`` with nbclient in a fresh
``python3`` kernel (the venv's, since jupyter_client starts kernels named
``python3`` with the running interpreter), with ``course/`` as working
directory. A chapter passes when no cell raises, nothing at all is written to
stderr (no warnings, no progress bars: ``tqdm.auto`` renders as a widget in a
kernel), and its outputs contain at least one PNG figure.

Execution times are printed and written, one ``name seconds`` line per
notebook, to ``<tmp>/metalearn-notebook-times.txt``; they are never asserted.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = sorted((ROOT / "course").glob("*.ipynb"))
COMMITTED_DIRS = ("course", "solutions", "exercises")
TIMES_FILE = Path(tempfile.gettempdir()) / "metalearn-notebook-times.txt"


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


@pytest.fixture(scope="module")
def font_cache():
    """Build matplotlib's font cache here, so no kernel logs 'building the font cache' to stderr."""
    import matplotlib.font_manager

    return matplotlib.font_manager.fontManager


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stderr_outputs(nb) -> list[str]:
    found = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append(f"cell {i}: {output.get('text', '')[:500]}")
            data = output.get("data", {})
            if "application/vnd.jupyter.stderr" in data:
                found.append(f"cell {i}: {data['application/vnd.jupyter.stderr'][:500]}")
    return found


def _count_pngs(nb) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", COURSE, ids=_name)
def test_course_notebook_runs_cleanly(path, font_cache, monkeypatch):
    from nbclient import NotebookClient

    # The kernel inherits our environment; with MPLBACKEND=Agg (set for the
    # tests) it would draw no inline figures.
    monkeypatch.delenv("MPLBACKEND", raising=False)

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    cpu_before = _children_cpu_seconds()
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails
    seconds = time.perf_counter() - start
    # The kernel is a child process, reaped when execute() shuts it down: its CPU
    # time says how much work the notebook is, even on a busy machine.
    cpu = _children_cpu_seconds() - cpu_before
    print(f"\n{_name(path)} executed in {seconds:.1f} s wall, {cpu:.1f} s CPU (kernel)")
    with TIMES_FILE.open("a") as times:
        record = {
            "notebook": _name(path),
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
        }
        times.write(json.dumps(record) + "\n")

    errors = [
        f"cell {i}: {o.get('ename')}: {o.get('evalue')}"
        for i, cell in enumerate(nb.cells)
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, f"{_name(path)} raised: {errors}"
    stderr = _stderr_outputs(nb)
    assert not stderr, f"{_name(path)} wrote to stderr:\n" + "\n".join(stderr)
    assert _count_pngs(nb) >= 1, f"{_name(path)} produced no figure (image/png output)"
