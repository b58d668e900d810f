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

from ..tasks import TaskBatch
from ..training import Evaluation, History

__all__ = [
    "ALGORITHM_COLORS",
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

#: One colour per algorithm, the same in every chapter.
ALGORITHM_COLORS = {
    "maml": "tab:blue",
    "fomaml": "tab:orange",
    "reptile": "tab:green",
    "pretrain": "tab:gray",
    "pretrained": "tab:gray",
}


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.0, 3.5)) -> Axes:
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
    ax = _axes(ax)
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
    ax = _axes(ax)
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
    ax = _axes(ax)
    for label, values in losses.items():
        values = [float(v) for v in values]
        ax.plot(range(len(values)), values, marker="o", ms=3, label=label)
    ax.set_xlabel("inner steps")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def _color(label: str, i: int) -> str:
    return ALGORITHM_COLORS.get(label.lower().split()[0], f"C{i % 10}")


def plot_evaluations(
    evaluations: Mapping[str, Evaluation],
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Mean query loss on fresh tasks against adaptation steps, with 95% intervals."""
    if not isinstance(evaluations, Mapping) or not evaluations:
        raise TypeError("evaluations must be a non-empty dict {label: Evaluation}")
    ax = _axes(ax)
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
            color=_color(label, i),
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
    ax = _axes(ax)
    for i, (label, history) in enumerate(histories.items()):
        if not isinstance(history, History):
            raise TypeError(f"histories[{label!r}] must be a History, got {type(history)}")
        xs = history.elapsed if x == "seconds" else range(1, len(history.loss) + 1)
        ax.plot(xs, history.smoothed(window), label=label, color=_color(label, i))
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
        color = _color(algorithm, i)
        time_ax.plot(
            steps, [c.milliseconds for c in rows], marker="o", color=color, label=algorithm
        )
        memory = [c.peak_bytes for c in rows]
        if all(m is not None and m >= 0 for m in memory):  # -1: not measured
            memory_ax.plot(
                steps, [m / 2**20 for m in memory], marker="o", color=color, label=algorithm
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


# --- Chapter 4: limitations ---
# Figures for the experiments of metalearn_lib.experiments (helper E). Each takes
# the experiment's result object and returns the figure (or axes) it drew on.


def _ch4_figure(ncols: int, figsize: tuple[float, float], nrows: int = 1):
    figure, axes = plt.subplots(nrows, ncols, figsize=figsize, layout="constrained")
    return figure, axes


def _ch4_log_if_wide(ax: Axes, values: Sequence[float]) -> None:
    finite = [v for v in values if v == v and abs(v) != float("inf") and v > 0]
    if finite and max(finite) / min(finite) > 30:
        ax.set_yscale("log")


def plot_fit_curves(fits, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Held-out tasks before and after adaptation (from ``experiments.adapted_fits``).

    Each task gets one colour: its true function (solid), its support points
    (dots), the initialization's prediction (dotted, the same for every task)
    and the prediction after adaptation (dashed).
    """
    for name in ("x", "truth", "support_x", "support_y", "before", "after", "steps"):
        if not hasattr(fits, name):
            raise TypeError(f"fits must be a FitCurves (from adapted_fits), got {type(fits)}")
    ax = _axes(ax)
    ax.plot(fits.x, fits.before[0], color="gray", ls=":", lw=1.5, label="initialization")
    for i in range(fits.truth.shape[0]):
        color = f"C{i % 10}"
        ax.plot(fits.x, fits.truth[i], color=color, lw=1.8)
        ax.scatter(fits.support_x[i], fits.support_y[i], color=color, s=18, zorder=3)
        after = fits.after[i].clamp(-1e3, 1e3)
        ax.plot(fits.x, after, color=color, ls="--", lw=1.5)
    ax.plot([], [], color="black", lw=1.8, label="true function")
    ax.plot([], [], color="black", ls="--", lw=1.5, label=f"after {fits.steps} steps")
    low = min(fits.truth.min().item(), fits.support_y.min().item())
    high = max(fits.truth.max().item(), fits.support_y.max().item())
    pad = 0.25 * (high - low) + 0.5
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel("input x")
    ax.set_ylabel("output y")
    ax.legend(fontsize="x-small", loc="lower left")
    ax.set_title(title or f"held-out tasks, adapted for {fits.steps} steps")
    return ax


def plot_second_order_cost(result) -> Figure:
    """Experiment 1: cost of a meta-step, and the same-budget training runs.

    Top: time and peak memory of one meta-step against inner steps. Bottom:
    training loss against wall-clock seconds, and the loss on fresh tasks
    after adaptation.
    """
    if not hasattr(result, "costs") or not hasattr(result, "runs"):
        raise TypeError(f"result must come from cost_of_second_order, got {type(result)}")
    figure, axes = _ch4_figure(2, (10.0, 7.0), nrows=2)
    plot_step_cost(result.costs, axes=axes[0])
    histories = {a: run.history for a, run in result.runs.items()}
    window = max(1, min(25, len(next(iter(histories.values())).loss) // 5))
    plot_learning_curves(
        histories,
        ax=axes[1][0],
        x="seconds",
        window=window,
        title=f"training, {result.inner_steps} inner step(s): same iterations, different time",
    )
    plot_evaluations(
        {a: run.evaluation for a, run in result.runs.items()},
        ax=axes[1][1],
        title="after training: loss on fresh tasks",
    )
    return figure


def plot_diversity_sweep(
    sweep,
    *,
    axes: Sequence[Axes] | None = None,
    highlight=None,
) -> Sequence[Axes]:
    """Experiment 2: MAML and pretraining against task diversity, and MAML's advantage.

    Parameters
    ----------
    sweep : DiversitySweep
        From :func:`~metalearn_lib.experiments.diversity_sweep`.
    axes : pair of Axes, optional
        Where to draw the losses and the advantage.
    highlight : DiversityRun, optional
        One more run (e.g. the widget's) drawn as a star where it lands.

    Returns
    -------
    (Axes, Axes)
    """
    if not hasattr(sweep, "runs") or not hasattr(sweep, "advantages"):
        raise TypeError(f"sweep must come from diversity_sweep, got {type(sweep)}")
    if axes is None:
        _, axes = _ch4_figure(2, (10.0, 3.6))
    loss_ax, adv_ax = axes
    steps = sweep.settings.report_steps
    d = sweep.diversities
    maml, pre, adv = sweep.maml_losses(), sweep.pretrain_losses(), sweep.advantages()
    for label, values in (("MAML", maml), ("pretrain", pre)):
        loss_ax.errorbar(
            d,
            [m for m, _ in values],
            yerr=[c for _, c in values],
            marker="o",
            capsize=3,
            color=_color(label, 0),
            label=label,
        )
    adv_ax.axhline(0.0, color="black", lw=0.8)
    adv_ax.errorbar(
        d,
        [m for m, _ in adv],
        yerr=[c for _, c in adv],
        marker="o",
        capsize=3,
        color=ALGORITHM_COLORS["maml"],
        label="pretrain loss - MAML loss",
    )
    if highlight is not None:
        mean, _ = highlight.loss("maml")
        if highlight.is_sinusoid:
            loss_ax.plot(
                [highlight.diversity],
                [mean],
                marker="*",
                ms=16,
                color="crimson",
                ls="none",
                label="your run (MAML)",
            )
            if highlight.pretrain is not None:
                a, _ = highlight.advantage()
                adv_ax.plot(
                    [highlight.diversity], [a], marker="*", ms=16, color="crimson", ls="none"
                )
        else:
            loss_ax.axhline(mean, color="crimson", ls="--", label=f"your run: {highlight.label}")
            if highlight.pretrain is not None:
                adv_ax.axhline(highlight.advantage()[0], color="crimson", ls="--")
    _ch4_log_if_wide(loss_ax, [m for m, _ in maml + pre])
    loss_ax.set_xlabel("task diversity (0 = one task, 1 = MAML paper)")
    loss_ax.set_ylabel(f"query loss after {steps} steps")
    loss_ax.set_title("loss on fresh tasks (95% interval)")
    loss_ax.legend(fontsize="small")
    adv_ax.set_xlabel("task diversity (0 = one task, 1 = MAML paper)")
    adv_ax.set_ylabel("advantage of MAML")
    adv_ax.set_title("pretrain loss minus MAML loss (same tasks)")
    return loss_ax, adv_ax


def plot_family_comparison(result) -> Figure:
    """Experiment 3: one shared initialization against one per function family.

    Left: loss on each family's fresh tasks after adaptation. Right: one
    held-out task of each family, adapted from the shared and from the
    family's own initialization.
    """
    from .experiments import adapted_fits
    from ..tasks import FunctionFamilyTasks

    if not hasattr(result, "shared_on") or not hasattr(result, "specialists"):
        raise TypeError(f"result must come from dissimilar_families, got {type(result)}")
    families = result.families
    s = result.settings
    figure, axes = _ch4_figure(1 + len(families), (3.3 * (1 + len(families)), 3.4))
    bar_ax = axes[0]
    width = 0.38
    positions = range(len(families))
    for offset, label, evaluations, color in (
        (-width / 2, "shared (mixture)", [result.shared_on[f] for f in families], "tab:purple"),
        (
            width / 2,
            "own family",
            [result.specialists[f].evaluation for f in families],
            ALGORITHM_COLORS["maml"],
        ),
    ):
        values = [ev.at(s.report_steps) for ev in evaluations]
        bar_ax.bar(
            [p + offset for p in positions],
            [m for m, _ in values],
            width,
            yerr=[c for _, c in values],
            capsize=3,
            color=color,
            label=label,
        )
    bar_ax.set_xticks(list(positions), list(families))
    bar_ax.set_xlabel("test tasks from family")
    bar_ax.set_ylabel(f"query loss after {s.report_steps} steps")
    bar_ax.set_title("which initialization?")
    bar_ax.legend(fontsize="x-small")
    model = s.model()
    for ax, family in zip(axes[1:], families):
        tasks = FunctionFamilyTasks((family,))
        shared = adapted_fits(
            model,
            result.shared.params,
            tasks,
            num_tasks=1,
            steps=s.report_steps,
            inner_lr=s.inner_lr,
            shots=s.shots,
        )
        own = adapted_fits(
            model,
            result.specialists[family].params,
            tasks,
            num_tasks=1,
            steps=s.report_steps,
            inner_lr=s.inner_lr,
            shots=s.shots,
        )
        ax.plot(shared.x, shared.truth[0], color="black", lw=2, label="true function")
        ax.scatter(shared.support_x[0], shared.support_y[0], color="black", s=20, zorder=3)
        ax.plot(shared.x, shared.after[0], color="tab:purple", ls="--", label="from shared")
        ax.plot(own.x, own.after[0], color=ALGORITHM_COLORS["maml"], ls="--", label="from own")
        ax.set_xlabel("input x")
        ax.set_ylabel("output y")
        ax.set_title(f"a {family} task, {s.report_steps} steps")
        ax.legend(fontsize="x-small")
    return figure


def plot_drift(result) -> Figure:
    """Experiment 4: tasks of a drifting distribution, and what meta-training does to them.

    Left: tasks from the early and from the late distribution. Middle: loss
    on early and late tasks at each checkpoint of meta-training, with the
    drift period shaded. Right: the final initialization adapted to one
    early and one late task.
    """
    from .experiments import adapted_fits

    if not hasattr(result, "checkpoints") or not hasattr(result, "curve"):
        raise TypeError(f"result must come from nonstationary_drift, got {type(result)}")
    tasks, s = result.tasks, result.settings
    figure, (task_ax, curve_ax, fit_ax) = _ch4_figure(3, (12.0, 3.5))
    x = torch.linspace(-5, 5, 200, dtype=torch.float64).unsqueeze(-1)
    for which, when, color in (("early", 0, "tab:blue"), ("late", tasks.horizon, "tab:red")):
        functions = tasks.sample_functions(
            6, generator=torch.Generator().manual_seed(7), iteration=when
        )
        curves = functions(x)[..., 0]
        for i, curve in enumerate(curves):
            task_ax.plot(x[:, 0], curve, color=color, alpha=0.6, label=which if i == 0 else None)
    task_ax.set_xlabel("input x")
    task_ax.set_ylabel("output y")
    task_ax.set_title("tasks before and after the drift")
    task_ax.legend(fontsize="small")
    curve_ax.axvspan(result.warmup, result.drift_end, color="gold", alpha=0.25, label="drift")
    curve_ax.plot(
        result.checkpoints, result.curve("early"), marker="o", color="tab:blue", label="early tasks"
    )
    curve_ax.plot(
        result.checkpoints, result.curve("late"), marker="o", color="tab:red", label="late tasks"
    )
    curve_ax.set_xlabel("meta-training iteration")
    curve_ax.set_ylabel(f"query loss after {s.report_steps} steps")
    curve_ax.set_title("the initialization follows the drift")
    curve_ax.legend(fontsize="small")
    model = s.model()
    # The same seed draws the same amplitudes and phase offsets before and after the
    # drift, so the two tasks shown are one sine and its drifted self.
    drawn = {
        which: adapted_fits(
            model,
            result.params,
            tasks,
            num_tasks=8,
            steps=s.report_steps,
            inner_lr=s.inner_lr,
            shots=s.shots,
            iteration=when,
            seed=3,
        )
        for which, when in (("early", 0), ("late", tasks.horizon))
    }
    pick = int(drawn["early"].truth.abs().amax(dim=1).argmax())
    for which, color in (("early", "tab:blue"), ("late", "tab:red")):
        fits = drawn[which]
        fit_ax.plot(fits.x, fits.truth[pick], color=color, lw=2, label=f"{which} task")
        fit_ax.scatter(fits.support_x[pick], fits.support_y[pick], color=color, s=18, zorder=3)
        fit_ax.plot(fits.x, fits.after[pick], color=color, ls="--")
    fit_ax.plot([], [], color="black", ls="--", label=f"adapted, {s.report_steps} steps")
    fit_ax.set_xlabel("input x")
    fit_ax.set_ylabel("output y")
    fit_ax.set_title("final initialization, adapted")
    fit_ax.legend(fontsize="x-small")
    return figure


def plot_hyperparameter_grid(grid, *, ax: Axes | None = None) -> Axes:
    """Experiment 5: heatmap of the final loss of every hyperparameter setting.

    Colour is the loss on a log scale; every cell is annotated with its value
    and status. Non-finite cells (NaN or inf) are drawn hatched in grey and
    labelled as such, so divergence is visible rather than silently blank.
    """
    import matplotlib.colors as mcolors

    if not hasattr(grid, "final_loss") or not hasattr(grid, "status"):
        raise TypeError(f"grid must come from hyperparameter_grid, got {type(grid)}")
    loss = grid.final_loss.to(torch.float64)
    rows, cols = loss.shape
    ax = _axes(ax, figsize=(1.9 * cols + 3.0, 0.75 * rows + 1.6))
    finite = torch.isfinite(loss)
    shown = loss.clone()
    ceiling = grid.diverge_ratio * grid.reference_loss
    shown[finite] = shown[finite].clamp(max=10 * ceiling)
    values = shown[finite]
    vmin = max(values.min().item() if values.numel() else 0.1, 1e-3)
    vmax = max(values.max().item() if values.numel() else 1.0, vmin * 1.01)
    masked = torch.where(finite, shown, torch.full_like(shown, float("nan"))).numpy()
    cmap = plt.get_cmap("viridis_r").with_extremes(bad="lightgray")
    norm = mcolors.LogNorm(vmin=vmin, vmax=vmax)
    image = ax.imshow(masked, cmap=cmap, norm=norm, aspect="auto")
    for i in range(rows):
        for j in range(cols):
            value = loss[i, j].item()
            status = grid.status[i][j]
            if not finite[i, j]:
                ax.add_patch(
                    plt.Rectangle(
                        (j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//", edgecolor="dimgray", lw=0
                    )
                )
                text = ("inf" if value in (float("inf"), float("-inf")) else "NaN") + "\ndiverged"
            else:
                text = f"{value:.3g}\n{status}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize="small",
                color="white" if finite[i, j] and norm(shown[i, j].item()) > 0.6 else "black",
            )
    ax.set_xticks(range(cols), grid.column_labels(), rotation=15)
    ax.set_yticks(range(rows), grid.row_labels())
    ax.set_xlabel("meta-optimizer, meta-batch size")
    ax.set_ylabel("inner loop")
    ax.set_title(
        f"final loss after {grid.iterations} meta-iterations "
        f"(untrained, no adaptation: {grid.reference_loss:.3g})"
    )
    ax.figure.colorbar(image, ax=ax, label="query loss after adaptation (log)")
    return ax


__all__ += [
    "plot_diversity_sweep",
    "plot_drift",
    "plot_family_comparison",
    "plot_fit_curves",
    "plot_hyperparameter_grid",
    "plot_second_order_cost",
]
