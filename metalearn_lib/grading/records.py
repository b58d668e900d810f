"""Grading records: the data a graded test cell hands to the grader.

A graded test cell never decides its own grade (a student's code runs in the
same kernel and could rebind anything there). It only *records* data, as one
output of the MIME type :data:`RECORD_MIME`:

.. code-block:: json

    {"version": 1, "cell": "test_answer_3", "kind": "quiz", "data": ["A", "C"]}

After execution, :class:`metalearn_lib.grading.verdicts.DecideVerdicts` reads
the records in the grader's process and decides the verdict against
references the kernel never sees. This module is torch-free: the quiz kernel
imports it.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_RECORD_CHARS", "RECORD_MIME", "RECORD_VERSION", "emit_record", "record_answer"]

#: MIME type of a record output (never rendered: it has no text/html part).
RECORD_MIME = "application/vnd.metalearn.grading-record+json"
RECORD_VERSION = 1
#: Largest record the grader reads (its JSON text, in characters).
MAX_RECORD_CHARS = 4_000_000
KINDS = ("quiz", "coding")


def emit_record(cell: str, kind: str, data: Any) -> None:
    """Send one record for test cell ``cell`` to the notebook as a display output.

    Outside IPython (plain Python) nothing happens: there is no grader to read it.
    """
    if type(cell) is not str or not cell:
        raise TypeError(f"cell must be the test cell's grade id, got {cell!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    payload = {"version": RECORD_VERSION, "cell": cell, "kind": kind, "data": data}
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is part of the course environment
        return
    if get_ipython() is None:
        return
    # A short plain-text part keeps the output readable in JupyterLab.
    display({RECORD_MIME: payload, "text/plain": "(recorded for grading)"}, raw=True)


def record_answer(cell: str, answer: object, letters: str) -> None:
    """Test-cell side of a quiz question: check the format, then record the answer.

    Raises the friendly format errors of
    :func:`metalearn_lib.grading.quiz.check_answer` first, so a malformed
    answer is explained and nothing is recorded (it scores 0).
    """
    from .quiz import check_answer

    chosen = check_answer(answer, letters)
    emit_record(cell, "quiz", sorted(chosen))


# ---------------------------------------------------------------------------
# Grader side
# ---------------------------------------------------------------------------


def is_record_output(output: Any) -> bool:
    """True for an output that carries (or claims to carry) a record."""
    return output.get("output_type") in (
        "display_data",
        "execute_result",
        "update_display_data",
    ) and (RECORD_MIME in (output.get("data") or {}))


def parse_record(output: Any) -> tuple[dict | None, str]:
    """Validate one record output; returns ``(record, "")`` or ``(None, reason)``."""
    raw = output["data"][RECORD_MIME]
    try:
        text = raw if isinstance(raw, str) else json.dumps(raw)
    except (TypeError, ValueError):
        return None, "the record is not JSON"
    if len(text) > MAX_RECORD_CHARS:
        return (
            None,
            f"the record is too large ({len(text):,} characters, at most {MAX_RECORD_CHARS:,})",
        )
    try:
        record = json.loads(text)  # plain dicts and lists, never notebook nodes
    except ValueError:
        return None, "the record is not valid JSON"
    if not isinstance(record, dict) or set(record) != {"version", "cell", "kind", "data"}:
        return None, "the record is malformed (expected the keys version, cell, kind, data)"
    if record["version"] != RECORD_VERSION or record["kind"] not in KINDS:
        return None, "the record has an unknown version or kind"
    if type(record["cell"]) is not str:
        return None, "the record's cell id is not a string"
    return record, ""
