"""Helpers for tests/test_grading.py: temporary course copies and fake submissions.

A *course copy* is a temporary folder with nbgrader_config.py, solutions/ and
exercises/ copied from the repository, in which nbgrader commands run with
the venv first on PATH and HOME and the Jupyter folders inside the temporary
folder, so a test never touches the real course or the user's home.
"""

from __future__ import annotations

import ast
import copy
import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ("inner_loop", "first_order", "variants_quiz", "variants")
BIN = Path(sys.executable).parent


def make_course(tmp: Path) -> Path:
    """Copy the course (config, solutions, exercises) into ``tmp/course``."""
    course = tmp / "course"
    course.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for name in ("solutions", "exercises"):
        shutil.copytree(
            ROOT / name, course / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints")
        )
    home = tmp / "home"
    for sub in ("jupyter-config", "jupyter-data", "jupyter-runtime", "ipython", "mpl"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    return course


def env_for(course: Path) -> dict[str, str]:
    home = course.parent / "home"
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / "jupyter-config"),
        JUPYTER_DATA_DIR=str(home / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"),
        IPYTHONDIR=str(home / "ipython"),
        MPLCONFIGDIR=str(home / "mpl"),
        MPLBACKEND="Agg",
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONWARNINGS="ignore",
    )
    return env


def nbgrader(
    course: Path, *args: str, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` in the course copy (``env`` overrides variables); never raises."""
    return subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=course,
        env={**env_for(course), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_nb(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def cell_by_id(nb, gid: str):
    for cell in nb.cells:
        if grade_id(cell) == gid:
            return cell
    raise KeyError(gid)


def _strip_markers(source: str) -> str:
    return "\n".join(
        line for line in source.splitlines() if not re.match(r"\s*### (BEGIN|END) SOLUTION", line)
    )


def solved(assignment: str, course: Path):
    """The release notebook with every answer cell filled from the solution notebook."""
    release = read_nb(course / "exercises" / assignment / f"{assignment}.ipynb")
    source = read_nb(course / "solutions" / assignment / f"{assignment}.ipynb")
    answers = {
        grade_id(c): _strip_markers(c.source)
        for c in source.cells
        if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    }
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in answers:
            cell.source = answers[gid]
        elif cell.cell_type == "markdown" and cell.source.strip() == "YOUR ANSWER HERE":
            cell.source = "An honest written answer."
    return nb


def blank(assignment: str, course: Path):
    return read_nb(course / "exercises" / assignment / f"{assignment}.ipynb")


def quiz_keys(course: Path) -> dict[int, frozenset[str]]:
    """The graded keys, read from the solution cells of the quiz (instructor side only)."""
    source = read_nb(course / "solutions" / "variants_quiz" / "variants_quiz.ipynb")
    keys = {}
    for cell in source.cells:
        gid = grade_id(cell) or ""
        if gid.startswith("answer_"):
            body = _strip_markers(cell.source).strip()
            name, value = body.split("=", 1)
            keys[int(gid.split("_")[1])] = frozenset(ast.literal_eval(value.strip()))
    return keys


def quiz_letters(course: Path) -> dict[int, str]:
    source = read_nb(course / "solutions" / "variants_quiz" / "variants_quiz.ipynb")
    out = {}
    for cell in source.cells:
        gid = grade_id(cell) or ""
        if gid.startswith("test_answer_"):
            match = re.search(r'check_answer\(\w+, "([A-H]+)"\)', cell.source)
            out[int(gid.rsplit("_", 1)[1])] = match[1]
    return out


def submit(course: Path, student: str, assignment: str, nb=None, raw: str | None = None) -> Path:
    """Put a notebook (or raw text) at submitted/<student>/<assignment>/<assignment>.ipynb."""
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    if raw is not None:
        path.write_text(raw)
    elif nb is not None:
        nbformat.write(nb, str(path))
    return folder


def export(course: Path) -> dict[tuple[str, str], float]:
    """``nbgrader export`` to CSV; returns {(assignment, student): score}."""
    result = nbgrader(course, "export", "--to", "grades.csv")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(course / "grades.csv", newline="") as f:
        return {(r["assignment"], r["student_id"]): float(r["score"]) for r in csv.DictReader(f)}
