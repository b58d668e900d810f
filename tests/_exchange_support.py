"""Helpers for tests/test_exchange.py: people on one machine, answers, leak checks.

Each person (the instructor and every student) gets their own HOME, Jupyter
folders and ``nbgrader_config.py`` in a temporary folder, and runs nbgrader
with that environment in their own working folder, the way each would on a
JupyterHub with a shared exchange folder. Students are told apart by ``CourseDirectory.student_id``
in their own config (on a real hub with system accounts nbgrader takes the
login name instead).
"""

from __future__ import annotations

import ast
import html
import io
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

BIN = Path(sys.executable).parent
COURSE_ID = "maml-course"  # CourseDirectory.course_id in the repository's nbgrader_config.py


@dataclass
class Person:
    """One account: a HOME with its own Jupyter folders, and a working folder."""

    name: str
    home: Path
    work: Path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            HOME=str(self.home),
            USER=self.name,
            LOGNAME=self.name,
            JUPYTERHUB_USER=self.name,
            JUPYTER_CONFIG_DIR=str(self.home / ".jupyter"),
            JUPYTER_DATA_DIR=str(self.home / ".local" / "share" / "jupyter"),
            JUPYTER_RUNTIME_DIR=str(self.home / ".local" / "share" / "jupyter" / "runtime"),
            IPYTHONDIR=str(self.home / ".ipython"),
            MPLCONFIGDIR=str(self.home / ".matplotlib"),
            MPLBACKEND="Agg",
            JUPYTER_PLATFORM_DIRS="1",
            PYTHONWARNINGS="ignore",
        )
        return env

    def nbgrader(self, *args: str) -> str:
        """Run ``nbgrader ARGS`` as this person, in their working folder; return the log.

        The command runs in this Python process (starting a fresh interpreter
        for each of the ~25 commands would cost minutes on 2 cores) with this
        person's environment and working folder, so nbgrader reads their
        ``~/.jupyter/nbgrader_config.py`` and, for the instructor, the
        course's ``nbgrader_config.py``. Kernels that autograde starts are
        separate processes as usual. Raises with the log when nbgrader fails.
        """
        from jupyter_core.application import NoStart
        from nbgrader.apps import NbGraderApp

        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        log = io.StringIO()
        app = NbGraderApp.instance()
        code = 0
        try:
            os.environ.clear()
            os.environ.update(self.env())
            os.chdir(self.work)
            app.initialize(list(args))
            app.init_logging(logging.StreamHandler, [log], color=False, subapps=True)
            app.start()
        except NoStart:  # a sub-command ran to its end
            code = 0
        except SystemExit as exit_:
            code = exit_.code or 0
        finally:
            app.reset()
            NbGraderApp.clear_instance()
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
        if code != 0:
            raise AssertionError(
                f"{self.name}: nbgrader {' '.join(args)} exited {code}\n{log.getvalue()[-5000:]}"
            )
        return log.getvalue()


def make_person(base: Path, name: str, work: Path | None, config: str) -> Person:
    """Create ``base/name`` with a HOME whose ``~/.jupyter/nbgrader_config.py`` is ``config``."""
    home = base / name / "home"
    (home / ".jupyter").mkdir(parents=True)
    (home / ".jupyter" / "nbgrader_config.py").write_text(config)
    work = work or base / name / "work"
    work.mkdir(parents=True, exist_ok=True)
    return Person(name=name, home=home, work=work)


def student_config(exchange: Path, student: str) -> str:
    """What a student's ``~/.jupyter/nbgrader_config.py`` holds (docs/classroom.md)."""
    return (
        "c = get_config()\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        "c.Exchange.path_includes_course = True\n"
        f"c.CourseDirectory.student_id = {student!r}\n"
    )


def instructor_config(exchange: Path) -> str:
    return f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\n"


def read_nb(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def grade_id(cell) -> str:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")


def set_cell(nb, gid: str, source: str) -> None:
    for cell in nb.cells:
        if grade_id(cell) == gid:
            cell.source = source
            return
    raise KeyError(f"no cell with grade_id {gid!r}")


def _blocks(source: str, begin: str, end: str) -> list[str]:
    out, inside = [], False
    for line in source.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            out.append(line)
    return out


def solution_answers(solution_nb: Path) -> dict[str, str]:
    """``{grade_id: code}`` of the solution cells, without the BEGIN/END markers."""
    out = {}
    for cell in read_nb(solution_nb).cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            lines = cell.source.splitlines()
            out[grade_id(cell)] = "\n".join(ln for ln in lines if "### " not in ln)
    return out


def quiz_key(solution_nb: Path) -> dict[int, tuple[frozenset[str], str]]:
    """``{question: (true letters, all letters)}`` read from the instructor's notebook."""
    cells = read_nb(solution_nb).cells
    keys, letters = {}, {}
    for cell in cells:
        gid = grade_id(cell)
        if m := re.fullmatch(r"answer_(\d+)", gid):
            body = "\n".join(_blocks(cell.source, "BEGIN SOLUTION", "END SOLUTION"))
            keys[int(m[1])] = frozenset(ast.literal_eval(body.split("=", 1)[1].strip()))
        elif m := re.fullmatch(r"test_answer_(\d+)", gid):
            letters[int(m[1])] = re.search(r'check_answer\(answer_\d+, "([A-H]+)"\)', cell.source)[
                1
            ]
    return {q: (keys[q], letters[q]) for q in keys}


def secret_lines(solution_nb: Path, release_nb: Path) -> set[str]:
    """Lines only the instructor may see: solutions, hidden tests, mark schemes.

    Lines that the release notebook shows too (a function signature, a
    docstring, a call that a visible test makes as well) are not secret.
    """
    public = "\n".join(
        _norm(line) for cell in read_nb(release_nb).cells for line in cell.source.splitlines()
    )
    secret = set()
    for cell in read_nb(solution_nb).cells:
        for begin, end in [
            ("BEGIN SOLUTION", "END SOLUTION"),
            ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
            ("BEGIN MARK SCHEME", "END MARK SCHEME"),
        ]:
            for line in _blocks(cell.source, begin, end):
                line = _norm(line)
                if len(line) >= 12 and line not in public:
                    secret.add(line)
    return secret


def _norm(text: str) -> str:
    return " ".join(text.split())


def html_text(path: Path) -> str:
    """The visible text of an HTML page (tags dropped, entities decoded, spaces collapsed)."""
    raw = path.read_text(encoding="utf-8")
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S | re.I)
    return _norm(html.unescape(re.sub(r"<[^>]+>", "", raw)))


def notebook_lines(path: Path) -> set[str]:
    return {_norm(line) for cell in read_nb(path).cells for line in cell.source.splitlines()}
