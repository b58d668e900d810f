"""The one self-check system: exercises with hints (every chapter) and practice questions.

Each test starts from a fresh progress record (``reset_progress``), so no test
depends on the order in which tests run.
"""

import json
from pathlib import Path

import pytest
import torch

from metalearn_lib import SinusoidTasks, adapt, task_loss
from metalearn_lib.grading.quiz import Question
from metalearn_lib.teaching import exercises
from metalearn_lib.teaching.gradients import cosine_similarity
from metalearn_lib.teaching.practice import limitations_practice
from metalearn_lib.teaching.selfcheck import (
    Exercise,
    SelfCheck,
    choice_exercise,
    practice_feedback,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_progress():
    exercises.reset_progress()
    yield
    exercises.reset_progress()


# ---------------------------------------------------------------------------
# The engine.
# ---------------------------------------------------------------------------


def _toy() -> SelfCheck:
    double = Exercise(
        "Double 2.", lambda a: (a == 4, "4." if a == 4 else "No."), ["Add 2 and 2."], "4"
    )
    return SelfCheck({"t.1": double})


def test_progress_is_per_instance_and_resets(capsys):
    one, two = _toy(), _toy()
    one.hint("t.1")
    one.check("t.1", 4)
    assert one.solved("t.1") and one.hints_shown["t.1"] == 1
    assert not two.solved("t.1") and two.hints_shown["t.1"] == 0
    one.reset()
    assert not one.solved("t.1") and one.hints_shown["t.1"] == 0
    one.check("t.1", 4)
    one.check("t.1", 5)  # a later wrong answer: no longer solved
    assert not one.solved("t.1")
    assert "Correct" in capsys.readouterr().out


def test_choice_exercises_are_questions_of_the_grading_engine():
    question = Question(
        "Which is even?",
        ["three", "four"],
        key={"B"},
        explanations={"A": "Odd.", "B": "Even."},
    )
    exercise = choice_exercise(question, ["Divide by two."], "'b'")
    assert exercise.prompt == "Which is even? (a) three; (b) four."
    assert exercise.checker("b") == (True, "Even.")
    assert exercise.checker(" (A) ") == (False, "Odd.")
    assert exercise.checker("c") == (False, "Answer with one of the letters 'a' or 'b'.")
    with pytest.raises(ValueError, match="one true statement"):
        choice_exercise(Question("Which?", ["x", "y"], key={"A", "B"}), [], "")
    with pytest.raises(TypeError, match="Question"):
        choice_exercise("Which?", [], "")


def test_engine_rejects_bad_input():
    with pytest.raises(TypeError, match="exercises"):
        SelfCheck({})
    with pytest.raises(TypeError, match="Exercise"):
        SelfCheck({"x": "not an exercise"})
    with pytest.raises(ValueError, match="unknown exercise"):
        _toy().solved("t.2")


# ---------------------------------------------------------------------------
# The chapters' exercises.
# ---------------------------------------------------------------------------


def test_check_gives_hints_before_solution(capsys):
    exercises.check("2.2", None)
    assert not exercises.solved("2.2")
    out = capsys.readouterr().out
    assert "Not answered yet" in out and "Hint 1/2" in out and "-3.12" not in out
    exercises.check("2.2", -5.2)
    assert not exercises.solved("2.2")
    out = capsys.readouterr().out
    assert "FOMAML" in out and "Hint 2/2" in out
    exercises.hint("2.2")
    assert "No more hints" in capsys.readouterr().out
    exercises.check("2.2", -3.12)
    assert exercises.solved("2.2")
    assert "Correct" in capsys.readouterr().out
    exercises.solution("2.2")
    assert "-3.12" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown exercise"):
        exercises.check("9.9", 1)


def test_every_exercise_accepts_its_solution_and_rejects_a_wrong_answer(capsys):
    model, theta, batch = exercises.exercise_setup()
    loss = task_loss(model, theta, batch.support_x[0], batch.support_y[0])
    grads = torch.autograd.grad(loss, list(theta.values()))
    phi = {n: theta[n] - 0.1 * g for n, g in zip(theta, grads)}
    phis = [
        adapt(model, theta, batch.support_x[i], batch.support_y[i], steps=5, lr=0.02)
        for i in range(3)
    ]
    reptile = {n: theta[n] - sum(p[n] for p in phis) / 3 for n in theta}
    gen = torch.Generator().manual_seed(0)
    fns = SinusoidTasks().sample_functions(100_000, generator=gen)
    average = fns(torch.zeros(1, 1, dtype=torch.float64)).mean()
    right = {
        "1.1": (4, 20, 1),
        "1.2": average,
        "1.3": "a",
        "2.1": phi,
        "2.2": -3.12,
        "2.3": 5,
        "3.1": reptile,
        "3.2": lambda a, b: cosine_similarity(a, b),
        "3.3": "b",
    }
    wrong = {
        "1.1": (4, 5, 1),
        "1.2": 1.62,
        "1.3": "c",
        "2.1": {n: theta[n] + 0.1 * g for n, g in zip(theta, grads)},
        "2.2": -6.0,
        "2.3": 1,
        "3.1": {n: -v for n, v in reptile.items()},
        "3.2": lambda a, b: 0.5,
        "3.3": "a",
    }
    assert set(right) == set(wrong) and set(right) <= set(exercises.EXERCISES)
    for name in right:  # chapters 1-3 (other chapters may register more)
        exercises.check(name, wrong[name])
        assert not exercises.solved(name), name
        exercises.check(name, right[name])
        assert exercises.solved(name), name
    assert capsys.readouterr().err == ""


def test_chapter5_exercises_are_registered(capsys):
    exercises.check("5.1", (2, 20, 1, 8, 8))
    exercises.check("5.2", "a")
    acc = exercises.chapter5_exercise_accuracies()
    exercises.check("5.3", (acc.mean().item(), 1.96 * acc.std().item() / len(acc) ** 0.5))
    assert exercises.solved("5.1") and not exercises.solved("5.2") and exercises.solved("5.3")
    exercises.check("5.3", (acc.mean().item(), 1.96 * acc.std().item()))
    assert "sqrt(500)" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# The practice questions of chapter 4 (the grading engine's Question).
# ---------------------------------------------------------------------------


QUESTIONS = limitations_practice()


def test_practice_questions_are_complete():
    assert len(QUESTIONS) == 4
    for q in QUESTIONS:
        assert isinstance(q, Question) and q.key and q.explanations
        assert set(q.explanations) == set(q.letters)
        for letter, text in q.explanations.items():
            verdict = "True" if letter in q.key else "False"
            assert text.startswith(verdict), (q.question_id, letter)


def _graded_statements() -> list[str]:
    found = []
    for path in (ROOT / "solutions").rglob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                found += [
                    line.split("**", 2)[-1].strip() for line in text.splitlines() if "- **" in line
                ]
    return found


def _words(text: str) -> set[str]:
    return {w.strip(".,:;()").lower() for w in text.split() if len(w) > 3}


def test_practice_statements_differ_from_the_graded_quiz():
    graded = _graded_statements()
    assert graded, "no graded statements found in solutions/"
    for q in QUESTIONS:
        for statement in q.statements:
            mine = _words(statement)
            for other in graded:
                theirs = _words(other)
                similarity = len(mine & theirs) / len(mine | theirs)  # Jaccard index of words
                assert similarity < 0.5, f"{q.question_id}: {statement!r} is close to {other!r}"


def test_practice_feedback_right_partly_right_and_wrong():
    q = QUESTIONS[0]
    right = practice_feedback(q, set(q.key))
    assert right.ok and "100%" in right.text
    assert all(q.explanations[x] in right.text for x in q.letters)
    assert "WRONG" not in right.text
    one_missing = set(sorted(q.key)[1:])
    partly = practice_feedback(q, one_missing)
    n = len(q.letters)
    assert partly.ok and f"{(n - 2) / n:.0%}" in partly.text and partly.text.count("WRONG") == 1
    everything_wrong = set(q.letters) - q.key
    assert "0%" in practice_feedback(q, everything_wrong).text
    assert q.score(one_missing) == pytest.approx((n - 2) / n)


@pytest.mark.parametrize(
    "answer, words",
    [
        ("AC", "not the string"),
        (["A", "C"], "curly braces"),
        (3, "set of letters"),
        ({"a", "c"}, "capital"),
        ({"A", "Z"}, "not a statement"),
        ({"AC"}, "own quotes"),
        (set(), "empty"),
    ],
)
def test_practice_feedback_explains_format_problems(answer, words):
    feedback = practice_feedback(QUESTIONS[1], answer)
    assert not feedback.ok
    assert feedback.text.startswith("**Answer format:**") and words in feedback.text


def test_practice_feedback_when_not_answered_and_bad_question():
    feedback = practice_feedback(QUESTIONS[2], None)
    assert not feedback.ok and "Not answered yet" in feedback._repr_markdown_()
    with pytest.raises(TypeError, match="question"):
        practice_feedback("Q1", {"A"})
    graded_style = Question("Which?", ["one", "two"])
    with pytest.raises(ValueError, match="no key"):
        practice_feedback(graded_style, {"A"})


def test_practice_2_d_the_average_sinusoid_is_not_flat():
    statement_d = QUESTIONS[1].statements[3]
    assert "flat line" in statement_d and "D" not in QUESTIONS[1].key
    assert "-1.62 cos x" in QUESTIONS[1].explanations["D"]
    average = (
        SinusoidTasks()
        .sample_functions(20_000, generator=torch.Generator().manual_seed(0))(
            torch.zeros(1, 1, dtype=torch.float64)
        )
        .mean()
    )
    assert abs(average.item() + 1.62) < 0.05  # chapter 1's average task at x = 0
