"""Figures of chapter 3's toy picture: the update directions on a two-parameter problem.

* :func:`plot_toy_directions` - theta, each task's optimum and loss bowl, and each
  algorithm's update direction as an arrow;
* :func:`plot_toy_cosines` - the cosine of FOMAML's and Reptile's direction with MAML's
  against ``alpha`` times the largest curvature.

The numbers come from :mod:`metalearn_lib.teaching.experiments.toy_directions`;
these functions only draw them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from matplotlib.axes import Axes
from torch import Tensor

from ..algorithms import algorithm_label
from .experiments.toy_directions import ToyProblem
from .figures import algorithm_color, axes_or_new

#: Colour of the tasks' optima and bowls.
TASK_COLOR = "0.55"


def _bowl(center: Tensor, hessian: Tensor, level: float, points: int = 100) -> Tensor:
    """``[points, 2]``: the ellipse where the quadratic loss ``1/2 d^T H d`` equals ``level``."""
    values, vectors = torch.linalg.eigh(hessian)
    t = torch.linspace(0, 2 * math.pi, points, dtype=hessian.dtype)
    circle = torch.stack([torch.cos(t), torch.sin(t)], dim=-1)
    return center + (circle * torch.sqrt(2 * level / values)) @ vectors.T


def plot_toy_directions(
    problem: ToyProblem,
    directions: Mapping[str, Tensor],
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Theta, the tasks' optima with one level set each, and every algorithm's update arrow.

    Arrows show the update ``-direction``, all drawn with the same length: the
    cosines compare directions, not step sizes (Reptile's is about ``alpha k``
    times shorter).

    Parameters
    ----------
    problem : ToyProblem
        From :func:`~metalearn_lib.teaching.experiments.toy_directions.toy_problem`.
    directions : dict of str to Tensor
        Algorithm name -> direction ``[2]`` (:func:`toy_directions`).
    """
    if not isinstance(problem, ToyProblem):
        raise TypeError(f"problem must be a ToyProblem, got {type(problem).__name__}")
    if not isinstance(directions, Mapping) or not directions:
        raise TypeError("directions must be a non-empty dict {algorithm: Tensor of shape [2]}")
    ax = axes_or_new(ax, figsize=(4.5, 4.5))
    theta = problem.point
    for i, (center, hessian) in enumerate(zip(problem.optima, problem.hessians)):
        bowl = _bowl(center, hessian, level=0.5)
        ax.plot(bowl[:, 0], bowl[:, 1], color=TASK_COLOR, lw=0.8)
        ax.plot(*center.tolist(), "x", color=TASK_COLOR, ms=8, mew=2)
        ax.annotate(
            f"task {i + 1}",
            center.tolist(),
            textcoords="offset points",
            xytext=(5, 5),
            fontsize="small",
            color=TASK_COLOR,
        )
    span = (problem.optima - theta).abs().max().item()
    length = 0.6 * span
    for i, (name, direction) in enumerate(directions.items()):
        width = max(4.5 - 1.4 * i, 1.5)  # later arrows thinner, so coinciding arrows stay visible
        norm = direction.norm().item()
        if norm == 0:
            continue
        step = -direction / norm * length
        ax.annotate(
            "",
            xy=(theta + step).tolist(),
            xytext=theta.tolist(),
            arrowprops=dict(arrowstyle="-|>", color=algorithm_color(name, i), lw=width),
        )
        ax.plot([], [], color=algorithm_color(name, i), lw=width, label=algorithm_label(name))
    ax.plot(*theta.tolist(), "o", color="black", ms=7, label=r"$\theta$")
    ax.plot([], [], "x", color=TASK_COLOR, label="task optima (and a level set)")
    limit = 1.3 * span
    ax.set(
        xlim=(theta[0].item() - limit, theta[0].item() + limit),
        ylim=(theta[1].item() - limit, theta[1].item() + limit),
        aspect="equal",
    )
    ax.set_xlabel(r"parameter $\theta_1$")
    ax.set_ylabel(r"parameter $\theta_2$")
    ax.legend(fontsize="x-small", loc="upper left", framealpha=0.6)
    ax.set_title(title or "Update directions at theta (equal lengths)")
    return ax


def plot_toy_cosines(
    inner_lrs: Sequence[float],
    cosines: Mapping[str, Sequence[float]],
    *,
    max_curvature: float,
    current: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Cosine with MAML's direction against ``alpha`` times the largest curvature.

    Parameters
    ----------
    inner_lrs : sequence of float
        The inner learning rates ``alpha`` the cosines were measured at.
    cosines : dict of str to sequence of float
        Algorithm -> one cosine per entry of ``inner_lrs`` (:func:`toy_cosines`).
    max_curvature : float
        The problem's largest Hessian eigenvalue; the x axis is ``alpha`` times it.
    current : float, optional
        The learning rate shown now: a vertical line.
    """
    if not isinstance(cosines, Mapping) or not cosines:
        raise TypeError("cosines must be a non-empty dict {algorithm: list of cosines}")
    for name, values in cosines.items():
        if len(values) != len(inner_lrs):
            raise ValueError(
                f"cosines[{name!r}] has {len(values)} values for {len(inner_lrs)} inner_lrs"
            )
    ax = axes_or_new(ax)
    x = [lr * max_curvature for lr in inner_lrs]
    for i, (name, values) in enumerate(cosines.items()):
        ax.plot(
            x,
            values,
            marker=".",
            color=algorithm_color(name, i),
            label=f"{algorithm_label(name)} vs MAML",
        )
    ax.axhline(1.0, color="gray", lw=0.8, ls=":")
    ax.axhline(0.0, color="gray", lw=0.8, ls=":")
    if current is not None:
        ax.axvline(current * max_curvature, color="black", lw=1, ls="--", label="now")
    ax.set(
        xlabel=r"$\alpha$ times the largest curvature",
        ylabel="cosine with MAML's direction",
        ylim=(-1.05, 1.05),
    )
    ax.legend(fontsize="x-small", loc="lower left")
    ax.set_title(title or "Directions part as alpha x curvature grows")
    return ax
