"""Claim tests: every sentence of a chapter that states a run's outcome is asserted here.

How to guard a claim
--------------------
1. Find the values the sentence rests on, as expressions in the chapter's kernel
   after its last cell (``results["MAML"].loss_mean[1]``, ``float(gain.mean())``).
2. Add them to the literal ``PROBES`` dict at the top of
   ``tests/claims/test_<chapter stem>.py`` (e.g. ``test_02_maml.py`` for
   ``course/02_maml.ipynb``): ``{"name": "expression", ...}``, strings only, no
   computed keys or values (the executor reads the dict with ``ast``, it never
   imports the test file). A value must be JSON-serialisable: numbers, strings,
   lists, dicts, tensors and NumPy arrays (turned into lists).
3. Write one test per claim that takes the ``probes`` fixture, reads
   ``probes["name"]`` and asserts the sentence, quoting it in the docstring and
   the assertion message, so that a change that breaks the sentence fails with
   the sentence in the report. The file starts with
   ``from chapter_claims import probes_fixture  # noqa: F401`` (the ``probes`` fixture) and
   ``pytestmark = pytest.mark.slow``.
4. Where a number in the text would move with the run, rather print it from code
   (or give it a margin that the text states, "about 82%") and assert the margin.
   Where a claim holds only for some seeds, the text says so.

Nothing executes twice: ``website/chapter_runs.py`` executes each chapter once
per test session (cached in ``CHAPTER_CACHE_DIR``, shared with
``tests/test_notebooks.py`` and the site build); after the last cell it
evaluates the chapter's probes in the still-running kernel and stores their
values in the run record, and the probe cell never shows in the notebook. The
probes are part of the cache key, the assertions are not: editing a test's
assertions re-executes nothing.

``probes.run`` is the whole :class:`chapter_runs.ChapterRun` (the executed
notebook with its outputs), for a claim about what a cell printed or drew.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "website"))

import chapter_runs  # noqa: E402

# One chapter cache per test session, shared with tests/test_notebooks.py (same expression there).
os.environ.setdefault(
    "CHAPTER_CACHE_DIR",
    str(Path(os.environ.get("JUPYTER_CONFIG_DIR", tempfile.mkdtemp())).parent / "chapter-cache"),
)
TIMES_FILE = Path(tempfile.gettempdir()) / "metalearn-notebook-times.txt"


class Probes(Mapping):
    """A chapter's probe values by name; a probe that failed raises with its error."""

    def __init__(self, run: chapter_runs.ChapterRun) -> None:
        self.run = run
        self._values = run.probes
        self._errors = run.probe_errors

    def __getitem__(self, name: str):
        if name in self._errors or "*" in self._errors:
            error = self._errors.get(name, self._errors.get("*"))
            raise AssertionError(f"probe {name!r} of {self.run.name} failed: {error}")
        if name not in self._values:
            raise KeyError(f"{self.run.name} has no probe {name!r}; it has {sorted(self._values)}")
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


_RUNS: dict[Path, chapter_runs.ChapterRun] = {}


def chapter_run(path: Path) -> chapter_runs.ChapterRun:
    """The chapter's run, executed at most once per session (see ``chapter_runs``)."""
    if path not in _RUNS:
        run = chapter_runs.run_chapter(path)
        if not run.from_cache:  # the same timing line tests/test_notebooks.py would write
            with TIMES_FILE.open("a") as times:
                record = {
                    "notebook": run.name,
                    "seconds": run.seconds,
                    "cpu_seconds": run.cpu_seconds,
                }
                times.write(json.dumps(record) + "\n")
        _RUNS[path] = run
    return _RUNS[path]


@pytest.fixture(scope="module", name="probes")
def probes_fixture(request) -> Probes:
    """The probe values of the chapter this test file guards (named after it: test_<stem>.py)."""
    stem = Path(request.module.__file__).stem.removeprefix("test_")
    path = chapter_runs.COURSE / f"{stem}.ipynb"
    if not path.is_file():
        raise ValueError(f"{request.module.__file__}: no chapter {path.name} in course/")
    run = chapter_run(path)
    if run.errors:
        pytest.fail(
            f"{run.name} did not run, so its claims cannot be checked:\n" + "\n".join(run.errors)
        )
    return Probes(run)


def committed_benchmark(name: str) -> dict:
    """A committed benchmark result, ``docs/benchmarks/<name>.json``, that a chapter quotes."""
    path = Path(__file__).resolve().parents[2] / "docs" / "benchmarks" / f"{name}.json"
    return json.loads(path.read_text())
