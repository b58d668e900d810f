"""Chapter 6's "check yourself" exercises: which variant answers which limit, and how.

``check("6.1", answer)``, ``hint("6.1")`` and ``solution("6.1")`` are the
methods of :data:`CHAPTER6`, a
:class:`~metalearn_lib.teaching.selfcheck.SelfCheck` (the course's one
self-check system) over :data:`EXERCISES`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .selfcheck import Exercise, SelfCheck

__all__ = ["CHAPTER6", "EXERCISES", "check", "hint", "solution", "solved"]


def _pair(answer: object) -> tuple[float, float]:
    try:
        first, second = (float(v) for v in answer)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise TypeError("answer with a pair of numbers, e.g. (0.5, 0.5)") from None
    return first, second


def _check_6_1(answer: object) -> tuple[bool, str]:
    maml, imaml = _pair(answer)
    # h = 4, alpha = 0.05, one step; lam = 1 / alpha = 20.
    right_maml, right_imaml = 1 - 0.05 * 4, 1 / (1 + 4 / 20)
    if not math.isclose(maml, right_maml, abs_tol=1e-3):
        return False, f"MAML's factor {maml:g} is off: one step gives (1 - alpha h)."
    if not math.isclose(imaml, right_imaml, abs_tol=1e-3):
        return False, f"iMAML's factor {imaml:g} is off: it is 1 / (1 + h / lam)."
    return True, (
        "Both shrink the query gradient along a steep direction by about the same amount "
        "(0.8 and 0.83): iMAML reaches it by solving a linear system, without storing the step."
    )


def _anil_case() -> tuple[dict, dict, list[str]]:
    gen = torch.Generator().manual_seed(6)
    names = ["body.weight", "body.bias", "head.weight", "head.bias"]
    params = {n: torch.randn(3, generator=gen) for n in names}
    grads = {n: torch.randn(3, generator=gen) for n in names}
    return params, grads, ["head.weight", "head.bias"]


def _check_6_2(answer: object) -> tuple[bool, str]:
    if not callable(answer):
        raise TypeError("answer with your function, e.g. check('6.2', anil_step)")
    params, grads, head = _anil_case()
    try:
        out = answer(params, grads, head, 0.1)
    except Exception as error:  # the learner's code: report, do not crash
        return False, f"your function raised {type(error).__name__}: {error}"
    if not isinstance(out, dict) or out.keys() != params.keys():
        return False, "return a dict with the same names as params (the body included)."
    for n, p in params.items():
        expected = p - 0.1 * grads[n] if n in head else p
        if not isinstance(out[n], Tensor) or not torch.allclose(out[n], expected):
            where = "head" if n in head else "body"
            return False, f"{n} ({where}) is not what ANIL's inner step gives."
    return True, "Only the head moved; the body is reused as it is (that is ANIL's saving)."


_LETTERS = {
    "6.3": (
        "c",
        {
            "a": "MAML++ learns per-step rates and weights every step's loss; the cost of a "
            "meta-step stays that of MAML (or more).",
            "b": "Meta-SGD adds a learned rate per weight; every layer is still adapted.",
            "c": "Right: ANIL's inner loop touches only the head, so its inner gradients skip "
            "the convolutional body (about 2-4x faster per meta-step on the ConvNet).",
            "d": "iMAML keeps memory flat, but its conjugate gradient costs Hessian-vector "
            "products on the whole network: it is not cheaper per step.",
        },
    ),
    "6.4": (
        "b",
        {
            "a": "A negative rate is not ignored: the step is rate x gradient.",
            "b": "Right: with a negative rate that weight moves *up* its support-loss gradient; "
            "Meta-SGD only cares that the query loss after the step is low.",
            "c": "Nothing clips the rates; Meta-SGD's outer loop may drive them below 0.",
            "d": "The rate multiplies the gradient of that weight only; others are unaffected.",
        },
    ),
}


def _letter_checker(name: str):
    key, explanations = _LETTERS[name]

    def checker(answer: object) -> tuple[bool, str]:
        choice = str(answer).strip().strip("()'\". ").lower()
        if choice not in explanations:
            return False, f"Answer with one of the letters {', '.join(sorted(explanations))}."
        return choice == key, explanations[choice]

    return checker


EXERCISES = {
    "6.1": Exercise(
        "One task with a 1-d support loss of curvature h = 4, inner lr alpha = 0.05, one "
        "inner step. MAML multiplies the query gradient by (1 - alpha h); iMAML with "
        "lam = 1/alpha by (1 + h/lam)^-1. Give the pair (MAML's factor, iMAML's factor).",
        _check_6_1,
        [
            "lam = 1 / alpha = 20.",
            "MAML: 1 - 0.05 * 4. iMAML: 1 / (1 + 4 / 20).",
        ],
        "(1 - 0.05 * 4, 1 / (1 + 4 / 20))  # (0.8, 0.8333)",
    ),
    "6.2": Exercise(
        "Write anil_step(params, grads, head, lr) -> dict: one inner step of ANIL, "
        "where head lists the names that adapt; every other entry is returned unchanged.",
        _check_6_2,
        [
            "A dict comprehension over params.items().",
            "p - lr * grads[n] if n in head else p",
        ],
        "def anil_step(params, grads, head, lr):\n"
        "    return {n: p - lr * grads[n] if n in head else p for n, p in params.items()}",
    ),
    "6.3": Exercise(
        "Your meta-steps on a ConvNet take too long. Which variant makes each one cheaper? "
        "(a) MAML++ (b) Meta-SGD (c) ANIL (d) iMAML",
        _letter_checker("6.3"),
        ["Which variant skips work inside the inner loop?", "It adapts only the last layer."],
        "'c': ANIL adapts the head only.",
    ),
    "6.4": Exercise(
        "Meta-SGD learned a negative rate for some weights. What happens to such a weight in "
        "the inner step? (a) it is frozen (b) it moves up its support-loss gradient "
        "(c) it is clipped to 0 (d) the other weights move less",
        _letter_checker("6.4"),
        ["The step is phi - rate * gradient."],
        "'b': a negative rate flips the step's sign for that weight.",
    ),
}

#: Chapter 6's exercises with this kernel's progress through them.
CHAPTER6 = SelfCheck(EXERCISES)
check = CHAPTER6.check
hint = CHAPTER6.hint
solution = CHAPTER6.solution
solved = CHAPTER6.solved
