"""The nbgrader exchange with a class of three, on one machine.

An instructor and three students each have their own HOME, Jupyter folders
and working folder; they share only a temporary exchange folder, as on a
JupyterHub with the exchange on shared storage (docs/classroom.md). The
instructor releases the quiz (``variants_quiz``) and one coding assignment
(``inner_loop``). Students fetch them and answer:

* **ada** gets everything right, but first submits the quiz blank and then
  submits it again: the later submission is the one graded;
* **ben** is partly right (partial credit on the quiz by the documented
  rule of :mod:`metalearn_lib.grading.quiz`, one of three functions right);
* **cy** hands in blank notebooks, and the quiz after its due date.

The instructor collects, autogrades, generates and releases feedback; the
students fetch it; the grades are exported to CSV. The tests check the exact
grades, that each student's feedback holds their own work and nothing of the
others' nor any solution, hidden test, mark scheme or quiz key, and that the
late quiz is recorded as late (and only that one).
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import nbformat
import pytest
from _exchange_support import (
    COURSE_ID,
    html_text,
    instructor_config,
    make_person,
    notebook_lines,
    quiz_key,
    read_nb,
    secret_lines,
    set_cell,
    solution_answers,
    student_config,
)

pytestmark = [
    pytest.mark.slow,
    # nbgrader's own gradebook code trips this SQLAlchemy warning during autograde.
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
]

REPO = Path(__file__).resolve().parents[1]
QUIZ, CODE = "variants_quiz", "inner_loop"
STUDENTS = ("ada", "ben", "cy")
ROSTER = "id,first_name,last_name,email\n" + "".join(
    f"{s},{s.title()},Student,{s}@example.org\n" for s in STUDENTS
)

# ben's quiz answers: partly right, one out of range, some left unanswered.
BEN_QUIZ = {
    1: {"B", "D"},
    2: {"C", "E"},
    3: {"A", "C"},
    4: {"C", "E"},
    5: {"Z"},  # not a letter of the question: refused, no points
    6: None,  # filled with the key below
}


def fraction(answer: set[str], key: frozenset[str], letters: str) -> float:
    """The quiz rule as metalearn_lib/grading/quiz.py documents it: max(0, (right - wrong) / n)."""
    if not answer or not answer <= set(letters):
        return 0.0
    right = sum((letter in answer) == (letter in key) for letter in letters)
    return max(0.0, (right - (len(letters) - right)) / len(letters))


def _with_marker(source: str, who: str) -> str:
    return f"# answered by {who}-{COURSE_ID}\n{source}"


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    """Run the whole cycle once; return what the tests look at."""
    base = tmp_path_factory.mktemp("exchange-cycle")
    exchange = base / "exchange"
    exchange.mkdir()
    exchange.chmod(0o1777)  # every account writes here; like /tmp (docs/classroom.md)
    course = base / "instructor" / "course"
    course.mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(
        REPO / "solutions", course / "solutions", ignore=shutil.ignore_patterns(".ipynb*")
    )
    teacher = make_person(base, "instructor", course, instructor_config(exchange))
    students = {s: make_person(base, s, None, student_config(exchange, s)) for s in STUDENTS}

    # --- instructor: roster, student versions, release ---------------------
    (course / "roster.csv").write_text(ROSTER)
    teacher.nbgrader("db", "student", "import", "roster.csv")
    for name in (QUIZ, CODE):
        teacher.nbgrader("generate_assignment", name, "--force")
        teacher.nbgrader("release_assignment", name)

    # --- students: fetch ------------------------------------------------------
    for who in students.values():
        who.nbgrader("fetch_assignment", QUIZ, CODE)

    def nb_path(who: str, name: str) -> Path:
        return students[who].work / COURSE_ID / name / f"{name}.ipynb"

    key = quiz_key(course / "solutions" / QUIZ / f"{QUIZ}.ipynb")
    code_answers = solution_answers(course / "solutions" / CODE / f"{CODE}.ipynb")
    quiz_answers = solution_answers(course / "solutions" / QUIZ / f"{QUIZ}.ipynb")
    released = {n: read_nb(nb_path("ada", n)) for n in (QUIZ, CODE)}

    def write(who: str, name: str, cells: dict[str, str]) -> None:
        nb = read_nb(nb_path(who, name))
        for gid, source in cells.items():
            set_cell(nb, gid, _with_marker(source, who))
        nbformat.write(nb, str(nb_path(who, name)))

    # ben, partly right
    ben_quiz = {}
    for q, answer in BEN_QUIZ.items():
        answer = set(key[q][0]) if answer is None else answer
        ben_quiz[q] = answer
        letters = ", ".join(repr(letter) for letter in sorted(answer))
        write("ben", QUIZ, {f"answer_{q}": f"answer_{q} = {{{letters}}}"})
    students["ben"].nbgrader("submit", QUIZ)
    # ada, first a blank quiz, then the right one
    students["ada"].nbgrader("submit", QUIZ)
    write("ada", QUIZ, quiz_answers)
    students["ada"].nbgrader("submit", QUIZ)
    # The quiz is due now: cy hands it in after this moment.
    due = dt.datetime.now(dt.UTC)
    students["cy"].nbgrader("submit", QUIZ)

    write("ada", CODE, code_answers)
    # ben: sgd_step right; adapt_k right in value but not differentiable (no
    # create_graph), so its test fails; maml_meta_gradient left blank.
    wrong_adapt = code_answers["adapt_k"].replace("create_graph=True", "create_graph=False")
    assert wrong_adapt != code_answers["adapt_k"]
    write("ben", CODE, {"sgd_step": code_answers["sgd_step"], "adapt_k": wrong_adapt})
    for who in STUDENTS:
        students[who].nbgrader("submit", CODE)
    inbound = sorted(p.name.split("+")[0] for p in (exchange / COURSE_ID / "inbound").iterdir())

    # --- instructor: due date, collect, grade, feedback -------------------------
    teacher.nbgrader("db", "assignment", "add", QUIZ, f"--duedate={due:%Y-%m-%d %H:%M:%S.%f} UTC")
    for name in (QUIZ, CODE):
        teacher.nbgrader("collect", name)
        teacher.nbgrader("autograde", name)
        teacher.nbgrader("generate_feedback", name)
        teacher.nbgrader("release_feedback", name)

    # --- students: feedback -----------------------------------------------------
    for who in students.values():
        who.nbgrader("fetch_feedback", QUIZ, CODE)

    teacher.nbgrader("export", "--to", "grades.csv")
    with open(course / "grades.csv", newline="") as f:
        rows = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(f)}

    secrets = set()
    for name in (QUIZ, CODE):
        secrets |= secret_lines(
            course / "solutions" / name / f"{name}.ipynb",
            course / "exercises" / name / f"{name}.ipynb",
        )
    return {
        "course": course,
        "students": students,
        "key": key,
        "ben_quiz": ben_quiz,
        "rows": rows,
        "inbound": inbound,
        "released": released,
        "secrets": secrets,
        "nb_path": nb_path,
    }


def test_students_fetch_the_student_version(cycle):
    for name, nb in cycle["released"].items():
        text = "\n".join(cell.source for cell in nb.cells)
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        assert "record_answer(" not in text, f"{name}: the grading call must stay hidden"
        assert "grader-key" not in text, f"{name}: the hashed key must stay hidden"
        assert not cycle["secrets"] & {" ".join(ln.split()) for ln in text.splitlines()}


def test_every_submission_reaches_the_exchange(cycle):
    # ada submitted the quiz twice: both copies stay in the inbound folder.
    assert cycle["inbound"] == ["ada", "ada", "ada", "ben", "ben", "cy", "cy"]


def test_the_later_submission_is_the_one_graded(cycle):
    course = cycle["course"]
    collected = read_nb(course / "submitted" / "ada" / QUIZ / f"{QUIZ}.ipynb")
    text = "\n".join(cell.source for cell in collected.cells)
    assert "answered by ada" in text
    assert float(cycle["rows"][(QUIZ, "ada")]["raw_score"]) == pytest.approx(9.0)


def test_exact_grades_in_the_csv(cycle):
    rows, key = cycle["rows"], cycle["key"]
    ben_expected = sum(fraction(a, *key[q]) for q, a in cycle["ben_quiz"].items())
    # By the rule: q1 1/5, q2 3/5, q3 3/7, q4 0 (floored), q5 refused, q6 1, q7-q9 blank.
    assert ben_expected == pytest.approx(0.2 + 0.6 + 3 / 7 + 0 + 0 + 1)
    expected = {
        (QUIZ, "ada"): 9.0,
        (QUIZ, "ben"): ben_expected,
        (QUIZ, "cy"): 0.0,
        (CODE, "ada"): 5.0,
        (CODE, "ben"): 1.0,
        (CODE, "cy"): 0.0,
    }
    assert set(rows) == set(expected)
    for (name, student), score in expected.items():
        row = rows[(name, student)]
        assert float(row["raw_score"]) == pytest.approx(score, abs=1e-6), (name, student)
        # No late penalty is configured, so the score is the raw score.
        assert float(row["score"]) == pytest.approx(score, abs=1e-6), (name, student)
        assert float(row["late_submission_penalty"]) == 0.0
    # The quiz has 9 auto-graded points and 4 graded by hand; inner_loop 5.
    assert {float(rows[(QUIZ, s)]["max_score"]) for s in STUDENTS} == {13.0}
    assert {float(rows[(CODE, s)]["max_score"]) for s in STUDENTS} == {5.0}
    assert rows[(QUIZ, "ada")]["first_name"] == "Ada"


def test_the_late_quiz_is_recorded_as_late(cycle):
    from nbgrader.api import Gradebook

    db = f"sqlite:///{cycle['course'] / 'gradebook.db'}"
    with Gradebook(db, course_id=COURSE_ID) as gb:
        late = {
            (name, s): gb.find_submission(name, s).total_seconds_late
            for name in (QUIZ, CODE)
            for s in STUDENTS
        }
    assert late[(QUIZ, "cy")] > 0
    assert all(seconds == 0 for k, seconds in late.items() if k != (QUIZ, "cy")), late
    row = cycle["rows"][(QUIZ, "cy")]
    assert row["timestamp"] > row["duedate"]  # same format, so text order is time order
    assert cycle["rows"][(QUIZ, "ada")]["timestamp"] <= row["duedate"]


def _feedback(cycle, who: str, name: str) -> Path:
    folder = cycle["nb_path"](who, name).parent / "feedback"
    pages = sorted(folder.glob(f"*/{name}.html"))
    assert len(pages) == 1, f"{who} should fetch exactly one feedback page for {name}: {pages}"
    return pages[0]


@pytest.mark.parametrize("who", STUDENTS)
def test_feedback_holds_only_the_students_own_work(cycle, who):
    for name in (QUIZ, CODE):
        text = html_text(_feedback(cycle, who, name))
        mine = f"answered by {who}-{COURSE_ID}"
        if who == "cy":
            assert "answered by" not in text
        else:
            assert mine in text, f"{who}'s own answers are missing from their {name} feedback"
        for other in STUDENTS:
            if other != who:
                assert f"answered by {other}-" not in text
        own_lines = notebook_lines(cycle["nb_path"](who, name))
        leaked = {line for line in cycle["secrets"] - own_lines if line in text}
        assert not leaked, f"{who}'s {name} feedback shows instructor-only lines: {leaked}"
        assert "HIDDEN TESTS" not in text and "MARK SCHEME" not in text
        assert "grader-key" not in text, "the hashed key leaked"
        assert "grading-record" not in text, "a grading record leaked"


def test_feedback_shows_the_students_score(cycle):
    # The feedback page states the score that the CSV has.
    for who in STUDENTS:
        text = html_text(_feedback(cycle, who, CODE))
        score = float(cycle["rows"][(CODE, who)]["raw_score"])
        assert f"Score: {score:g} / 5" in text or f"Score: {score} / 5" in text, text[:400]
