"""End-to-end tests of the nbgrader assignments, in temporary copies of the course.

One module-scoped course copy is generated, validated, filled with
submissions (right, blank, partly right, hostile and broken ones), autograded
in one batch per assignment, exported to CSV, turned into feedback and
graded a second time; the tests below assert on those shared results.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from grading_helpers import (
    ASSIGNMENTS,
    ROOT,
    blank,
    cell_by_id,
    export,
    grade_id,
    make_course,
    nbgrader,
    quiz_keys,
    quiz_letters,
    read_nb,
    solved,
    submit,
)

from metalearn_lib.grading.quiz import score

pytestmark = pytest.mark.slow

STUDENTS = ("right", "blank", "hostile", "partial", "broken_json", "missing")
AUTOGRADED_POINTS = {"inner_loop": 5.0, "first_order": 4.0, "variants_quiz": 9.0}

# Strings that must never reach a student: solution and hidden-test markers,
# the grading call and its hashed keys, mark schemes, hidden seeds.
LEAKS = [
    "BEGIN SOLUTION",
    "END SOLUTION",
    "HIDDEN TESTS",
    "hashed_score(answer",
    "MARK SCHEME",
    "seed=913",
    "seed=577",
    "seed=331",
    "seed=4242",
    "seed=8080",
]
HASHED_KEY = re.compile(r"v1:[0-9a-f]{16}:[0-9a-f]{16}")


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course copy whose exercises/ was regenerated (the committed one kept aside)."""
    course = make_course(tmp_path_factory.mktemp("grading"))
    (course / "exercises").rename(course / "exercises_committed")
    result = nbgrader(course, "generate_assignment", "*", "--force")  # what `make release` runs
    assert result.returncode == 0, result.stderr[-3000:]
    return course


def _hostile_inner_loop(course: Path):
    nb = solved("inner_loop", course)
    # An infinite loop: the per-cell timeout interrupts the test that calls it.
    loop = "def sgd_step(params, grads, lr):\n    while True:\n        pass"
    cell_by_id(nb, "sgd_step").source = loop
    # A right function (not using sgd_step) in a cell that then raises: it still counts.
    cell_by_id(nb, "adapt_k").source = (
        "def adapt_k(model, params, x, y, *, steps, lr):\n"
        "    for _ in range(steps):\n"
        "        loss = task_loss(model, params, x, y)\n"
        "        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)\n"
        "        params = {n: p - lr * g for (n, p), g in zip(params.items(), grads)}\n"
        "    return params\n\n"
        "raise RuntimeError('this cell raises after defining adapt_k')"
    )
    # Objects that claim to equal anything, and an edited (locked) test cell.
    cell_by_id(nb, "maml_meta_gradient").source = (
        "class AlwaysEqual:\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n\n"
        "def maml_meta_gradient(model, params, batch, *, inner_steps, inner_lr):\n"
        "    return {name: AlwaysEqual() for name in params}"
    )
    cell_by_id(nb, "test_maml_meta_gradient").source = "print('all tests pass')"
    return nb


def _hostile_first_order(course: Path):
    nb = solved("first_order", course)
    # A deleted test cell is put back; the honest answer above it keeps its points.
    nb.cells = [c for c in nb.cells if grade_id(c) != "test_fomaml"]
    # A cell that shuts the kernel down; the honest answer after it keeps its points.
    index = nb.cells.index(cell_by_id(nb, "reptile"))
    nb.cells.insert(index, nbformat.v4.new_code_cell("exit()"))
    return nb


def _hostile_quiz(course: Path, keys, letters):
    nb = solved("variants_quiz", course)

    def answer(i: int, source: str) -> None:
        cell_by_id(nb, f"answer_{i}").source = source

    answer(1, f"answer_1 = {''.join(sorted(keys[1]))!r}")  # a string like "BDE"
    answer(2, f"answer_2 = {sorted(keys[2])!r}")  # a list
    answer(3, f"answer_3 = {set(x.lower() for x in keys[3])!r}")  # lowercase letters
    answer(
        4,
        "class Sneaky(set):\n"
        "    def __eq__(self, other):\n        return True\n"
        "    __hash__ = set.__hash__\n\n"
        "answer_4 = Sneaky({'A'})",
    )
    # Question 5: right, with its test cell deleted (put back when grading).
    nb.cells = [c for c in nb.cells if grade_id(c) != "test_answer_5"]
    # Question 6: all wrong, sys.exit, and a test cell edited to claim the point.
    wrong = set(letters[6]) - keys[6]
    answer(6, f"answer_6 = {wrong!r}\nimport sys\nsys.exit(0)")
    cell_by_id(nb, "test_answer_6").source = "1.0"
    # Question 7: right, after printing about 10 MB.
    answer(7, "print(('x' * 99 + '\\n') * 100_000)\n" + f"answer_7 = {set(keys[7])!r}")
    # Question 8: kills the kernel before answering; question 9 stays right.
    answer(8, "import os\nos._exit(0)")
    return nb


def _partial_quiz(course: Path, keys, letters):
    """Partly right answers, and the exact points the documented rule gives them."""
    nb = blank("variants_quiz", course)
    answers = {
        1: set(sorted(keys[1])[1:]) or set(keys[1]),  # one true letter missing
        2: set(keys[2]) | {next(x for x in letters[2] if x not in keys[2])},  # one extra
        3: set(letters[3]),  # everything ticked
        4: set(letters[4]) - keys[4],  # all wrong
        5: set(keys[5]),  # right
    }
    for i, value in answers.items():
        cell_by_id(nb, f"answer_{i}").source = f"answer_{i} = {sorted(value)!r}".replace(
            "[", "{"
        ).replace("]", "}")
    expected = sum(score(value, keys[i], letters[i]) for i, value in answers.items())
    return nb, expected


def _record_times(course: Path, start: float) -> None:
    """Write how long each notebook took (from the autograded files' times) for the report."""
    done = sorted((p.stat().st_mtime, p) for p in (course / "autograded").rglob("*.ipynb"))
    lines = [f"load average {os.getloadavg()[0]:.1f}; the first line includes nbgrader start-up"]
    previous = start
    for mtime, path in done:
        lines.append(f"{mtime - previous:6.1f} s  {path.relative_to(course / 'autograded')}")
        previous = mtime
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "grading_times.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def graded(course: Path):
    """Submit, autograde (one batch per assignment), export, feedback, regrade."""
    keys, letters = quiz_keys(course), quiz_letters(course)
    for assignment in ASSIGNMENTS:
        submit(course, "right", assignment, solved(assignment, course))
        submit(course, "blank", assignment, blank(assignment, course))
    submit(course, "hostile", "inner_loop", _hostile_inner_loop(course))
    submit(course, "hostile", "first_order", _hostile_first_order(course))
    submit(course, "hostile", "variants_quiz", _hostile_quiz(course, keys, letters))
    partial_nb, partial_expected = _partial_quiz(course, keys, letters)
    submit(course, "partial", "variants_quiz", partial_nb)
    text = json.dumps(nbformat.v4.new_notebook())
    submit(course, "broken_json", "inner_loop", raw=text[: len(text) // 2])
    folder = submit(course, "missing", "inner_loop")
    (folder / "notes.txt").write_text("I forgot the notebook.")

    # The class roster: every student in it gets a row in the export.
    roster = course / "roster.csv"
    roster.write_text("id\n" + "\n".join(STUDENTS) + "\n")
    result = nbgrader(course, "db", "student", "import", str(roster))
    assert result.returncode == 0, result.stderr[-3000:]

    start = time.time()
    autograde = nbgrader(course, "autograde", "*")  # one batch, what `make autograde` runs
    _record_times(course, start)
    scores = export(course)
    feedback = nbgrader(course, "generate_feedback", "*")
    regrade = nbgrader(course, "autograde", "variants_quiz", "--force")
    rescores = export(course)
    return {
        "autograde": autograde,
        "scores": scores,
        "feedback": feedback,
        "regrade": regrade,
        "rescores": rescores,
        "partial_expected": partial_expected,
    }


# ---------------------------------------------------------------------------
# Release
# ---------------------------------------------------------------------------


def _normalised(path: Path) -> dict:
    nb = json.loads(path.read_text())
    nb.get("metadata", {}).pop("language_info", None)
    for cell in nb["cells"]:
        cell.pop("execution_count", None)
        cell.get("metadata", {}).pop("execution", None)
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return nb


def test_exercises_are_exactly_what_generate_assignment_makes(course: Path):
    for assignment in ASSIGNMENTS:
        fresh = sorted(p.name for p in (course / "exercises" / assignment).iterdir())
        committed = sorted(p.name for p in (course / "exercises_committed" / assignment).iterdir())
        assert fresh == committed, f"{assignment}: files differ"
        for name in fresh:
            a = course / "exercises" / assignment / name
            b = course / "exercises_committed" / assignment / name
            if name.endswith(".ipynb"):
                assert _normalised(a) == _normalised(b), (
                    f"exercises/{assignment}/{name} is out of date: run `make release`"
                )
            else:
                assert a.read_bytes() == b.read_bytes()


def test_exercises_leak_no_solution_hidden_test_or_key():
    keys_source = read_nb(ROOT / "solutions" / "variants_quiz" / "variants_quiz.ipynb")
    salts = re.findall(r"v1:([0-9a-f]{16}):", json.dumps(keys_source.dict()))
    assert len(salts) >= 8, "the quiz should hold one hashed key per question"
    key_lines = [
        line.strip()
        for cell in keys_source.cells
        if (grade_id(cell) or "").startswith("answer_")
        for line in cell.source.splitlines()
        if line.startswith("answer_")
    ]
    assert len(key_lines) >= 8
    for path in (ROOT / "exercises").rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text()
        for leak in LEAKS:
            assert leak not in text, f"{path.relative_to(ROOT)} contains {leak!r}"
        assert not HASHED_KEY.search(text), f"{path.relative_to(ROOT)} contains a hashed key"
        assert not any(salt in text for salt in salts)
        for line in key_lines:
            assert line not in text, f"{path} contains a graded answer"
        for cell in json.loads(text)["cells"] if path.suffix == ".ipynb" else []:
            assert not cell.get("outputs"), f"{path} has outputs"


def test_validate_passes_on_sources_and_fails_every_test_on_the_release(course: Path):
    sources = [f"solutions/{a}/{a}.ipynb" for a in ASSIGNMENTS]
    result = nbgrader(course, "validate", *sources)
    assert result.stdout.count("Success! Your notebook passes all the tests.") == 3, (
        result.stdout[-3000:] + result.stderr[-3000:]
    )
    releases = [f"exercises/{a}/{a}.ipynb" for a in ASSIGNMENTS]
    result = nbgrader(course, "validate", "--invert", *releases)
    assert result.stdout.count("Success! The notebook does not pass any tests.") == 3, (
        result.stdout[-3000:] + result.stderr[-3000:]
    )


# ---------------------------------------------------------------------------
# Autograde and export
# ---------------------------------------------------------------------------


def test_every_student_has_a_row_for_every_assignment(graded):
    scores = graded["scores"]
    for assignment in ASSIGNMENTS:
        assert {s for (a, s) in scores if a == assignment} == set(STUDENTS)


def test_the_batch_completes_and_only_the_invalid_notebook_fails(graded, course: Path):
    log = graded["autograde"].stderr
    # Invalid JSON fails alone (nbgrader then exits non-zero); everyone else is graded.
    assert graded["autograde"].returncode != 0
    errors = re.findall(r"error processing assignment '(\w+)' for student '(\w+)'", log)
    assert errors == [("inner_loop", "broken_json")], log[-3000:]
    for student in ("right", "blank", "hostile"):
        for assignment in ASSIGNMENTS:
            assert (course / "autograded" / student / assignment / f"{assignment}.ipynb").exists()


def test_right_answers_get_full_autograded_marks(graded):
    for assignment, points in AUTOGRADED_POINTS.items():
        assert graded["scores"][(assignment, "right")] == pytest.approx(points)


def test_blank_release_scores_zero(graded):
    for assignment in ASSIGNMENTS:
        assert graded["scores"][(assignment, "blank")] == 0


def test_partly_right_quiz_gets_exactly_the_documented_partial_credit(graded):
    expected = graded["partial_expected"]
    assert 0 < expected < 5
    assert graded["scores"][("variants_quiz", "partial")] == pytest.approx(expected, abs=1e-6)


def test_hostile_submissions_earn_only_their_honest_points(graded):
    scores = graded["scores"]
    # inner_loop: infinite loop 0/1, right adapt_k in a raising cell 2/2, fake maml 0/2.
    assert scores[("inner_loop", "hostile")] == pytest.approx(2.0)
    # first_order: deleted test cell put back (2/2), exit(), then right reptile (2/2).
    assert scores[("first_order", "hostile")] == pytest.approx(4.0)
    # quiz: string, list, lowercase, __eq__ trick, edited test -> 0; right answers after a
    # deleted test cell, 10 MB of output and a killed kernel keep their point.
    assert scores[("variants_quiz", "hostile")] == pytest.approx(3.0)
    assert scores[("inner_loop", "broken_json")] == 0
    assert scores[("inner_loop", "missing")] == 0


def test_grading_twice_gives_identical_scores(graded):
    assert graded["regrade"].returncode == 0, graded["regrade"].stderr[-3000:]
    assert graded["rescores"] == graded["scores"]


# ---------------------------------------------------------------------------
# Feedback
# ---------------------------------------------------------------------------


def test_feedback_shows_no_hidden_test_mark_scheme_or_key(graded, course: Path):
    assert graded["feedback"].returncode == 0, graded["feedback"].stderr[-3000:]
    pages = list((course / "feedback").rglob("*.html"))
    students_with_pages = {p.relative_to(course / "feedback").parts[0] for p in pages}
    assert {"right", "blank", "hostile", "partial"} <= students_with_pages
    for page in pages:
        text = page.read_text()
        for leak in LEAKS:
            assert leak not in text, f"{page} shows {leak!r}"
        assert not HASHED_KEY.search(text), f"{page} shows a hashed key"
        assert "check_sgd_step(sgd_step, seed=913" not in text
    # The failing hidden test of the blank release shows its message, not its code.
    page = course / "feedback" / "blank" / "inner_loop" / "inner_loop.html"
    assert "NameError" in page.read_text() or "NotImplementedError" in page.read_text()


def test_autograded_copy_keeps_hidden_tests_for_the_instructor(graded, course: Path):
    nb = read_nb(course / "autograded" / "hostile" / "variants_quiz" / "variants_quiz.ipynb")
    restored = cell_by_id(nb, "test_answer_6")
    assert "hashed_score" in restored.source  # the edited test cell was replaced
    assert cell_by_id(nb, "test_answer_5")  # the deleted one was put back
    outputs = copy.deepcopy(cell_by_id(nb, "test_answer_9").outputs)
    assert [o["data"]["text/plain"] for o in outputs if o["output_type"] == "execute_result"] == [
        "1.0"
    ]
