r"""Select-all-that-apply questions: rendering, answer checks and partial credit.

A question has a prompt and 2 to 8 *statements*, lettered ``A``, ``B``, ...
The learner answers with the **set of letters of the true statements**, for
example ``answer = {"A", "C"}``.

Two kinds of questions use this module:

* **practice questions** (in the chapters) know their key and may carry an
  explanation per statement: :meth:`Question.feedback` tells the learner which
  statements they classified right and why;
* **graded questions** (nbgrader assignments in ``solutions/``) never hold
  their key in plain text. The instructor turns the key into a *hashed key*
  with :func:`hash_key` once and puts it on a ``# grader-key:`` line of the
  hidden test cell. In the student's kernel that cell only checks the format
  and records the answer (:func:`metalearn_lib.grading.records.record_answer`);
  the grader's process strips the key line before execution and scores the
  record with :func:`hashed_score` afterwards
  (:mod:`metalearn_lib.grading.verdicts`), so the kernel never sees the key.

Scoring rule (:func:`score`)
----------------------------
Every statement is *classified* by the answer: selected means "true", left
out means "false". With ``n`` statements, ``r`` classified right and
``w = n - r`` classified wrong, the fraction earned is

.. math:: \max\Bigl(0, \frac{r - w}{n}\Bigr)

so each right classification earns ``1/n``, each wrong one costs ``1/n``, and
the result is floored at 0. A fully right answer earns 1. An empty answer is
refused by :func:`check_answer` (every question has at least one true
statement), so it earns 0 like any format error. Ticking every letter of a
question with ``t`` true statements earns ``max(0, (2t - n) / n)``, and a
uniformly random answer (each of the ``2**n - 1`` non-empty sets equally
likely) earns little in expectation; the graded quiz varies ``t`` from 1 to
``n - 1`` so neither pays (its introduction states the totals, and
``tests/test_quiz.py`` checks them). This docstring is the one place where
the rule is written down; the quiz's introduction and the instructor guide
repeat it in words.

Examples
--------
>>> check_answer({"A", "C"}, "ABCDE")
frozenset({'A', 'C'})
>>> score({"A", "C"}, key={"A", "D"}, letters="ABCDE")   # A, B, E right; C, D wrong
0.2
>>> hashed = hash_key("demo-q1", key={"A", "D"}, letters="ABCDE", salt="0123abcd")
>>> hashed_score({"A", "C"}, "demo-q1", "ABCDE", hashed, points=2)
0.4
"""

from __future__ import annotations

import hashlib
import html
import secrets
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "LETTERS",
    "Question",
    "check_answer",
    "hash_key",
    "hashed_score",
    "score",
]

#: Letters used for statements, in order; a question has at most this many.
LETTERS = "ABCDEFGH"

_HASH_VERSION = "v1"
_HASH_CHARS = 16  # hex characters kept per statement hash


# ---------------------------------------------------------------------------
# Answer format
# ---------------------------------------------------------------------------


def _letters_of(letters: str | Iterable[str] | Question) -> tuple[str, ...]:
    """Normalise the ``letters`` argument to a tuple like ``('A', 'B', 'C')``."""
    if isinstance(letters, Question):
        return letters.letters
    if isinstance(letters, str):
        out = tuple(letters)
    else:
        try:
            out = tuple(letters)
        except TypeError:
            raise TypeError(
                f"letters must be a string such as 'ABCDE', got {type(letters).__name__}"
            ) from None
    if not out or any(type(x) is not str or x not in LETTERS for x in out):
        raise ValueError(f"letters must be consecutive capital letters from 'A', got {letters!r}")
    if "".join(out) != LETTERS[: len(out)]:
        raise ValueError(f"letters must be 'A', 'B', ... in order without gaps, got {letters!r}")
    return out


def check_answer(answer: object, letters: str | Iterable[str] | Question) -> frozenset[str]:
    """Check that ``answer`` is a well-formed answer and return it normalised.

    A well-formed answer is a ``set`` (or ``frozenset``) of one or more
    capital letters, each the letter of a statement of the question, e.g.
    ``{"A", "C"}``.

    Parameters
    ----------
    answer : object
        What the learner wrote, normally ``answer = {"A", "C"}``.
    letters : str or Question
        The letters of the question's statements, e.g. ``"ABCDE"``.

    Returns
    -------
    frozenset of str
        The selected letters.

    Raises
    ------
    TypeError
        If ``answer`` is not a set (a string like ``"AC"``, a list, a dict,
        ``None``, ...) or holds something other than strings.
    ValueError
        If the set is empty, or holds lowercase letters, several letters in
        one string, or letters the question does not have.
    """
    valid = _letters_of(letters)
    allowed = ", ".join(f'"{x}"' for x in valid)
    example = '{"A", "C"}'
    if isinstance(answer, str):
        raise TypeError(
            f"answer must be a set of letters such as {example}, not the string {answer!r}: "
            "put each letter in its own quotes inside curly braces"
        )
    if type(answer) not in (set, frozenset):
        raise TypeError(
            f"answer must be a set of letters such as {example}, "
            f"got a {type(answer).__name__}"
            + (" (use curly braces { } instead of square brackets)" if type(answer) is list else "")
        )
    items = list(answer)
    if not items:
        raise ValueError(
            "answer is empty: select at least one statement, "
            f"e.g. answer = {example} (every question has at least one true statement)"
        )
    for item in items:
        if type(item) is not str:
            raise TypeError(
                f"answer must contain letters as strings such as {example}, "
                f"found {type(item).__name__} {item!r}"
            )
    for item in sorted(items):
        if item.upper() in valid and item != item.upper():
            raise ValueError(
                f"answer must use capital letters: write {item.upper()!r}, not {item!r}"
            )
        if len(item) > 1 and all(ch.upper() in valid for ch in item):
            raise ValueError(
                f"answer holds {item!r}: put each letter in its own quotes, "
                f"e.g. {{{', '.join(repr(ch.upper()) for ch in item)}}}"
            )
        if item not in valid:
            raise ValueError(
                f"answer holds {item!r}, which is not a statement; choose from {allowed}"
            )
    return frozenset(items)


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------


def _fraction(right: int, n: int) -> float:
    """The documented rule: max(0, (right - wrong) / n), rounded for display."""
    return round(max(0.0, (right - (n - right)) / n), 10)


def score(answer: object, key: Iterable[str], letters: str | Iterable[str] | Question) -> float:
    """Partial credit in ``[0, 1]`` for ``answer`` against the set of true letters ``key``.

    Each statement classified right (selected and true, or left out and
    false) earns ``1/n``; each classified wrong costs ``1/n``; the total is
    floored at 0 (see the module docstring).

    Parameters
    ----------
    answer : set of str
        The learner's answer; it is checked with :func:`check_answer` first.
    key : set of str
        The letters of the true statements (at least one).
    letters : str or Question
        The letters of all statements, e.g. ``"ABCDE"``.

    Returns
    -------
    float
        The fraction of the question's points earned.

    Raises
    ------
    TypeError, ValueError
        If ``answer`` or ``key`` is malformed (see :func:`check_answer`).
    """
    valid = _letters_of(letters)
    chosen = check_answer(answer, valid)
    try:
        true = check_answer(set(key), valid)
    except (TypeError, ValueError) as error:
        raise ValueError(f"key is not a valid set of true letters: {error}") from None
    right = sum((x in chosen) == (x in true) for x in valid)
    return _fraction(right, len(valid))


def _statement_hash(salt: str, question_id: str, letter: str, is_true: bool) -> str:
    text = f"{_HASH_VERSION}|{salt}|{question_id}|{letter}|{'true' if is_true else 'false'}"
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS]


def _check_question_id(question_id: object) -> str:
    if type(question_id) is not str or not question_id.strip():
        raise TypeError(f"question_id must be a non-empty string, got {question_id!r}")
    return question_id


def hash_key(
    question_id: str,
    key: Iterable[str],
    letters: str | Iterable[str],
    *,
    salt: str | None = None,
) -> str:
    """Turn a graded question's key into a hashed key for :func:`hashed_score`.

    Each statement is stored as ``sha256(salt | question_id | letter | truth)``
    (truncated), so the hashed key gives partial credit per statement while
    the letters of the true statements cannot be read off it without the
    salt. Run this once when writing an assignment and paste the result into
    the solution notebook's *hidden* test cell; never put the key itself in a
    notebook.

    Parameters
    ----------
    question_id : str
        A name unique in the course, e.g. ``"variants-q3"``.
    key : set of str
        The letters of the true statements.
    letters : str
        The letters of all statements, e.g. ``"ABCDE"``.
    salt : str, optional
        Random hex string; a fresh random one is drawn if omitted.

    Returns
    -------
    str
        ``"v1:<salt>:<hash of A>:<hash of B>:..."``.
    """
    question_id = _check_question_id(question_id)
    valid = _letters_of(letters)
    true = check_answer(set(key), valid)
    if salt is None:
        salt = secrets.token_hex(8)
    if type(salt) is not str or not salt or not all(c in "0123456789abcdef" for c in salt):
        raise ValueError(f"salt must be a non-empty lowercase hex string, got {salt!r}")
    hashes = [_statement_hash(salt, question_id, x, x in true) for x in valid]
    return ":".join([_HASH_VERSION, salt, *hashes])


def hashed_score(
    answer: object,
    question_id: str,
    letters: str | Iterable[str],
    hashed_key: str,
    *,
    points: float = 1.0,
) -> float:
    """Points earned by ``answer`` on a graded question whose key is only known by hash.

    This is what a hidden nbgrader test cell calls as its last line: the
    returned number is the cell's result, which nbgrader records as partial
    credit. It prints nothing and the key never appears in its arguments.

    Parameters
    ----------
    answer : set of str
        The learner's answer; malformed answers raise like :func:`check_answer`.
    question_id : str
        The id used with :func:`hash_key`.
    letters : str
        The letters of all statements, e.g. ``"ABCDE"``.
    hashed_key : str
        The string :func:`hash_key` returned.
    points : float
        The question's points (the grade cell's points in nbgrader).

    Returns
    -------
    float
        ``points * score`` by the rule of :func:`score`, rounded to 6 decimals.
    """
    question_id = _check_question_id(question_id)
    valid = _letters_of(letters)
    chosen = check_answer(answer, valid)
    if isinstance(points, bool) or not isinstance(points, int | float) or not points > 0:
        raise ValueError(f"points must be a positive number, got {points!r}")
    parts = hashed_key.split(":") if type(hashed_key) is str else []
    if len(parts) != 2 + len(valid) or parts[0] != _HASH_VERSION:
        raise ValueError(
            "hashed_key does not match this question (wrong version or statement count)"
        )
    salt, stored = parts[1], parts[2:]
    right = sum(
        _statement_hash(salt, question_id, x, x in chosen) == h for x, h in zip(valid, stored)
    )
    return round(points * _fraction(right, len(valid)), 6)


# ---------------------------------------------------------------------------
# Questions
# ---------------------------------------------------------------------------


class Question:
    """A select-all-that-apply question that renders itself in a notebook.

    Parameters
    ----------
    prompt : str
        The question (Markdown allowed).
    statements : sequence of str
        2 to 8 statements; they get the letters ``A``, ``B``, ... in order.
    key : set of str, optional
        Letters of the true statements. Give it only for **practice**
        questions; graded questions keep their key hashed in ``solutions/``.
    explanations : mapping of letter to str, optional
        Why each statement is true or false (practice questions only; shown
        by :meth:`feedback`). Needs ``key``.
    question_id : str, optional
        A short id, shown in the heading.

    Examples
    --------
    >>> q = Question(
    ...     "Which are first-order methods?",
    ...     ["FOMAML", "MAML", "Reptile"],
    ...     key={"A", "C"},
    ...     explanations={"A": "It drops the Hessian terms.", "B": "It keeps them.",
    ...                   "C": "It never differentiates through the inner loop."},
    ... )
    >>> q.letters
    ('A', 'B', 'C')
    >>> q.score({"A"})
    0.3333333333
    """

    def __init__(
        self,
        prompt: str,
        statements: Sequence[str],
        *,
        key: Iterable[str] | None = None,
        explanations: Mapping[str, str] | None = None,
        question_id: str | None = None,
    ) -> None:
        if type(prompt) is not str or not prompt.strip():
            raise TypeError("prompt must be a non-empty string")
        if isinstance(statements, str) or not isinstance(statements, Sequence):
            raise TypeError("statements must be a list of strings, one per statement")
        if not 2 <= len(statements) <= len(LETTERS):
            raise ValueError(
                f"a question needs 2 to {len(LETTERS)} statements, got {len(statements)}"
            )
        if any(type(s) is not str or not s.strip() for s in statements):
            raise TypeError("every statement must be a non-empty string")
        if question_id is not None:
            _check_question_id(question_id)
        self.prompt = prompt
        self.statements = tuple(statements)
        self.letters = tuple(LETTERS[: len(statements)])
        self.question_id = question_id
        self.key = None if key is None else check_answer(set(key), self.letters)
        if explanations is not None:
            if self.key is None:
                raise ValueError("explanations need a key (they are for practice questions)")
            if not isinstance(explanations, Mapping) or set(explanations) != set(self.letters):
                raise ValueError(f"explanations must map every letter {self.letters} to a string")
            explanations = dict(explanations)
        self.explanations = explanations

    def __repr__(self) -> str:
        return f"Question({self.prompt[:40]!r}, {len(self.statements)} statements)"

    def check(self, answer: object) -> frozenset[str]:
        """:func:`check_answer` for this question's letters."""
        return check_answer(answer, self.letters)

    def score(self, answer: object) -> float:
        """Fraction earned by ``answer`` (practice questions only; see :func:`score`)."""
        if self.key is None:
            raise ValueError("this question has no key here: it is graded by the instructor")
        return score(answer, self.key, self.letters)

    def to_markdown(self) -> str:
        """The question as Markdown: prompt, lettered statements, how to answer."""
        head = f"**{self.question_id}.** " if self.question_id else ""
        lines = [head + self.prompt, ""]
        lines += [f"- **{x}.** {s}" for x, s in zip(self.letters, self.statements)]
        lines += ["", 'Answer with the set of true letters, e.g. `answer = {"A", "C"}`.']
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        esc = html.escape
        head = f"<b>{esc(self.question_id)}.</b> " if self.question_id else ""
        items = "".join(
            f"<li><b>{x}.</b> {esc(s)}</li>" for x, s in zip(self.letters, self.statements)
        )
        return (
            f"<div class='metalearn-quiz'><p>{head}{esc(self.prompt)}</p>"
            f"<ul style='list-style: none'>{items}</ul>"
            "<p><i>Answer with the set of true letters, e.g. "
            '<code>answer = {"A", "C"}</code>.</i></p></div>'
        )

    def feedback(self, answer: object) -> str:
        """Per-statement feedback for a practice question, as Markdown.

        Raises the clear format errors of :func:`check_answer` first, so a
        malformed answer is explained before anything is graded.
        """
        chosen = self.check(answer)
        if self.key is None:
            raise ValueError("this question has no key here: it is graded by the instructor")
        lines = [f"Score: **{self.score(chosen):.0%}** (right minus wrong, per statement)", ""]
        for x, s in zip(self.letters, self.statements):
            ok = (x in chosen) == (x in self.key)
            verdict = "true" if x in self.key else "false"
            mark = "right" if ok else "WRONG"
            line = f"- **{x}** ({mark}: the statement is {verdict}) {s}"
            if self.explanations:
                line += f"  \n  *{self.explanations[x]}*"
            lines.append(line)
        return "\n".join(lines)
