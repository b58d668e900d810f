"""The variants assignment (solutions/variants): released in sync, graded out of kernel.

One nbgrader cycle in a temporary course copy: the solution scores every
point, a blank notebook none, ANIL written as plain MAML (every layer adapted)
loses the coding points, and a quiz answer with one wrong statement gets
partial credit. The verdicts come from the grader's process
(``DecideVerdicts``), not from the student's kernel.
"""

from __future__ import annotations

import pytest
from grading_helpers import (
    blank,
    cell_by_id,
    export,
    make_course,
    nbgrader,
    read_nb,
    solved,
    submit,
)

pytestmark = pytest.mark.slow  # one nbgrader generate + autograde of three submissions

ASSIGNMENT = "variants"


def _without_ids(nb):
    return [(c.cell_type, c.source, c.get("metadata", {})) for c in nb.cells]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("variants-grading"))
    committed = read_nb(course / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    result = nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    assert result.returncode == 0, result.stderr[-3000:]
    regenerated = read_nb(course / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    submit(course, "solver", ASSIGNMENT, solved(ASSIGNMENT, course))
    submit(course, "blank", ASSIGNMENT, blank(ASSIGNMENT, course))
    wrong = solved(ASSIGNMENT, course)
    # Plain MAML: every parameter adapted in the inner loop, not only the head.
    cell_by_id(wrong, "anil").source = cell_by_id(wrong, "anil").source.replace(
        "head = names[-2:]", "head = names"
    )
    cell_by_id(wrong, "answer_1").source = 'answer_1 = {"A", "C", "D", "E"}'  # E is false
    submit(course, "wrong", ASSIGNMENT, wrong)
    # Right numbers, but from the library's meta_gradient, which the exercise forbids.
    library = solved(ASSIGNMENT, course)
    cell_by_id(library, "anil").source = (
        "from metalearn_lib import meta_gradient as mg\n"
        "def anil_meta_gradient(model, params, batch, *, inner_steps, inner_lr):\n"
        "    return mg(model, params, batch, algorithm='anil', inner_steps=inner_steps,\n"
        "              inner_lr=inner_lr)\n"
    )
    submit(course, "library", ASSIGNMENT, library)
    result = nbgrader(course, "autograde", ASSIGNMENT, "--force")
    assert result.returncode == 0, result.stderr[-3000:]
    return committed, regenerated, export(course)


def test_release_is_in_sync_with_the_solution(graded):
    committed, regenerated, _ = graded
    assert _without_ids(committed) == _without_ids(regenerated)
    text = "\n".join(c.source for c in committed.cells)
    assert "BEGIN SOLUTION" not in text and "grader-key" not in text
    assert "record_checks(" not in text and "record_answer(" not in text  # hidden tests


def test_scores_come_from_the_grader(graded):
    _, _, scores = graded
    assert scores[ASSIGNMENT, "solver"] == 5.0  # 2 quiz questions + ANIL (3)
    assert scores[ASSIGNMENT, "blank"] == 0.0
    # ANIL as MAML fails its hidden cases (0 of 3); question 1: 3 right, 1 wrong of 5 -> 0.6.
    assert scores[ASSIGNMENT, "wrong"] == pytest.approx(1.0 + 0.6)
    # The library's meta_gradient gives right numbers but is forbidden: the quiz's 2 only.
    assert scores[ASSIGNMENT, "library"] == 2.0
