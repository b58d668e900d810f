"""The course's one self-check system: exercises with hints, and practice questions.

* An :class:`Exercise` has a prompt, a checker, hints in order and a
  solution. A :class:`SelfCheck` holds a set of exercises and one learner's
  progress through them (hints shown, exercises solved): its ``check`` says
  whether an answer is right and, if not, what is wrong and the next hint;
  the solution only comes when asked for.
* Multiple-choice questions are the grading engine's
  :class:`~metalearn_lib.grading.quiz.Question` (the same engine the graded quiz
  uses): :func:`choice_exercise` makes a one-letter exercise of one, and
  :func:`practice_feedback` checks a select-all-that-apply answer and explains
  every statement, without a traceback.

The exercises themselves are in :mod:`metalearn_lib.teaching.exercises` and
:mod:`metalearn_lib.teaching.practice`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..grading.quiz import Question

__all__ = ["Exercise", "PracticeFeedback", "SelfCheck", "choice_exercise", "practice_feedback"]


@dataclass(frozen=True)
class Exercise:
    """One self-check: a prompt, a checker, hints in order, and a solution shown on request.

    ``checker(answer)`` returns ``(right, message)``; it may raise TypeError
    for an answer of the wrong kind (the message is shown as feedback).
    """

    prompt: str
    checker: Callable[[object], tuple[bool, str]]
    hints: Sequence[str]
    answer: str


def choice_exercise(question: Question, hints: Sequence[str], answer: str) -> Exercise:
    """A one-letter multiple-choice exercise built on a practice :class:`Question`.

    ``question`` has exactly one true statement and an explanation per
    statement. The exercise's prompt lists the statements as (a), (b), ...;
    the learner answers with one letter (any case, e.g. ``"b"``), and the
    feedback is the explanation of the chosen statement.
    """
    if not isinstance(question, Question):
        raise TypeError(f"question must be a Question, got {type(question).__name__}")
    if question.key is None or len(question.key) != 1 or not question.explanations:
        raise ValueError("question must have exactly one true statement and explanations")
    letters = [letter.lower() for letter in question.letters]
    choices = "; ".join(f"({x}) {s}" for x, s in zip(letters, question.statements))
    asked = ", ".join(f"'{x}'" for x in letters[:-1]) + f" or '{letters[-1]}'"

    def checker(given: object) -> tuple[bool, str]:
        choice = str(given).strip().strip("()'\". ").upper()
        if choice not in question.letters:
            return False, f"Answer with one of the letters {asked}."
        return choice in question.key, question.explanations[choice]

    return Exercise(f"{question.prompt} {choices}.", checker, hints, answer)


class SelfCheck:
    """A set of exercises and one learner's progress through them.

    Parameters
    ----------
    exercises : mapping of name to Exercise
        E.g. ``{"2.1": Exercise(...), ...}``.

    Attributes
    ----------
    hints_shown : dict of name to int
        How many hints of each exercise were shown.
    """

    def __init__(self, exercises: Mapping[str, Exercise]) -> None:
        if not isinstance(exercises, Mapping) or not exercises:
            raise TypeError("exercises must be a non-empty dict {name: Exercise}")
        for name, exercise in exercises.items():
            if not isinstance(exercise, Exercise):
                raise TypeError(f"exercises[{name!r}] must be an Exercise, got {type(exercise)}")
        self.exercises = dict(exercises)
        self.reset()

    def reset(self) -> None:
        """Forget all progress: no hints shown, nothing solved."""
        self.hints_shown = dict.fromkeys(self.exercises, 0)
        self._solved: set[str] = set()

    def exercise(self, name: str) -> Exercise:
        """The exercise called ``name``; a ValueError naming the known ones otherwise."""
        if name not in self.exercises:
            raise ValueError(f"unknown exercise {name!r}; known: {sorted(self.exercises)}")
        return self.exercises[name]

    def hint(self, name: str) -> None:
        """Print the next hint of exercise ``name`` (e.g. ``"2.1"``)."""
        exercise = self.exercise(name)
        shown = self.hints_shown[name]
        if shown < len(exercise.hints):
            self.hints_shown[name] = shown + 1
            print(f"Hint {shown + 1}/{len(exercise.hints)}: {exercise.hints[shown]}")
        else:
            print(f"No more hints for {name}. Call solution({name!r}) to see one.")

    def check(self, name: str, answer: object) -> None:
        """Check your answer to exercise ``name`` and print feedback.

        A wrong answer prints what is wrong and the next hint; the solution is
        never printed here (call :meth:`solution` for it). ``None`` or ``...``
        means "not answered yet". Whether it was right is remembered: see
        :meth:`solved`.
        """
        exercise = self.exercise(name)
        self._solved.discard(name)
        if answer is None or answer is Ellipsis:
            print(f"[{name}] Not answered yet. {exercise.prompt}")
            self.hint(name)
            return
        try:
            ok, message = exercise.checker(answer)
        except TypeError as error:
            ok, message = False, str(error)
        if ok:
            self._solved.add(name)
            print(f"[{name}] Correct! {message}")
            return
        print(f"[{name}] Not yet. {message}")
        self.hint(name)

    def solved(self, name: str) -> bool:
        """Whether exercise ``name`` has been answered correctly (its last check was right)."""
        self.exercise(name)
        return name in self._solved

    def solution(self, name: str) -> None:
        """Print the solution of exercise ``name``; try the hints first."""
        exercise = self.exercise(name)
        shown, total = self.hints_shown[name], len(exercise.hints)
        if name not in self._solved and shown < total:
            print(f"(You have seen {shown} of {total} hints for {name}.)")
        print(f"[{name}] Solution:\n{exercise.answer}")


class PracticeFeedback:
    """What :func:`practice_feedback` returns: Markdown text that renders in a notebook."""

    def __init__(self, text: str, ok: bool) -> None:
        self.text, self.ok = text, ok

    def __repr__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return self.text


def practice_feedback(question: Question, answer: object) -> PracticeFeedback:
    """Check a practice answer and explain every statement, without a traceback.

    Parameters
    ----------
    question : metalearn_lib.grading.quiz.Question
        A practice question (with key and explanations).
    answer : set of str or None
        The learner's answer, e.g. ``{"A", "C"}``; ``None`` means not answered yet.

    Returns
    -------
    PracticeFeedback
        Renders as Markdown: a reminder if ``answer`` is None, the format
        problem if it is malformed (``.ok`` is False in both cases), or the
        score with a right/wrong verdict and an explanation per statement.
    """
    if not isinstance(question, Question):
        raise TypeError(f"question must be a quiz.Question, got {type(question).__name__}")
    if question.key is None:
        raise ValueError("question has no key: practice feedback needs a practice question")
    if answer is None:
        letters = ", ".join(question.letters)
        return PracticeFeedback(
            f"*Not answered yet.* Replace `None` with the set of true letters (from {letters}), "
            'e.g. `{"A", "C"}`, and run the cell again.',
            ok=False,
        )
    try:
        text = question.feedback(answer)
    except (TypeError, ValueError) as error:
        return PracticeFeedback(f"**Answer format:** {error}", ok=False)
    return PracticeFeedback(text, ok=True)
