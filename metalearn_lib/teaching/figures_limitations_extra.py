"""More figures of chapter 4: the experiments added beside the five of figures_limitations.

Each function takes a result object from
:mod:`metalearn_lib.teaching.experiments` and only draws what it holds; it
returns the figure it drew on.

* :func:`plot_architecture_cost` - time and memory against depth and width;
* :func:`plot_meta_lr_tuning` - each meta-optimizer over meta learning rates;
* :func:`plot_nonconvergence` - training curves and adaptation on dissimilar distributions;
* :func:`plot_stability` - curvature against 2/alpha, and the blown-up tasks.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..algorithms import algorithm_label
from .figures import algorithm_color

__all__ = [
    "plot_architecture_cost",
    "plot_meta_lr_tuning",
    "plot_nonconvergence",
    "plot_stability",
]


def _check(result, names: tuple[str, ...], source: str) -> None:
    if not all(hasattr(result, n) for n in names):
        raise TypeError(f"result must come from {source}, got {type(result).__name__}")


def plot_architecture_cost(result) -> Figure:
    """Time and peak memory of one meta-step against depth (left) and width (right)."""
    _check(result, ("by_depth", "by_width", "depths", "widths"), "architecture_cost_sweep")
    figure, axes = plt.subplots(2, 2, figsize=(10.0, 6.0), layout="constrained")
    for col, (values, costs, label) in enumerate(
        (
            (result.depths, result.by_depth, f"hidden layers (width {result.base_width})"),
            (result.widths, result.by_width, f"units per layer (depth {result.base_depth})"),
        )
    ):
        for i, (a, rows) in enumerate(costs.items()):
            color = algorithm_color(a, i)
            axes[0][col].plot(
                values, [c.milliseconds for c in rows], marker="o", color=color,
                label=algorithm_label(a),
            )  # fmt: skip
            axes[1][col].plot(
                values, [c.peak_bytes / 2**20 for c in rows], marker="o", color=color,
                label=algorithm_label(a),
            )  # fmt: skip
        for row, ylabel in ((0, "ms per meta-step"), (1, "peak MiB per meta-step")):
            axes[row][col].set_xscale("log", base=2)
            axes[row][col].set_xticks(values, [str(v) for v in values])
            axes[row][col].set_xlabel(label)
            axes[row][col].set_ylabel(ylabel)
            axes[row][col].legend(fontsize="small")
    figure.suptitle(f"one meta-step, {result.inner_steps} inner steps: deeper and wider networks")
    return figure


def plot_meta_lr_tuning(tuning) -> Figure:
    """Test loss against the meta learning rate, one line per meta-optimizer (x: diverged)."""
    _check(tuning, ("rates", "losses", "reference_loss"), "tune_meta_lr")
    figure, ax = plt.subplots(figsize=(6.0, 3.8), layout="constrained")
    finite = [v for values in tuning.losses.values() for v in values if math.isfinite(v)]
    top = max(finite + [tuning.reference_loss]) * 1.1
    for i, (opt, values) in enumerate(tuning.losses.items()):
        color = f"C{i}"
        name = {"adam": "Adam", "sgd": "SGD"}.get(opt, opt)
        ax.plot(tuning.rates, values, marker="o", color=color, label=name)
        bad = [r for r, v in zip(tuning.rates, values) if not math.isfinite(v)]
        ax.plot(bad, [top] * len(bad), marker="x", ms=10, ls="none", color=color)
    ax.axhline(tuning.reference_loss, color="gray", ls=":", label="untrained, no adaptation")
    ax.set_xscale("log")
    ax.set_xlabel("meta learning rate")
    ax.set_ylabel(f"test loss after {tuning.inner_steps} step(s)")
    ax.set_title("each meta-optimizer over its rates (x at the top: NaN, diverged)")
    ax.legend(fontsize="small")
    return figure


def plot_nonconvergence(result) -> Figure:
    """Left: training loss relative to its start. Right: test loss over untrained, per step."""
    _check(result, ("histories", "evaluations", "references"), "dissimilar_distributions")
    figure, (train_ax, test_ax) = plt.subplots(1, 2, figsize=(10.0, 3.8), layout="constrained")
    steps = list(result.settings.eval_steps)
    for i, (name, history) in enumerate(result.histories.items()):
        smoothed = history.smoothed(result.window)
        start = sum(history.loss[: result.window]) / result.window
        train_ax.plot(range(1, len(smoothed) + 1), [v / start for v in smoothed], color=f"C{i}",
                      label=name)  # fmt: skip
        relative = [min(v, 10.0) for v in result.relative(name)]
        test_ax.plot(steps, relative, marker="o", color=f"C{i}", label=name)
    train_ax.set_xlabel("meta-iteration")
    train_ax.set_ylabel("training loss / its start")
    train_ax.set_title(f"meta-training (running mean of {result.window})")
    test_ax.axhline(1.0, color="gray", ls=":", label="untrained, no adaptation")
    test_ax.set_yscale("log")
    test_ax.set_xlabel("adaptation steps")
    test_ax.set_ylabel("test loss / untrained loss (capped at 10)")
    test_ax.set_title("fresh tasks of the same distribution")
    for ax in (train_ax, test_ax):
        ax.legend(fontsize="small")
    return figure


def plot_stability(result) -> Figure:
    """Curvature against 2/alpha during training; test tasks; the blown-up tasks' fits."""
    _check(result, ("probe_curvature", "test_curvature", "drawn", "limit"), "maml_stability")
    panels = 2 + len(result.drawn)
    figure, axes = plt.subplots(1, panels, figsize=(4.0 * panels, 3.6), layout="constrained")
    ax = axes[0]
    median = result.probe_curvature.median(dim=1).values
    ax.plot(result.checkpoints, median, marker="o", color=algorithm_color("maml"), label="median")
    ax.plot(result.checkpoints, result.probe_curvature.max(dim=1).values, marker="^",
            color=algorithm_color("maml"), ls="--", label="largest")  # fmt: skip
    ax.axhline(result.limit, color="crimson", ls=":", label=f"2/alpha = {result.limit:g}")
    ax.set_xlabel("meta-iteration (trained with 1 inner step)")
    ax.set_ylabel("largest Hessian eigenvalue")
    ax.set_title("curvature of the support losses")
    ax.legend(fontsize="small")

    ax = axes[1]
    worst = result.evaluation.losses.nan_to_num(nan=math.inf).max(dim=0).values
    blown = set(result.blown)
    colors = ["crimson" if i in blown else "gray" for i in range(len(worst))]
    ax.scatter(result.test_curvature, worst.clamp(max=1e4), c=colors, s=12)
    ax.axvline(result.limit, color="crimson", ls=":")
    ax.axhline(result.threshold, color="black", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("largest curvature of the task's support loss")
    ax.set_ylabel(f"worst loss over {list(result.evaluation.steps)} steps (capped)")
    ax.set_title(f"{len(result.evaluation.losses[0])} test tasks (red: blew up)")

    for ax, task in zip(axes[2:], result.drawn):
        ax.plot(task.x, task.truth, color="black", lw=1.8, label="true function")
        for k, (s, prediction) in enumerate(zip(result.evaluation.steps, task.predictions)):
            ax.plot(task.x, prediction.clamp(-50, 50), color=f"C{k}", lw=1.2,
                    label=f"after {s} step{'s' if s != 1 else ''}")  # fmt: skip
        ax.scatter(task.support_x, task.support_y, color="black", s=25, zorder=3)
        high = 2 * max(abs(task.amplitude), 1.0)
        ax.set_ylim(-high, high)
        ax.set_title(f"task {task.index}: A = {task.amplitude:.2f}, curvature {task.curvature:.0f}")
        ax.set_xlabel("input x")
        ax.legend(fontsize="x-small", loc="lower left")
    return figure
