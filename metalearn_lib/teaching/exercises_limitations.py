"""The "check yourself" exercises of chapter 4 (the limitations of MAML).

The same self-check system as the other chapters
(:class:`~metalearn_lib.teaching.selfcheck.SelfCheck`): ``check("4.1", answer)``
says whether an answer is right and, if not, what is wrong and the next hint;
``hint("4.1")`` and ``solution("4.1")`` as elsewhere. :data:`LIMITATIONS` holds
this kernel's progress (:func:`reset_progress` forgets it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from ..algorithms import meta_gradient
from ..checks import Params
from ..grading.quiz import Question
from ..models import MLP, parameters_of
from ..tasks import SinusoidTasks, TaskBatch
from .selfcheck import Exercise, SelfCheck, choice_exercise

__all__ = [
    "EXERCISES",
    "LIMITATIONS",
    "check",
    "group_setup",
    "hint",
    "reset_progress",
    "solution",
    "solved",
]


def group_setup() -> tuple[torch.nn.Module, Params, TaskBatch]:
    """The fixed model, parameters and 10 tasks of exercise 4.2 (seed 4, K = 10, 10 queries)."""
    model = MLP(seed=0)
    batch = SinusoidTasks().sample(10, 10, 10, generator=torch.Generator().manual_seed(4))
    return model, parameters_of(model), batch


def _check_4_1(answer: object) -> tuple[bool, str]:
    if isinstance(answer, Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, int | float):
        raise TypeError(f"answer must be a number, got {type(answer).__name__}")
    value = float(answer)
    if math.isfinite(value) and abs(value - 1024) <= 1:
        return True, (
            "Each step multiplies the error along that direction by 1 - 0.1 * 30 = -2: after "
            "10 steps by (-2)^10 = 1024. One step (what training used) only flips and doubles it."
        )
    if math.isfinite(value) and abs(abs(value) - 2) <= 0.01:
        return False, "That is the factor of ONE step; the question asks about 10 steps."
    return False, f"{value:g} is not it."


def _check_4_2(answer: object) -> tuple[bool, str]:
    model, theta, batch = group_setup()
    if not isinstance(answer, Mapping):
        return False, "Pass a dict {name: tensor} with the keys of theta."
    if set(answer) != set(theta):
        return False, f"Use exactly the keys of theta: {sorted(theta)}."
    full = meta_gradient(model, theta, batch, algorithm="maml", inner_steps=1, inner_lr=0.01)
    worst = 0.0
    for name, ref in full.items():
        mine = answer[name]
        if not isinstance(mine, Tensor) or mine.shape != ref.shape:
            return False, f"answer[{name!r}] must be a tensor of shape {list(ref.shape)}."
        worst = max(worst, (mine.detach() - ref).abs().max().item())
    if worst <= 1e-5:
        return True, (
            f"Equal to the 10-task meta-gradient (largest difference {worst:.1e}): the "
            "meta-gradient is a mean over tasks, so groups weighted by their size give the "
            "same result with a third of the tasks in memory at once."
        )
    g1 = meta_gradient(model, theta, batch[:3], algorithm="maml", inner_steps=1, inner_lr=0.01)
    g2 = meta_gradient(model, theta, batch[3:], algorithm="maml", inner_steps=1, inner_lr=0.01)
    unweighted = {n: (g1[n] + g2[n]) / 2 for n in g1}
    if all((answer[n].detach() - unweighted[n]).abs().max().item() <= 1e-5 for n in g1):
        return False, "That is the plain average of the two groups; weight each by its size."
    return False, f"Differs from the 10-task meta-gradient by up to {worst:.3g}."


EXERCISES: dict[str, Exercise] = {
    "4.1": Exercise(
        "MAML was trained with ONE inner step of alpha = 0.1. A test task's support loss has "
        "curvature h = 30 along a direction its support set excites. By what factor is the "
        "error along that direction multiplied after 10 inner steps at test time?",
        _check_4_1,
        [
            "Near that direction the loss is (h/2) e^2, so one step maps e to e - alpha h e.",
            "The factor of one step is (1 - alpha h); ten steps apply it ten times.",
        ],
        "(1 - 0.1 * 30) ** 10  # (-2)^10 = 1024: it grows, since alpha h = 3 > 2",
    ),
    "4.2": Exercise(
        "With model, theta, batch = group_setup() (10 tasks), compute MAML's meta-gradient "
        "(1 inner step, inner_lr 0.01) from TWO calls of meta_gradient, on batch[:3] and "
        "batch[3:], so that it equals the one on all 10 tasks. Pass the combined dict.",
        _check_4_2,
        [
            "meta_gradient returns the MEAN over the batch's tasks.",
            "Weight each group's mean by its share of the tasks: 3/10 and 7/10.",
        ],
        "g1 = meta_gradient(model, theta, batch[:3], algorithm='maml', inner_steps=1, "
        "inner_lr=0.01)\n"
        "g2 = meta_gradient(model, theta, batch[3:], algorithm='maml', inner_steps=1, "
        "inner_lr=0.01)\n"
        "combined = {n: 0.3 * g1[n] + 0.7 * g2[n] for n in g1}",
    ),
    "4.3": choice_exercise(
        Question(
            "Meta-training with SGD at meta learning rate 0.3 turned the weights into NaN "
            "(section 5), while the inner loop alone was fine. What is the usual first fix?",
            [
                "a larger meta learning rate",
                "a smaller meta learning rate (or clipping the meta-gradient's norm)",
                "more inner steps",
            ],
            key={"B"},
            explanations={
                "A": "A larger outer step overshoots even more; the tuning run diverged at the "
                "largest rate, not the smallest.",
                "B": "The outer step was too large for the meta-loss's curvature: a smaller "
                "rate (section 5: SGD learned at 0.1 and 0.03) or a cap on the meta-gradient's "
                "norm keeps each update bounded.",
                "C": "More inner steps make the meta-gradient larger and less stable, not smaller.",
            },
        ),
        [
            "Which setting changed between SGD's runs that learned and the one that diverged?",
            "Gradient descent on a curved loss diverges when its step is too large.",
        ],
        "'b': make the outer step smaller, by the rate or by clipping the meta-gradient.",
    ),
    "4.4": choice_exercise(
        Question(
            "A MAML initialization adapts well to sines with amplitudes in [0.1, 5] and inputs "
            "in [-5, 5]. What do you expect on tasks whose inputs lie in [5, 10] (section 3)?",
            [
                "the same loss: adaptation fixes whatever is new",
                "a worse loss: the start was never shaped for those inputs",
                "a loss of exactly zero",
            ],
            key={"B"},
            explanations={
                "A": "A few steps from a start meta-learned on other inputs need not reach a good "
                "fit; section 3 measures how much worse it is.",
                "B": "MAML optimizes the start for the training distribution only; outside it, "
                "the few adaptation steps start from a point shaped for other tasks.",
                "C": "Nothing makes the loss vanish; a few steps on 10 points rarely fit exactly.",
            },
        ),
        [
            "Which tasks did meta-training average over?",
            "Does the meta-objective say anything about inputs it never saw?",
        ],
        "'b': tasks outside the meta-training distribution adapt worse (section 3).",
    ),
}

#: Chapter 4's exercises with this kernel's progress through them.
LIMITATIONS = SelfCheck(EXERCISES)
check = LIMITATIONS.check
hint = LIMITATIONS.hint
solution = LIMITATIONS.solution
solved = LIMITATIONS.solved
reset_progress = LIMITATIONS.reset
