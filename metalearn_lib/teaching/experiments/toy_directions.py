"""A two-parameter toy problem on which MAML's, FOMAML's and Reptile's directions are drawn (ch. 3).

Every task is linear regression without bias, ``y = c_i . x``, on two inputs:
the model is ``nn.Linear(2, 1, bias=False)``, so the meta-parameters theta
are a point in the plane, and each task's loss is a quadratic bowl around its
optimum ``c_i``. The support and query sets are the same two input points,
scaled along two perpendicular directions that differ from task to task,
so each task's bowl is elongated differently: its curvature (the Hessian of
the support loss) has the eigenvalues ``curvature`` and ``curvature / ratio``.

The directions come from the library's own registry (:func:`meta_gradient`),
so the picture shows exactly what the chapters train with. For one task,
k inner steps give ``phi = c + (I - alpha H)^k (theta - c)``, and

* MAML: ``(I - alpha H)^k H (phi - c)``;
* FOMAML: ``H (phi - c)`` (the factor ``(I - alpha H)^k`` dropped);
* Reptile: ``theta - phi = (I - (I - alpha H)^k) (theta - c)``.

When ``alpha`` times the largest curvature is small, ``(I - alpha H)^k`` is
close to ``I`` and the three point the same way; as it grows, they part.
Nothing here draws; :mod:`metalearn_lib.teaching.figures_directions` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...algorithms import meta_gradient
from ...checks import check_int
from ...tasks import TaskBatch
from ..gradients import cosine_similarity

__all__ = ["TOY_ALGORITHMS", "ToyProblem", "toy_cosines", "toy_directions", "toy_problem"]

#: The algorithms compared on the toy problem, MAML first (the reference of the cosines).
TOY_ALGORITHMS = ("maml", "fomaml", "reptile")


@dataclass(frozen=True)
class ToyProblem:
    """A batch of two-parameter regression tasks and a starting point theta.

    Attributes
    ----------
    model : nn.Module
        ``nn.Linear(2, 1, bias=False)`` in float64.
    theta : dict of str to Tensor
        The starting point, ``{"weight": [1, 2]}``.
    batch : TaskBatch
        ``[B, 2, 2]`` inputs; query set = support set.
    optima : Tensor
        ``[B, 2]``: each task's optimum ``c_i`` (zero loss there).
    hessians : Tensor
        ``[B, 2, 2]``: the Hessian of each task's support loss (constant: the loss is quadratic).
    """

    model: nn.Module
    theta: dict[str, Tensor]
    batch: TaskBatch
    optima: Tensor
    hessians: Tensor

    @property
    def max_curvature(self) -> float:
        """The largest eigenvalue of all tasks' Hessians: ``alpha`` times it decides the picture."""
        return torch.linalg.eigvalsh(self.hessians).max().item()

    @property
    def point(self) -> Tensor:
        """Theta as a point ``[2]``."""
        return self.theta["weight"][0]


def toy_problem(
    num_tasks: int = 3,
    *,
    curvature: float = 4.0,
    ratio: float = 8.0,
    theta: Sequence[float] = (0.0, 0.0),
    seed: int = 0,
) -> ToyProblem:
    """Seeded two-parameter tasks: optima around the origin, bowls elongated in random directions.

    Parameters
    ----------
    num_tasks : int
        Number of tasks (at least 1).
    curvature : float
        The largest eigenvalue of every task's Hessian (> 0).
    ratio : float
        Largest over smallest eigenvalue (>= 1): how elongated each bowl is.
    theta : pair of float
        The starting point.
    seed : int
        Draws the optima (normal, scale 1.5) and the bowls' orientations.
    """
    check_int("num_tasks", num_tasks, 1)
    _check_number("curvature", curvature, 0.0, "> 0", strict=True)
    _check_number("ratio", ratio, 1.0, ">= 1", strict=False)
    if len(theta) != 2:
        raise ValueError(f"theta must be a pair of numbers, got {theta!r}")
    generator = torch.Generator().manual_seed(seed)
    optima = 1.5 * torch.randn(num_tasks, 2, generator=generator, dtype=torch.float64)
    angles = math.pi * torch.rand(num_tasks, generator=generator, dtype=torch.float64)
    across = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)  # [B, 2]
    along = torch.stack([-torch.sin(angles), torch.cos(angles)], dim=-1)
    # Two points x_1 = sqrt(l_1) u and x_2 = sqrt(l_2) v: the library's MSE (mean over the two
    # points) has the Hessian 2/2 sum_j x_j x_j^T = l_1 u u^T + l_2 v v^T.
    x = torch.stack([math.sqrt(curvature) * across, math.sqrt(curvature / ratio) * along], dim=1)
    y = x @ optima.unsqueeze(-1)  # [B, 2, 1]: zero loss at c_i
    hessians = 2 * x.transpose(1, 2) @ x / x.shape[1]
    model = nn.Linear(2, 1, bias=False).double()
    start = {"weight": torch.tensor([list(map(float, theta))], dtype=torch.float64)}
    return ToyProblem(model, start, TaskBatch(x, y, x, y), optima, hessians)


def _check_number(name: str, value, low: float, accepted: str, *, strict: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number {accepted}, got {type(value).__name__}")
    if value < low or (strict and value == low):
        raise ValueError(f"{name} must be a number {accepted}, got {value!r}")


def toy_directions(problem: ToyProblem, *, inner_steps: int, inner_lr: float) -> dict[str, Tensor]:
    """Each algorithm's meta-update direction at theta, a ``[2]`` tensor (the step is minus it)."""
    if not isinstance(problem, ToyProblem):
        raise TypeError(f"problem must be a ToyProblem, got {type(problem).__name__}")
    return {
        name: meta_gradient(
            problem.model,
            problem.theta,
            problem.batch,
            algorithm=name,
            inner_steps=inner_steps,
            inner_lr=inner_lr,
            compile=False,  # two parameters: compiling would cost more than it saves
        )["weight"][0]
        for name in TOY_ALGORITHMS
    }


def toy_cosines(
    problem: ToyProblem, *, inner_steps: int, inner_lrs: Sequence[float]
) -> dict[str, list[float]]:
    """Cosine of FOMAML's and Reptile's direction with MAML's, for each inner learning rate."""
    if not len(inner_lrs):
        raise ValueError("inner_lrs must hold at least one learning rate")
    cosines: dict[str, list[float]] = {name: [] for name in TOY_ALGORITHMS[1:]}
    for lr in inner_lrs:
        directions = toy_directions(problem, inner_steps=inner_steps, inner_lr=lr)
        maml = {"w": directions["maml"]}
        for name in cosines:
            cosines[name].append(cosine_similarity(maml, {"w": directions[name]}))
    return cosines
