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

STUDENTS = ("right", "blank", "hostile", "partial", "cheater", "broken_json", "missing")
AUTOGRADED_POINTS = {"inner_loop": 5.0, "first_order": 4.0, "variants_quiz": 9.0, "variants": 5.0}
# The assignments with hostile and cheating submissions; "variants" gets only right and blank
# here (tests/test_variants_assignment.py grades a wrong ANIL).
ATTACKED = ("inner_loop", "first_order", "variants_quiz")

# Strings that must never reach a student: solution and hidden-test markers,
# the grading call and its hashed keys, mark schemes, hidden seeds.
LEAKS = [
    "BEGIN SOLUTION",
    "END SOLUTION",
    "HIDDEN TESTS",
    "record_answer(",
    "record_checks(",
    "grader-key",
    "MARK SCHEME",
    '"seed": 913',
    '"seed": 577',
    '"seed": 331',
    '"seed": 4242',
    '"seed": 8080',
    '"seed": 2718',
]
# What only the grader may see: records and their MIME type.
RECORD_LEAKS = ["application/vnd.metalearn.grading-record", "recorded for grading"]
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


# Tricks of a student who attacks the grader from inside the kernel. Each cell's honest
# part (the answer it really gives) is what it must earn; the tricks must earn nothing.
ALWAYS_PASS = (
    "def _always(*args, **kwargs):\n"
    "    return True\n\n"
    "check_answer = hashed_score = score = _always\n"
    "check_sgd_step = check_adapt = check_meta_gradient = params_match = _always\n"
)


def _cheater_quiz(course: Path, keys, letters):
    """Quiz: rebinding, module patching, forged, double, foreign, huge and stray records."""
    nb = blank("variants_quiz", course)
    wrong = {q: set(letters[q]) - keys[q] for q in keys}
    partial = set(sorted(keys[2])) | {next(x for x in letters[2] if x not in keys[2])}

    def answer(q: int, source: str) -> None:
        cell_by_id(nb, f"answer_{q}").source = source

    # 1: every check and score function rebound by name; the answer itself is all wrong.
    answer(1, ALWAYS_PASS + f"answer_1 = {wrong[1]!r}")
    # 2: the grading modules patched and replaced in sys.modules; a partly right answer.
    answer(
        2,
        "import sys, types\n"
        "import metalearn_lib.grading.quiz as q\n"
        "q.hashed_score = q.score = lambda *a, **k: 1.0\n"
        "q.check_answer = lambda answer, letters: frozenset(answer)\n"
        "fake = types.ModuleType('metalearn_lib.grading.verdicts')\n"
        "fake.DecideVerdicts = None\n"
        "sys.modules['metalearn_lib.grading.verdicts'] = fake\n"
        "sys.modules['metalearn_lib.grading.quiz'] = q\n"
        f"answer_2 = {partial!r}",
    )
    # 3: a forged record with wrong data for a right answer.
    answer(
        3,
        "from metalearn_lib.grading.records import emit_record\n"
        "def record_answer(cell, answer, letters):\n"
        "    emit_record(cell, 'quiz', ['A'])\n"
        f"answer_3 = {set(keys[3])!r}",
    )
    # 4: two records in one cell.
    answer(
        4,
        "def record_answer(cell, answer, letters):\n"
        "    emit_record(cell, 'quiz', sorted(answer))\n"
        "    emit_record(cell, 'quiz', sorted(answer))\n"
        f"answer_4 = {set(keys[4])!r}",
    )
    # 5: a record for another cell's id.
    answer(
        5,
        "def record_answer(cell, answer, letters):\n"
        "    emit_record('test_answer_1', 'quiz', sorted(answer))\n"
        f"answer_5 = {set(keys[5])!r}",
    )
    # 6: a 50 MB record.
    answer(
        6,
        "def record_answer(cell, answer, letters):\n"
        "    emit_record(cell, 'quiz', sorted(answer) + ['x' * 50_000_000])\n"
        f"answer_6 = {set(keys[6])!r}",
    )
    # 7: honest again (the real recorder), and it prints a record for question 8 from
    # this answer cell; question 8 itself is left unanswered.
    answer(
        7,
        "from metalearn_lib.grading import record_answer\n"
        f"emit_record('test_answer_8', 'quiz', {sorted(keys[8])!r})\n"
        f"answer_7 = {set(keys[7])!r}",
    )
    # 9: tracebacks hidden, and a malformed answer (a number): the format check fails
    # without an error output, and nothing is recorded.
    answer(9, "get_ipython().showtraceback = lambda *args, **kwargs: None\nanswer_9 = 12345")
    expected = score(partial, keys[2], letters[2]) + score({"A"}, keys[3], letters[3]) + 1.0
    return nb, expected


def _cheater_inner_loop(course: Path):
    nb = solved("inner_loop", course)
    # sgd_step: right, but noisy on stderr (and warnings): it keeps its point.
    cell_by_id(nb, "sgd_step").source = (
        "import sys, warnings\n\n"
        "def sgd_step(params, grads, lr):\n"
        "    print('debugging sgd_step', file=sys.stderr)\n"
        "    warnings.warn('noisy', stacklevel=1)\n"
        "    return {name: p - lr * grads[name] for name, p in params.items()}"
    )
    # adapt_k: first order (wrong), with torch.allclose/torch.equal and the checks patched.
    cell_by_id(nb, "adapt_k").source = (
        ALWAYS_PASS + "torch.allclose = torch.equal = _always\n"
        "import metalearn_lib.grading.coding as coding\n"
        "coding.params_match = coding.outputs_match = _always\n\n"
        "def adapt_k(model, params, x, y, *, steps, lr):\n"
        "    for _ in range(steps):\n"
        "        loss = task_loss(model, params, x, y)\n"
        "        grads = torch.autograd.grad(loss, list(params.values()))\n"
        "        params = sgd_step(params, dict(zip(params, grads)), lr)\n"
        "    return params"
    )
    # maml_meta_gradient: the library's meta_gradient inside the loop exercise (policy: 0).
    cell_by_id(nb, "maml_meta_gradient").source = (
        "from metalearn_lib import meta_gradient\n\n"
        "def maml_meta_gradient(model, params, batch, *, inner_steps, inner_lr):\n"
        "    return meta_gradient(\n"
        "        model, params, batch, algorithm='maml', inner_steps=inner_steps, "
        "inner_lr=inner_lr\n"
        "    )"
    )
    return nb


def _cheater_first_order(course: Path):
    nb = solved("first_order", course)
    # fomaml: a wrong function and a forged record claiming the right cases.
    cell_by_id(nb, "fomaml").source = (
        ALWAYS_PASS + "from metalearn_lib.grading.records import emit_record\n\n"
        "def record_checks(cell, fn, check, cases):\n"
        "    emit_record(cell, 'coding', [{'case': 'any', 'outputs': {'result': True}}])\n\n"
        "def fomaml_meta_gradient(model, params, batch, *, inner_steps, inner_lr):\n"
        "    return {n: torch.zeros_like(p) for n, p in params.items()}"
    )
    # reptile: right, after putting the real recorder back and replacing the grading
    # package in sys.modules.
    source = cell_by_id(nb, "reptile").source
    cell_by_id(nb, "reptile").source = (
        "import sys, types\n"
        "from metalearn_lib.grading import record_checks\n"
        "sys.modules['metalearn_lib.grading'] = types.ModuleType('metalearn_lib.grading')\n"
        + source
    )
    return nb


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
    cheater_quiz, cheater_expected = _cheater_quiz(course, keys, letters)
    submit(course, "cheater", "variants_quiz", cheater_quiz)
    submit(course, "cheater", "inner_loop", _cheater_inner_loop(course))
    submit(course, "cheater", "first_order", _cheater_first_order(course))
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
        "cheater_expected": cheater_expected,
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
    assert result.stdout.count("Success! Your notebook passes all the tests.") == len(sources), (
        result.stdout[-3000:] + result.stderr[-3000:]
    )
    releases = [f"exercises/{a}/{a}.ipynb" for a in ASSIGNMENTS]
    result = nbgrader(course, "validate", "--invert", *releases)
    assert result.stdout.count("Success! The notebook does not pass any tests.") == len(releases), (
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
        for assignment in ASSIGNMENTS if student != "hostile" else ATTACKED:
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


def test_attacks_on_the_grader_from_the_kernel_earn_only_the_honest_points(graded):
    scores = graded["scores"]
    # Quiz: rebinding (0, all wrong anyway), patched modules (the partial answer's points),
    # forged data (what ['A'] earns), two records, a foreign id, 50 MB, a record printed
    # from an answer cell, hidden tracebacks -> 0; question 7 honest -> 1.
    expected = graded["cheater_expected"]
    assert scores[("variants_quiz", "cheater")] == pytest.approx(expected, abs=1e-6)
    # inner_loop: noisy but right sgd_step 1/1; wrong adapt_k with allclose/equal and the
    # checks patched 0/2; the library's meta_gradient in the loop exercise 0/2 (policy).
    assert scores[("inner_loop", "cheater")] == pytest.approx(1.0)
    # first_order: forged record for a wrong function 0/2; right reptile 2/2.
    assert scores[("first_order", "cheater")] == pytest.approx(2.0)


def _test_outputs(course: Path, student: str, assignment: str) -> dict[str, str]:
    nb = read_nb(course / "autograded" / student / assignment / f"{assignment}.ipynb")
    return {
        grade_id(c): json.dumps(c.get("outputs", []))
        for c in nb.cells
        if c.cell_type == "code" and grade_id(c)
    }


def test_each_rejected_record_says_why(graded, course: Path):
    quiz = _test_outputs(course, "cheater", "variants_quiz")
    assert "2 records, expected exactly one" in quiz["test_answer_4"]
    assert "the record is for cell 'test_answer_1'" in quiz["test_answer_5"]
    assert "the record is too large" in quiz["test_answer_6"]
    assert "no record" in quiz["test_answer_8"]
    assert "no record" in quiz["test_answer_9"]
    code = _test_outputs(course, "cheater", "inner_loop")
    assert "uses meta_gradient from the library" in code["test_maml_meta_gradient"]
    assert "wrong on" in code["test_adapt_k"]
    first = _test_outputs(course, "cheater", "first_order")
    assert "the record does not hold the 3 cases" in first["test_fomaml"]
    # Records never stay in the graded notebook, in any cell.
    for student in ("right", "cheater", "hostile"):
        for assignment in ASSIGNMENTS if student == "right" else ATTACKED:
            text = json.dumps(_test_outputs(course, student, assignment))
            assert not any(leak in text for leak in RECORD_LEAKS), (student, assignment)


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
    assert {"right", "blank", "hostile", "partial", "cheater"} <= students_with_pages
    for page in pages:
        text = page.read_text()
        for leak in LEAKS:
            assert leak not in text, f"{page} shows {leak!r}"
        assert not HASHED_KEY.search(text), f"{page} shows a hashed key"
        assert not any(leak in text for leak in RECORD_LEAKS), f"{page} shows a record"
        assert "check_sgd_step(sgd_step, seed=913" not in text
    # The failing hidden test of the blank release shows its message, not its code.
    page = course / "feedback" / "blank" / "inner_loop" / "inner_loop.html"
    assert "NameError" in page.read_text() or "NotImplementedError" in page.read_text()


def test_autograded_copy_keeps_hidden_tests_for_the_instructor(graded, course: Path):
    nb = read_nb(course / "autograded" / "hostile" / "variants_quiz" / "variants_quiz.ipynb")
    restored = cell_by_id(nb, "test_answer_6")
    assert "record_answer" in restored.source  # the edited test cell was replaced
    assert cell_by_id(nb, "test_answer_5")  # the deleted one was put back
    outputs = copy.deepcopy(cell_by_id(nb, "test_answer_9").outputs)
    assert [o["data"]["text/plain"] for o in outputs if o["output_type"] == "execute_result"] == [
        "1.0"
    ]
