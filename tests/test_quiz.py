"""Tests of metalearn_lib.grading.quiz: answer checks, the partial-credit rule, hashed keys,
and the graded quiz's introduction against what its keys make each strategy earn."""

import ast
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import metalearn_lib
from metalearn_lib.grading.quiz import (
    LETTERS,
    Question,
    check_answer,
    hash_key,
    hashed_score,
    score,
)

# ---------------------------------------------------------------------------
# check_answer
# ---------------------------------------------------------------------------


def test_check_answer_normalises_a_set_of_capital_letters():
    assert check_answer({"A", "C"}, "ABCDE") == frozenset({"A", "C"})
    assert check_answer(frozenset({"E"}), "ABCDE") == frozenset({"E"})
    assert isinstance(check_answer({"B"}, "ABC"), frozenset)


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        ("AC", TypeError, "not the string 'AC'"),
        (["A", "C"], TypeError, "curly braces"),
        (("A",), TypeError, "got a tuple"),
        ({"A": 1}, TypeError, "got a dict"),
        (None, TypeError, "got a NoneType"),
        ({1, 2}, TypeError, "found int"),
        (set(), ValueError, "empty"),
        ({"a", "C"}, ValueError, "capital letters: write 'A'"),
        ({"AC"}, ValueError, "each letter in its own quotes"),
        ({"F"}, ValueError, "'F', which is not a statement"),
        ({"A", "Z"}, ValueError, "not a statement"),
    ],
)
def test_check_answer_explains_each_format_mistake(answer, error, words):
    with pytest.raises(error, match="answer") as info:
        check_answer(answer, "ABCDE")
    assert words in str(info.value)


def test_check_answer_refuses_set_subclasses_and_str_subclasses():
    class Sneaky(set):
        def __eq__(self, other):
            return True

        __hash__ = set.__hash__

    class Letter(str):
        pass

    with pytest.raises(TypeError, match="Sneaky"):
        check_answer(Sneaky({"A"}), "ABCDE")
    with pytest.raises(TypeError, match="Letter"):
        check_answer({Letter("A")}, "ABCDE")


@pytest.mark.parametrize("letters", ["", "ABD", "BCD", "abc", 5, ["A", 1]])
def test_bad_letters_are_refused(letters):
    with pytest.raises((TypeError, ValueError), match="letters"):
        check_answer({"A"}, letters)


# ---------------------------------------------------------------------------
# score: max(0, (right - wrong) / n)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"A", "D"}, 1.0),  # all 5 right
        ({"A"}, 0.6),  # D missed: 4 right, 1 wrong
        ({"A", "D", "E"}, 0.6),  # E extra
        ({"A", "C"}, 0.2),  # 3 right, 2 wrong
        ({"A", "B", "C", "D", "E"}, 0.0),  # 2 right, 3 wrong -> floored at 0
        ({"B", "C", "E"}, 0.0),  # all wrong
    ],
)
def test_score_follows_the_documented_rule(answer, expected):
    assert score(answer, {"A", "D"}, "ABCDE") == pytest.approx(expected)


def test_score_matches_the_rule_for_every_possible_answer():
    letters, key = "ABCDEF", {"B", "C", "F"}
    for size in range(1, 7):
        for chosen in itertools.combinations(letters, size):
            right = sum((x in chosen) == (x in key) for x in letters)
            rule = max(0.0, (right - (6 - right)) / 6)
            assert score(set(chosen), key, letters) == pytest.approx(rule)


def test_score_rejects_a_malformed_answer_or_key():
    with pytest.raises(TypeError):
        score("AD", {"A", "D"}, "ABCDE")
    with pytest.raises(ValueError, match="key"):
        score({"A"}, {"Z"}, "ABCDE")
    with pytest.raises(ValueError, match="key"):
        score({"A"}, set(), "ABCDE")


# ---------------------------------------------------------------------------
# Hashed keys
# ---------------------------------------------------------------------------


def test_hashed_score_equals_score_times_points_for_every_answer():
    letters, key = "ABCDE", {"A", "C", "E"}
    hashed = hash_key("test-q", key, letters, salt="00ff00ff00ff00ff")
    for size in range(1, 6):
        for chosen in itertools.combinations(letters, size):
            want = 2 * score(set(chosen), key, letters)
            assert hashed_score(set(chosen), "test-q", letters, hashed, points=2) == pytest.approx(
                want
            )


def test_hashed_key_hides_the_key_and_depends_on_salt_and_question():
    hashed = hash_key("test-q", {"A", "C"}, "ABCD", salt="abcdef0123456789")
    version, salt, *hashes = hashed.split(":")
    assert (version, salt, len(hashes)) == ("v1", "abcdef0123456789", 4)
    assert not any(x in hashed for x in ("true", "false", "{", "A", "C"))
    assert hashed != hash_key("other-q", {"A", "C"}, "ABCD", salt="abcdef0123456789")
    assert hashed != hash_key("test-q", {"A", "C"}, "ABCD", salt="abcdef0123456788")
    assert hash_key("test-q", {"A"}, "ABCD") != hash_key("test-q", {"A"}, "ABCD")  # random salts


def test_hashed_score_refuses_a_key_for_another_question_shape():
    hashed = hash_key("q", {"A"}, "ABCD")
    with pytest.raises(ValueError, match="hashed_key"):
        hashed_score({"A"}, "q", "ABCDE", hashed)
    with pytest.raises(ValueError, match="points"):
        hashed_score({"A"}, "q", "ABCD", hashed, points=0)
    with pytest.raises(TypeError):
        hashed_score(["A"], "q", "ABCD", hashed)
    # A key for another question id gives wrong classifications, not an error.
    assert hashed_score({"A"}, "other", "ABCD", hashed) < 1


def test_hashed_score_prints_nothing(capsys):
    hashed = hash_key("q", {"B"}, "ABC")
    assert hashed_score({"B"}, "q", "ABC", hashed) == 1.0
    assert capsys.readouterr() == ("", "")


# ---------------------------------------------------------------------------
# Question
# ---------------------------------------------------------------------------


def _practice() -> Question:
    return Question(
        "Which are first-order methods?",
        ["FOMAML", "MAML", "Reptile", "Second-order MAML"],
        key={"A", "C"},
        explanations={
            "A": "drops the Hessian terms",
            "B": "keeps them",
            "C": "never differentiates through the inner loop",
            "D": "by name",
        },
        question_id="P1",
    )


def test_question_renders_prompt_and_lettered_statements():
    q = _practice()
    assert q.letters == ("A", "B", "C", "D")
    md = q._repr_markdown_()
    assert "**P1.** Which are first-order methods?" in md
    assert "- **C.** Reptile" in md and 'answer = {"A", "C"}' in md
    html = Question("Is 1 < 2?", ["yes <b>", "no"])._repr_html_()
    assert "<li><b>A.</b> yes &lt;b&gt;</li>" in html


def test_practice_feedback_explains_each_statement():
    q = _practice()
    assert q.score({"A", "C"}) == 1.0
    text = q.feedback({"A"})
    assert "Score: **50%**" in text
    assert "**C** (WRONG: the statement is true)" in text
    assert "never differentiates through the inner loop" in text
    with pytest.raises(ValueError, match="capital"):
        q.feedback({"a"})


def test_graded_question_has_no_key_to_score_with():
    q = Question("Graded?", ["x", "y"])
    assert q.check({"B"}) == frozenset({"B"})
    with pytest.raises(ValueError, match="no key"):
        q.score({"A"})


_EXPLAIN = {"A": "x", "B": "y"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"prompt": "", "statements": ["a", "b"]}, TypeError),
        ({"prompt": "p", "statements": "ab"}, TypeError),
        ({"prompt": "p", "statements": ["a"]}, ValueError),
        ({"prompt": "p", "statements": ["s"] * (len(LETTERS) + 1)}, ValueError),
        ({"prompt": "p", "statements": ["a", ""]}, TypeError),
        ({"prompt": "p", "statements": ["a", "b"], "key": {"C"}}, ValueError),
        ({"prompt": "p", "statements": ["a", "b"], "explanations": _EXPLAIN}, ValueError),
        ({"prompt": "p", "statements": ["a", "b"], "key": {"A"}, "explanations": {"A": "x"}},)
        + (ValueError,),
    ],
)
def test_question_refuses_bad_construction(kwargs, error):
    with pytest.raises(error):
        Question(**kwargs)


def test_the_quiz_module_does_not_import_torch():
    """A graded quiz notebook imports metalearn_lib.grading only: no torch, so it grades in ~1 s."""
    code = (
        "import sys, metalearn_lib.grading, metalearn_lib.grading.quiz\n"
        "import metalearn_lib.grading.records\n"
        "assert 'torch' not in sys.modules, 'metalearn_lib.grading imported torch'\n"
        "import metalearn_lib\n"
        "names = metalearn_lib.__all__\n"
        "assert all(getattr(metalearn_lib, n) is not None for n in names)\n"
        "assert set(names) <= set(dir(metalearn_lib))\n"
        "namespace = {}\n"
        "exec('from metalearn_lib import *', namespace)\n"
        "assert set(names) <= set(namespace)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        metalearn_lib.nonsense  # noqa: B018


# ---------------------------------------------------------------------------
# The graded quiz: its keys and what its introduction claims
# ---------------------------------------------------------------------------

QUIZ = Path(__file__).resolve().parents[1] / "solutions" / "variants_quiz" / "variants_quiz.ipynb"


def _quiz():
    """({question: key}, {question: letters}, introduction text) from the instructor's notebook."""
    nb = json.loads(QUIZ.read_text())
    keys, letters = {}, {}
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id", "")
        source = "".join(cell["source"])
        if m := re.fullmatch(r"answer_(\d+)", gid):
            body = [ln for ln in source.splitlines() if ln.startswith("answer_")][0]
            keys[int(m[1])] = frozenset(ast.literal_eval(body.split("=", 1)[1].strip()))
        elif m := re.fullmatch(r"test_answer_(\d+)", gid):
            letters[int(m[1])] = re.search(r'check_answer\(answer_\d+, "([A-H]+)"\)', source)[1]
    return keys, letters, "".join(nb["cells"][0]["source"])


def _expected_random(key, letters) -> float:
    """Expected score of a uniformly random non-empty answer (exact, over all answers)."""
    answers = [
        set(c) for r in range(1, len(letters) + 1) for c in itertools.combinations(letters, r)
    ]
    return sum(score(a, key, letters) for a in answers) / len(answers)


def test_quiz_varies_the_number_of_true_statements():
    keys, letters, _ = _quiz()
    assert len(keys) == 9
    counts = {q: len(keys[q]) for q in keys}
    assert all(1 <= counts[q] <= len(letters[q]) - 1 for q in keys)
    five = [counts[q] for q in keys if len(letters[q]) == 5]
    assert set(five) == {1, 2, 3, 4}, "five-statement questions use every count from 1 to 4"
    assert len(set(counts.values())) >= 4


def test_quiz_introduction_states_what_each_strategy_earns():
    keys, letters, intro = _quiz()
    everything = sum(score(set(letters[q]), keys[q], letters[q]) for q in keys)
    random = sum(_expected_random(keys[q], letters[q]) for q in keys)
    assert round(everything, 1) == 1.1
    assert "ticking every statement of every question earns about 1.1 of the 9 points" in intro
    assert round(random, 1) == 1.5
    assert "earns about 1.5 of\nthe 9 points on average" in intro
    # Ticking nothing is a format error: no record, no points.
    for q in keys:
        with pytest.raises(ValueError, match="empty"):
            check_answer(set(), letters[q])
    assert "an empty answer is a\nformat error and earns 0" in intro
    # A fully right answer earns every point.
    assert sum(score(keys[q], keys[q], letters[q]) for q in keys) == 9


def test_every_hashed_key_gives_the_solution_full_points():
    """The grader-key lines were made from the solution's answers, letter for letter."""
    keys, letters, _ = _quiz()
    nb = json.loads(QUIZ.read_text())
    hashed = {}
    for cell in nb["cells"]:
        for line in "".join(cell["source"]).splitlines():
            if m := re.fullmatch(r"# grader-key: variants-q(\d+) (v1:\S+)", line.strip()):
                hashed[int(m[1])] = m[2]
    assert set(hashed) == set(keys)
    for q in keys:
        assert hashed_score(set(keys[q]), f"variants-q{q}", letters[q], hashed[q]) == 1.0
        wrong = set(letters[q]) - keys[q]
        assert hashed_score(wrong, f"variants-q{q}", letters[q], hashed[q]) == 0.0
