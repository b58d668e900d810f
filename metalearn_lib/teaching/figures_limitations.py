"""The figures of chapter 4 (the limitations of MAML), one per experiment.

Each function takes an experiment's result object from
:mod:`metalearn_lib.teaching.experiments` and only draws what it holds (the
adapted fits included: the experiments compute them); it returns the figure
(or axes) it drew on.

* :func:`plot_fit_curves` - held-out tasks before and after adaptation;
* :func:`plot_second_order_cost` - experiment 1;
* :func:`plot_diversity_sweep` - experiment 2 (also used by the task-diversity explorer);
* :func:`plot_family_comparison` - experiment 3;
* :func:`plot_drift` - experiment 4;
* :func:`plot_hyperparameter_grid` - experiment 5.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .figures import (
    algorithm_color,
    axes_or_new,
    plot_evaluations,
    plot_learning_curves,
    plot_step_cost,
)

__all__ = [
    "plot_diversity_sweep",
    "plot_drift",
    "plot_family_comparison",
    "plot_fit_curves",
    "plot_hyperparameter_grid",
    "plot_second_order_cost",
]

#: The colour of the shared initialization in experiment 3.
SHARED_COLOR = "tab:purple"


def _figure(ncols: int, figsize: tuple[float, float], nrows: int = 1):
    figure, axes = plt.subplots(nrows, ncols, figsize=figsize, layout="constrained")
    return figure, axes


def _log_if_wide(ax: Axes, values: Sequence[float]) -> None:
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
    ax = axes_or_new(ax)
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
    figure, axes = _figure(2, (10.0, 7.0), nrows=2)
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
        From :func:`~metalearn_lib.teaching.experiments.diversity_sweep`.
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
        _, axes = _figure(2, (10.0, 3.6))
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
            color=algorithm_color(label),
            label=label,
        )
    adv_ax.axhline(0.0, color="black", lw=0.8)
    adv_ax.errorbar(
        d,
        [m for m, _ in adv],
        yerr=[c for _, c in adv],
        marker="o",
        capsize=3,
        color=algorithm_color("maml"),
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
    _log_if_wide(loss_ax, [m for m, _ in maml + pre])
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
    if not hasattr(result, "shared_on") or not hasattr(result, "specialists"):
        raise TypeError(f"result must come from dissimilar_families, got {type(result)}")
    families = result.families
    s = result.settings
    figure, axes = _figure(1 + len(families), (3.3 * (1 + len(families)), 3.4))
    bar_ax = axes[0]
    width = 0.38
    positions = range(len(families))
    for offset, label, evaluations, color in (
        (-width / 2, "shared (mixture)", [result.shared_on[f] for f in families], SHARED_COLOR),
        (
            width / 2,
            "own family",
            [result.specialists[f].evaluation for f in families],
            algorithm_color("maml"),
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
    for ax, family in zip(axes[1:], families):
        shared, own = result.fits[family]
        ax.plot(shared.x, shared.truth[0], color="black", lw=2, label="true function")
        ax.scatter(shared.support_x[0], shared.support_y[0], color="black", s=20, zorder=3)
        ax.plot(shared.x, shared.after[0], color=SHARED_COLOR, ls="--", label="from shared")
        ax.plot(own.x, own.after[0], color=algorithm_color("maml"), ls="--", label="from own")
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
    if not hasattr(result, "checkpoints") or not hasattr(result, "curve"):
        raise TypeError(f"result must come from nonstationary_drift, got {type(result)}")
    tasks, s = result.tasks, result.settings
    figure, (task_ax, curve_ax, fit_ax) = _figure(3, (12.0, 3.5))
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
    drawn = result.fits
    pick = result.fit_task
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
    if not hasattr(grid, "final_loss") or not hasattr(grid, "status"):
        raise TypeError(f"grid must come from hyperparameter_grid, got {type(grid)}")
    loss = grid.final_loss.to(torch.float64)
    rows, cols = loss.shape
    ax = axes_or_new(ax, figsize=(1.9 * cols + 3.0, 0.75 * rows + 1.6))
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
