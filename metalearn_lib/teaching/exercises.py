"""The "check yourself" exercises of chapters 1, 2, 3 and 5, and the functions that check them.

``check("2.1", answer)`` says whether an answer is right and, if not, what is
wrong and the next hint; ``hint("2.1")`` gives a hint without checking;
``solution("2.1")`` shows a solution. They are the methods of :data:`COURSE`,
a :class:`~metalearn_lib.teaching.selfcheck.SelfCheck` over :data:`EXERCISES`
that remembers the hints shown and the exercises solved in this kernel
(:func:`reset_progress` forgets them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ..algorithms import adapt, meta_gradient
from ..checks import Params, ci95
from ..grading.quiz import Question
from ..models import MLP, parameters_of
from ..tasks import SinusoidTasks, TaskBatch
from .gradients import cosine_similarity
from .selfcheck import Exercise, SelfCheck, choice_exercise

__all__ = [
    "COURSE",
    "EXERCISES",
    "chapter5_exercise_accuracies",
    "check",
    "exercise_setup",
    "hint",
    "reset_progress",
    "solution",
    "solved",
]


def _number(value: object, name: str = "answer") -> float:
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def _close(value: float, target: float, tol: float) -> bool:
    return math.isfinite(value) and abs(value - target) <= tol


# -- chapter 1 -------------------------------------------------------------


def _check_1_1(answer: object) -> tuple[bool, str]:
    if isinstance(answer, Tensor):
        return False, "That is a tensor; the question asks for its shape (use .shape)."
    try:
        shape = tuple(int(s) for s in answer)  # type: ignore[union-attr]
    except TypeError:
        return False, f"Give the shape as a tuple such as (2, 3, 1), got {answer!r}."
    if shape == (4, 20, 1):
        return True, "[tasks, query points, features] = (4, 20, 1)."
    if shape == (4, 5, 1):
        return False, "(4, 5, 1) is the shape of the *support* tensors: K = 5 shots."
    return False, f"{shape} is not it."


def _check_1_2(answer: object) -> tuple[bool, str]:
    value = _number(answer)
    target = -2 * 2.55 / math.pi
    if _close(value, target, 0.1):
        return True, (
            f"The average task at x = 0 is about {target:.2f}: amplitude and phase are "
            "independent, so E[A sin(x - phi)] = E[A] E[sin(x - phi)] = -(2/pi) 2.55 cos x."
        )
    if _close(value, 0.0, 0.1):
        return False, "Close to 0 would mean a flat average; with phases in [0, pi] it is not."
    if _close(value, -target, 0.1):
        return False, "Right size, wrong sign: sin(0 - phi) = -sin(phi)."
    return False, f"{value:.3g} is not it."


# -- chapter 2 -------------------------------------------------------------


def exercise_setup() -> tuple[nn.Module, Params, TaskBatch]:
    """The fixed model, parameters and tasks the chapter 2 and 3 exercises use.

    ``MLP(seed=0)``, its parameters, and 3 sinusoid tasks with 5 support and
    5 query points drawn with seed 3.
    """
    model = MLP(seed=0)
    batch = SinusoidTasks().sample(3, 5, generator=torch.Generator().manual_seed(3))
    return model, parameters_of(model), batch


def _check_params(answer: object, reference: Params, what: str) -> tuple[bool, str]:
    if not isinstance(answer, Mapping):
        return False, f"{what} must be a dict {{name: tensor}} with the keys of theta."
    if set(answer) != set(reference):
        return False, f"Use exactly the keys of theta: {sorted(reference)}."
    worst = 0.0
    for name, ref in reference.items():
        mine = answer[name]
        if not isinstance(mine, Tensor) or mine.shape != ref.shape:
            return False, f"{what}[{name!r}] must be a tensor of shape {list(ref.shape)}."
        worst = max(worst, (mine.detach() - ref).abs().max().item())
    if worst <= 1e-5:
        return True, f"Matches the library (largest difference {worst:.1e})."
    return False, f"Differs from the library by up to {worst:.3g}."


def _check_2_1(answer: object) -> tuple[bool, str]:
    model, theta, batch = exercise_setup()
    reference = adapt(model, theta, batch.support_x[0], batch.support_y[0], steps=1, lr=0.1)
    reference = {n: p.detach() for n, p in reference.items()}
    ok, message = _check_params(answer, reference, "phi")
    if not ok and isinstance(answer, Mapping) and set(answer) == set(theta):
        wrong_sign = {n: theta[n].detach() + (theta[n].detach() - reference[n]) for n in theta}
        if _check_params(answer, wrong_sign, "phi")[0]:
            return False, "You stepped *up* the gradient: phi = theta - alpha * grad."
    return ok, message


def _check_2_2(answer: object) -> tuple[bool, str]:
    value = _number(answer)
    if _close(value, -3.12, 1e-3):
        return True, "(1 - 0.1 * 4) * 2 * (0.4 - 3) = 0.6 * (-5.2) = -3.12."
    if _close(value, -5.2, 1e-3):
        return (
            False,
            "-5.2 is grad L_Q(phi) alone: the first-order (FOMAML) value. "
            "Multiply it by (1 - alpha H).",
        )
    if _close(value, -6.0, 1e-3):
        return False, "-6 is the query gradient at theta, not at the adapted phi."
    return False, f"{value:.4g} is not it."


def _check_2_3(answer: object) -> tuple[bool, str]:
    value = _number(answer)
    if value == 5:
        return True, (
            "One Hessian-vector product per inner step, per task: backpropagating through "
            "phi_(j+1) = phi_j - alpha grad L_S(phi_j) multiplies by (I - alpha H(phi_j))."
        )
    if value == 1:
        return False, "One would be right for one inner step; the chain rule passes every step."
    if value == 0:
        return False, "Zero is what FOMAML does; MAML keeps the second-order terms."
    return False, f"{value:g} is not it."


# -- chapter 3 -------------------------------------------------------------


def _check_3_1(answer: object) -> tuple[bool, str]:
    model, theta, batch = exercise_setup()
    reference = meta_gradient(
        model, theta, batch, algorithm="reptile", inner_steps=5, inner_lr=0.02
    )
    ok, message = _check_params(answer, reference, "direction")
    if not ok and isinstance(answer, Mapping) and set(answer) == set(theta):
        negated = {n: -reference[n] for n in reference}
        if _check_params(answer, negated, "direction")[0]:
            return (
                False,
                "Sign: Reptile's direction is theta - mean(phi), "
                "so theta - eps * g moves toward phi.",
            )
    return ok, message


def _check_3_2(answer: object) -> tuple[bool, str]:
    if not callable(answer):
        return False, "Pass your function itself, e.g. check('3.2', my_cosine)."
    gen = torch.Generator().manual_seed(0)
    a = {"w": torch.randn(3, 2, generator=gen), "b": torch.randn(2, generator=gen)}
    b = {"w": torch.randn(3, 2, generator=gen), "b": torch.randn(2, generator=gen)}
    cases = [(a, b), (a, a), (a, {n: -2 * t for n, t in a.items()})]
    for x, y in cases:
        try:
            value = _number(answer(x, y), "your function's result")
        except Exception as error:  # the learner's code: report, don't crash
            return False, f"Your function raised {type(error).__name__}: {error}"
        expected = cosine_similarity(x, y)
        if not _close(value, expected, 1e-5):
            return (
                False,
                f"For one test pair it returned {value:.4f}; the cosine is {expected:.4f}.",
            )
    return (
        True,
        "Right on all test pairs, including a vector with itself (1) "
        "and with -2 times itself (-1).",
    )


# -- chapter 5 -------------------------------------------------------------


def _check_5_1(answer: object) -> tuple[bool, str]:
    if isinstance(answer, Tensor):
        return False, "That is a tensor; the question asks for its shape (use .shape)."
    try:
        shape = tuple(int(s) for s in answer)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return False, f"Give the shape as a tuple of ints (or a torch.Size), got {answer!r}."
    if shape == (2, 20, 1, 8, 8):
        return True, "2 episodes x (5 classes x 4 query images), each image 1 x 8 x 8."
    if shape == (2, 4, 1, 8, 8):
        return False, "`queries` counts images *per class*; an episode has N of them."
    if len(shape) != 5:
        return False, "The query images are [episodes, images, channels, height, width]."
    return False, f"{shape} is not it."


def chapter5_exercise_accuracies() -> Tensor:
    """Per-episode accuracies of 500 made-up test episodes (25 queries each) for exercise 5.3."""
    generator = torch.Generator().manual_seed(5)
    return torch.randint(12, 26, (500,), generator=generator).to(torch.float64) / 25


def _check_5_3(answer: object) -> tuple[bool, str]:
    try:
        mean, half_width = (float(v) for v in answer)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return False, f"Give a pair (mean, half_width) of numbers, got {answer!r}."
    acc = chapter5_exercise_accuracies()
    target_mean = acc.mean().item()
    target_ci = ci95(acc).item()
    if abs(mean - target_mean) > 1e-4:
        return False, f"The mean is off: {mean:.4f}."
    if abs(half_width - target_ci) <= 2e-4:
        return True, f"{target_mean:.3f} ± {target_ci:.3f}, as every accuracy here is reported."
    if abs(half_width - 1.96 * acc.std().item()) < 1e-3:
        return False, "That is 1.96 standard deviations of one episode; divide by sqrt(500)."
    return False, f"The half-width is off: {half_width:.4f}."


EXERCISES: dict[str, Exercise] = {
    "1.1": Exercise(
        "Sample 4 tasks with K = 5 shots and 20 query points. What is query_y's shape?",
        _check_1_1,
        [
            "Every tensor of a TaskBatch is [tasks, points, features].",
            "The query tensors have `queries` points, the support tensors `shots`.",
        ],
        "batch = SinusoidTasks().sample(4, 5, 20, generator=torch.Generator().manual_seed(0))\n"
        "batch.query_y.shape  # torch.Size([4, 20, 1])",
    ),
    "1.2": Exercise(
        "Estimate the average task's value at x = 0 (average over many sinusoid tasks).",
        _check_1_2,
        [
            "SinusoidTasks().sample_functions(n, generator=...) gives n functions; call it "
            "on x = torch.zeros(1, 1, dtype=torch.float64) and average.",
            "Amplitude and phase are independent: E[A sin(0 - phi)] = -E[A] E[sin phi], "
            "with A ~ U[0.1, 5] and phi ~ U[0, pi].",
        ],
        "gen = torch.Generator().manual_seed(0)\n"
        "fns = SinusoidTasks().sample_functions(100_000, generator=gen)\n"
        "fns(torch.zeros(1, 1, dtype=torch.float64)).mean()  # about -(2/pi) * 2.55 = -1.62",
    ),
    "1.3": choice_exercise(
        Question(
            "At meta-test time, what may the model use to adapt to a new task?",
            ["the support set only", "the query set only", "both"],
            key={"A"},
            explanations={
                "A": "Only the support set may be used to adapt; the query set judges the "
                "adapted model, like a test set, and at meta-test time its labels are unknown.",
                "B": "Adapting on the query set would grade the model on the data it fit.",
                "C": "If the query labels were used to adapt, the query loss would be no test.",
            },
        ),
        [
            "Which of the two sets is used to *measure* how well the adapted model does?",
            "A measurement on the data you just fit says little about new points.",
        ],
        "'a': adapt on the support set, judge on the query set.",
    ),
    "2.1": Exercise(
        "With model, theta, batch = exercise_setup(), take ONE inner step on task 0's "
        "support set with alpha = 0.1 by hand (torch.autograd.grad or torch.func.grad, "
        "not adapt) and pass the adapted dict phi.",
        _check_2_1,
        [
            "loss = task_loss(model, theta, batch.support_x[0], batch.support_y[0]) gives "
            "L_S(theta); torch.autograd.grad(loss, list(theta.values())) its gradient.",
            "phi = {name: theta[name] - 0.1 * g for (name, g) in zip(theta, grads)}",
        ],
        "loss = task_loss(model, theta, batch.support_x[0], batch.support_y[0])\n"
        "grads = torch.autograd.grad(loss, list(theta.values()))\n"
        "phi = {n: theta[n] - 0.1 * g for n, g in zip(theta, grads)}",
    ),
    "2.2": Exercise(
        "One parameter theta = 0, support loss L_S(t) = 2 (t - 1)^2, query loss "
        "L_Q(t) = (t - 3)^2, alpha = 0.1. What is MAML's one-step meta-gradient?",
        _check_2_2,
        [
            "First phi = theta - alpha * L_S'(theta) with L_S'(t) = 4 (t - 1).",
            "Then multiply L_Q'(phi) = 2 (phi - 3) by (1 - alpha * L_S''(theta)), where L_S'' = 4.",
        ],
        "phi = 0 - 0.1 * 4 * (0 - 1) = 0.4; L_Q'(phi) = 2 (0.4 - 3) = -5.2;\n"
        "meta-gradient = (1 - 0.1 * 4) * (-5.2) = -3.12",
    ),
    "2.3": Exercise(
        "MAML with 5 inner steps: how many Hessian-vector products per task does one "
        "meta-gradient need (backpropagating through the inner loop)?",
        _check_2_3,
        [
            "Write phi_(j+1) = phi_j - alpha grad L_S(phi_j) and take d phi_(j+1) / d phi_j.",
            "Each step contributes one factor (I - alpha H_j); multiplying a vector by it "
            "costs one Hessian-vector product.",
        ],
        "5: one per inner step (chapter 3 measures what that costs).",
    ),
    "3.1": Exercise(
        "With model, theta, batch = exercise_setup(), compute Reptile's direction for the "
        "3 tasks with 5 inner steps and alpha = 0.02, using adapt() once per task.",
        _check_3_1,
        [
            "phi_i = adapt(model, theta, batch.support_x[i], batch.support_y[i], steps=5, "
            "lr=0.02) for i in 0, 1, 2.",
            "direction[name] = theta[name] - the mean over tasks of phi_i[name].",
        ],
        "phis = [adapt(model, theta, batch.support_x[i], batch.support_y[i], steps=5, lr=0.02)\n"
        "        for i in range(3)]\n"
        "direction = {n: theta[n] - sum(p[n] for p in phis) / 3 for n in theta}",
    ),
    "3.2": Exercise(
        "Write my_cosine(a, b) for two parameter dicts: the cosine of the angle between "
        "them as one long vector. Pass the function itself.",
        _check_3_2,
        [
            "Flatten: torch.cat([t.reshape(-1) for t in a.values()]) (same key order for b).",
            "cosine = (u @ v) / (|u| |v|); .item() turns it into a number.",
        ],
        "def my_cosine(a, b):\n"
        "    u = torch.cat([a[n].reshape(-1) for n in a])\n"
        "    v = torch.cat([b[n].reshape(-1) for n in a])\n"
        "    return (u @ v / (u.norm() * v.norm())).item()",
    ),
    "3.3": choice_exercise(
        Question(
            "Reptile with ONE inner step moves theta along:",
            [
                "MAML's meta-gradient",
                "the gradient of the support loss at theta",
                "the query-loss gradient at phi",
            ],
            key={"B"},
            explanations={
                "A": "MAML's gradient involves the query loss at phi; one Reptile step never "
                "sees it.",
                "B": "With one step, theta - phi = alpha * grad L_S(theta): the gradient of the "
                "support loss at theta, i.e. ordinary training on all tasks, as Nichol et al. "
                "(2018) note. Reptile needs two or more inner steps to differ from it.",
                "C": "Reptile adapts on the support set and never differentiates a query loss.",
            },
        ),
        [
            "Write theta - phi for phi = theta - alpha grad L_S(theta).",
            "Which loss, evaluated where, appears in that difference?",
        ],
        "'b': theta - phi = alpha grad L_S(theta), plain training on the tasks' points.",
    ),
    "5.1": Exercise(
        "With tasks = FewShotTasks(meta_test, ways=5), sample 2 episodes with 3 shots and "
        "4 queries per class. What is query_x's shape?",
        _check_5_1,
        [
            "An episode holds N classes; shots and queries count images per class.",
            "Images keep their own shape [channels, height, width] = [1, 8, 8].",
        ],
        "tasks.sample(2, 3, 4, generator=torch.Generator().manual_seed(0)).query_x.shape\n"
        "# torch.Size([2, 20, 1, 8, 8])",
    ),
    "5.2": choice_exercise(
        Question(
            "Before adaptation (0 steps) every method scores about 20% on 5-way episodes. Why?",
            [
                "the networks are untrained",
                "labels are assigned to classes at random in each episode",
                "a bug in the evaluation",
            ],
            key={"B"},
            explanations={
                "A": "The meta-learned networks are trained, yet they too start at 20%.",
                "B": "Labels are assigned to classes at random in every episode, so before "
                "seeing the support set no network can know which label means which class: "
                "1/N on average.",
                "C": "It is exactly what the maths predicts; no bug needed.",
            },
        ),
        [
            "Is label 0 the same class in two different episodes?",
            "What could a fixed network, which has not seen the support set, know about "
            "which class got which label?",
        ],
        "'b': the label of a class is drawn anew in every episode, so only the support set "
        "can tell the network which label is which; any fixed guess is right 1 time in N.",
    ),
    "5.3": Exercise(
        "acc = chapter5_exercise_accuracies() holds the accuracies of 500 test episodes. "
        "Give (mean, half-width of the 95% confidence interval), as evaluate() reports them.",
        _check_5_3,
        [
            "The interval is mean ± 1.96 standard errors.",
            "standard error = acc.std() / sqrt(number of episodes).",
        ],
        "mean = acc.mean().item()\nhalf_width = 1.96 * acc.std().item() / len(acc) ** 0.5",
    ),
}

#: The course's exercises with this kernel's progress through them.
COURSE = SelfCheck(EXERCISES)
check = COURSE.check
hint = COURSE.hint
solution = COURSE.solution
solved = COURSE.solved
reset_progress = COURSE.reset
