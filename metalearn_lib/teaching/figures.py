"""Matplotlib figures used by the course chapters.

Every function draws on a given ``ax`` (or makes a new figure when ``ax`` is
``None``), labels its axes, and returns the axes it drew on, so a notebook
cell stays one line and a test can read the plotted data back with
``ax.get_lines()``.

The chapters use:

* :func:`plot_tasks` - a few sampled functions with their support and query points;
* :func:`plot_fits` - one task, its support points, and several models' predictions;
* :func:`plot_adaptation_curve` - loss against the number of inner steps;
* :func:`plot_evaluations` - post-adaptation loss (with 95% intervals) of several models;
* :func:`plot_learning_curves` - meta-training loss of several runs side by side;
* :func:`plot_step_cost` - time and peak memory of one meta-step against inner steps.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from torch import Tensor, nn
from torch.func import functional_call

from ..algorithms import ALGORITHMS, algorithm_label
from ..tasks import TaskBatch
from ..training import Evaluation, History

__all__ = [
    "BASELINE_COLOR",
    "algorithm_color",
    "axes_or_new",
    "figure_png",
    "plot_adaptation_curve",
    "plot_evaluations",
    "plot_fits",
    "plot_learning_curves",
    "plot_step_cost",
    "plot_tasks",
    "plain_log_scale",
    "predict",
]

#: The colour of the pretrained baseline (labels starting with "pretrain").
BASELINE_COLOR = "tab:gray"


def axes_or_new(ax: Axes | None, figsize: tuple[float, float] = (6.0, 3.5)) -> Axes:
    """``ax`` itself, or the axes of a new figure of ``figsize`` when ``ax`` is None."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    elif not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _check_batch(batch: TaskBatch) -> None:
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be a TaskBatch, got {type(batch).__name__}")
    if batch.support_x.shape[-1] != 1:
        raise ValueError(
            f"batch must hold 1-D regression tasks (inputs [B, K, 1]), "
            f"got support_x {list(batch.support_x.shape)}"
        )


def _grid(batch: TaskBatch, points: int = 200) -> Tensor:
    low = min(batch.support_x.min().item(), batch.query_x.min().item(), -5.0)
    high = max(batch.support_x.max().item(), batch.query_x.max().item(), 5.0)
    return torch.linspace(low, high, points, dtype=batch.support_x.dtype).unsqueeze(-1)


def plain_log_scale(ax: Axes) -> None:
    """Log y axis labelled with plain numbers (0.5, 1, 2) instead of powers of ten."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(_label_2_3_5))


def _label_2_3_5(value: float, _position) -> str:
    if value <= 0:
        return ""
    leading = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if leading in (2, 3, 5) else ""


def predict(model: nn.Module, params: Mapping[str, Tensor], x: Tensor) -> Tensor:
    """The model's output at ``x`` with parameters ``params``, detached."""
    with torch.no_grad():
        buffers = dict(model.named_buffers())
        return functional_call(model, (dict(params), buffers), (x,)).detach()


def figure_png(figure: Figure, dpi: int = 80) -> bytes:
    """Render ``figure`` to PNG bytes (what the widgets show)."""
    if not isinstance(figure, Figure):
        raise TypeError(f"figure must be a matplotlib Figure, got {type(figure).__name__}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def plot_tasks(
    batch: TaskBatch,
    *,
    ax: Axes | None = None,
    max_tasks: int = 5,
    show_points: bool = True,
    title: str | None = None,
) -> Axes:
    """Draw the true functions of the first ``max_tasks`` tasks of ``batch``.

    Each task gets one colour: its curve (the true function), its support
    points (filled circles) and its query points (crosses).

    Parameters
    ----------
    batch : TaskBatch
        Regression tasks whose ``functions`` are known (from a task distribution).
    ax : Axes, optional
        Where to draw; a new figure if omitted.
    max_tasks : int
        How many tasks to draw (>= 1).
    show_points : bool
        Also draw the support and query points.
    title : str, optional
        Axes title.
    """
    _check_batch(batch)
    if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 1:
        raise ValueError(f"max_tasks must be an int >= 1, got {max_tasks!r}")
    if batch.functions is None:
        raise ValueError("batch.functions is None: plot_tasks needs tasks with known functions")
    ax = axes_or_new(ax)
    n = min(max_tasks, batch.num_tasks)
    x = _grid(batch)
    curves = batch.functions[list(range(n))](x.to(torch.float64))
    for i in range(n):
        color = f"C{i % 10}"
        ax.plot(x[:, 0], curves[i, :, 0], color=color, lw=1.5, label=f"task {i}")
        if show_points:
            ax.scatter(batch.support_x[i, :, 0], batch.support_y[i, :, 0], color=color, s=22)
            ax.scatter(
                batch.query_x[i, :, 0], batch.query_y[i, :, 0], color=color, marker="x", s=22
            )
    ax.set_xlabel("input x")
    ax.set_ylabel("output y")
    ax.set_title(title or f"{n} tasks: curves; support = dots, query = crosses")
    return ax


def plot_fits(
    model: nn.Module,
    predictions: Mapping[str, Mapping[str, Tensor]],
    batch: TaskBatch,
    *,
    task: int = 0,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """One task's true function, its support points, and several models' fits.

    Parameters
    ----------
    model : nn.Module
        The network shared by all parameter sets.
    predictions : dict of label to parameter dict
        E.g. ``{"MAML, 1 step": phi_maml, "pretrained, 1 step": phi_pre}``;
        each is drawn as one line.
    batch : TaskBatch
        Regression tasks with known functions.
    task : int
        Which task of the batch to draw.
    """
    _check_batch(batch)
    if not isinstance(predictions, Mapping) or not predictions:
        raise TypeError("predictions must be a non-empty dict {label: parameter dict}")
    if not isinstance(task, int) or not 0 <= task < batch.num_tasks:
        raise ValueError(f"task must be an int in [0, {batch.num_tasks}), got {task!r}")
    ax = axes_or_new(ax)
    x = _grid(batch)
    if batch.functions is not None:
        truth = batch.functions[task](x.to(torch.float64))[0, :, 0]
        ax.plot(x[:, 0], truth, color="black", lw=2, label="true function")
    ax.scatter(
        batch.support_x[task, :, 0],
        batch.support_y[task, :, 0],
        color="black",
        s=30,
        zorder=3,
        label=f"{batch.support_x.shape[1]} support points",
    )
    for label, params in predictions.items():
        ax.plot(x[:, 0], predict(model, params, x)[:, 0], lw=1.5, ls="--", label=label)
    ax.set_xlabel("input x")
    ax.set_ylabel("output y")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_adaptation_curve(
    losses: Mapping[str, Sequence[float]],
    *,
    ax: Axes | None = None,
    ylabel: str = "query loss (MSE)",
    title: str | None = None,
) -> Axes:
    """Loss against the number of inner steps, one line per label.

    ``losses[label][k]`` is the loss after ``k`` steps of adaptation.
    """
    if not isinstance(losses, Mapping) or not losses:
        raise TypeError("losses must be a non-empty dict {label: list of losses}")
    ax = axes_or_new(ax)
    for label, values in losses.items():
        values = [float(v) for v in values]
        ax.plot(range(len(values)), values, marker="o", ms=3, label=label)
    ax.set_xlabel("inner steps")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def algorithm_color(label: str, i: int = 0) -> str:
    """The colour of a curve labelled ``label``, the same in every chapter.

    A label whose first word is a registered algorithm (``"maml"``, ``"MAML,
    5 steps"``, ...) gets that algorithm's colour: matplotlib's ``C0``, ``C1``,
    ... in the order of :data:`~metalearn_lib.algorithms.ALGORITHMS`. A label
    starting with ``"pretrain"`` gets :data:`BASELINE_COLOR`; any other label
    the ``i``-th colour of the cycle.
    """
    words = label.lower().replace(",", " ").split()
    first = words[0] if words else ""
    names = [name.lower() for name in ALGORITHMS]
    if first in names:
        return f"C{names.index(first) % 10}"
    if first.startswith("pretrain"):
        return BASELINE_COLOR
    return f"C{i % 10}"


def _legend_label(name: str) -> str:
    """``"maml"`` -> ``"MAML"`` for registered algorithms; other labels unchanged."""
    return algorithm_label(name) if name in ALGORITHMS else name


def plot_evaluations(
    evaluations: Mapping[str, Evaluation],
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Mean query loss on fresh tasks against adaptation steps, with 95% intervals."""
    if not isinstance(evaluations, Mapping) or not evaluations:
        raise TypeError("evaluations must be a non-empty dict {label: Evaluation}")
    ax = axes_or_new(ax)
    for i, (label, ev) in enumerate(evaluations.items()):
        if not isinstance(ev, Evaluation):
            raise TypeError(f"evaluations[{label!r}] must be an Evaluation, got {type(ev)}")
        ax.errorbar(
            ev.steps,
            ev.mean,
            yerr=ev.ci95,
            marker="o",
            capsize=3,
            label=label,
            color=algorithm_color(label, i),
        )
    ax.set_xlabel("adaptation steps on the support set")
    ax.set_ylabel("query loss on fresh tasks (MSE)")
    ax.legend(fontsize="small")
    ax.set_title(title or "After adaptation (mean and 95% interval)")
    return ax


def plot_learning_curves(
    histories: Mapping[str, History],
    *,
    ax: Axes | None = None,
    x: str = "iteration",
    window: int = 50,
    title: str | None = None,
) -> Axes:
    """Meta-training loss of several runs, smoothed over ``window`` iterations.

    Parameters
    ----------
    histories : dict of label to History
        E.g. ``{"MAML": h1, "FOMAML": h2}``.
    x : {"iteration", "seconds"}
        Plot against iterations or against wall-clock seconds.
    """
    if not isinstance(histories, Mapping) or not histories:
        raise TypeError("histories must be a non-empty dict {label: History}")
    if x not in ("iteration", "seconds"):
        raise ValueError(f"x must be 'iteration' or 'seconds', got {x!r}")
    ax = axes_or_new(ax)
    for i, (label, history) in enumerate(histories.items()):
        if not isinstance(history, History):
            raise TypeError(f"histories[{label!r}] must be a History, got {type(history)}")
        xs = history.elapsed if x == "seconds" else range(1, len(history.loss) + 1)
        ax.plot(xs, history.smoothed(window), label=label, color=algorithm_color(label, i))
    ax.set_xlabel("meta-training iteration" if x == "iteration" else "seconds of training")
    ax.set_ylabel(f"query loss after adaptation\n(running mean of {window})")
    plain_log_scale(ax)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_step_cost(costs: Sequence, *, axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """Time and peak memory of one meta-step against inner steps, per algorithm.

    Parameters
    ----------
    costs : sequence of StepCost
        Results of :func:`metalearn_lib.cost.cost_sweep` (anything with
        ``algorithm``, ``inner_steps``, ``milliseconds`` and ``peak_bytes``).
    axes : pair of Axes, optional
        Where to draw time and memory; a new figure with two panels if omitted.

    Returns
    -------
    (Axes, Axes)
        The time panel and the memory panel.
    """
    costs = list(costs)
    if not costs:
        raise ValueError("costs must hold at least one measurement")
    for c in costs:
        if not all(hasattr(c, a) for a in ("algorithm", "inner_steps", "milliseconds")):
            raise TypeError(f"costs must hold StepCost records, got {type(c).__name__}")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9.0, 3.5), layout="constrained")
    time_ax, memory_ax = axes
    algorithms = list(dict.fromkeys(c.algorithm for c in costs))
    for i, algorithm in enumerate(algorithms):
        rows = sorted((c for c in costs if c.algorithm == algorithm), key=lambda c: c.inner_steps)
        steps = [c.inner_steps for c in rows]
        color = algorithm_color(algorithm, i)
        time_ax.plot(
            steps,
            [c.milliseconds for c in rows],
            marker="o",
            color=color,
            label=_legend_label(algorithm),
        )
        memory = [c.peak_bytes for c in rows]
        if all(m is not None and m >= 0 for m in memory):  # -1: not measured
            memory_ax.plot(
                steps,
                [m / 2**20 for m in memory],
                marker="o",
                color=color,
                label=_legend_label(algorithm),
            )
    time_ax.set_xlabel("inner steps")
    time_ax.set_ylabel("time of one meta-step (ms)")
    time_ax.set_title("Time")
    time_ax.legend(fontsize="small")
    memory_ax.set_xlabel("inner steps")
    memory_ax.set_ylabel("peak memory of one meta-step (MiB)")
    memory_ax.set_title("Peak memory")
    if memory_ax.get_lines():
        memory_ax.legend(fontsize="small")
    return time_ax, memory_ax
