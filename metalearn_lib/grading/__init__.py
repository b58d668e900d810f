"""Grading: the question engine, coding checks, records and the nbgrader verdicts.

* :mod:`~metalearn_lib.grading.quiz` - select-all-that-apply questions
  (rendering, format checks, the scoring rule, hashed keys); torch-free, used
  by the chapters' practice questions and the graded quiz;
* :mod:`~metalearn_lib.grading.records` - what a graded test cell hands to the
  grader (torch-free);
* :mod:`~metalearn_lib.grading.coding` - the coding assignments' friendly
  checks, their records and the reference outputs (imports torch);
* :mod:`~metalearn_lib.grading.verdicts` - the nbgrader preprocessors that
  decide every verdict in the grader's process;
* :mod:`~metalearn_lib.grading.sandbox` - the bubblewrap sandbox in which
  autograde runs each submission's kernel.

``import metalearn_lib.grading`` does not import torch: the coding names below
are loaded on first use.
"""

from __future__ import annotations

import importlib

from .quiz import LETTERS, Question, check_answer, hash_key, hashed_score, score
from .records import record_answer

_CODING = (
    "check_adapt",
    "check_meta_gradient",
    "check_sgd_step",
    "params_match",
    "record_checks",
)

__all__ = [
    "LETTERS",
    "Question",
    "check_answer",
    "hash_key",
    "hashed_score",
    "record_answer",
    "score",
    *_CODING,
]


def __getattr__(name: str):
    if name in _CODING:
        return getattr(importlib.import_module(".coding", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
