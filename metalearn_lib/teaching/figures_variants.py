"""Chapter 6's figures: they draw what the experiments of
:mod:`metalearn_lib.teaching.experiments.variants` returned, and compute nothing."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..algorithms import algorithm_label
from .figures import algorithm_color, plain_log_scale

__all__ = [
    "plot_anil",
    "plot_comparison",
    "plot_imaml_memory",
    "plot_mamlpp_seeds",
    "plot_metasgd_rates",
]


def _two_panels(width: float = 10.0) -> tuple[Figure, Sequence[Axes]]:
    fig, axes = plt.subplots(1, 2, figsize=(width, 3.6), layout="constrained")
    return fig, axes


def plot_imaml_memory(result) -> Figure:
    """Peak memory of one meta-step (MAML, iMAML) and iMAML's cosine to MAML, against steps."""
    fig, (memory, cosine) = _two_panels()
    steps = list(result.inner_steps)
    for a in ("maml", "imaml"):
        memory.plot(
            steps,
            [b / 2**20 for b in result.peak_bytes[a]],
            "o-",
            color=algorithm_color(a),
            label=algorithm_label(a),
        )
    memory.set(xlabel="inner steps", ylabel="peak memory of one meta-step (MiB)")
    memory.legend()
    cosine.plot(steps, result.cosine, "o-", color=algorithm_color("imaml"))
    cosine.axhline(1, color="grey", lw=0.8, ls=":")
    cosine.set(
        xlabel="inner steps k",
        ylabel="cosine(iMAML, MAML)",
        ylim=(min(0, min(result.cosine)) - 0.05, 1.05),
        title="iMAML with lam = 1/(k alpha)",
    )
    for ax in (memory, cosine):
        ax.grid(alpha=0.3)
    return fig


def plot_anil(result) -> Figure:
    """ANIL's time on the ConvNet, and MAML's init adapted in all layers or the head only."""
    fig, (time_ax, loss_ax) = _two_panels()
    names = list(result.convnet_ms)
    time_ax.bar(
        [algorithm_label(a) for a in names],
        [result.convnet_ms[a] for a in names],
        color=[algorithm_color(a) for a in names],
    )
    time_ax.set(ylabel="ms per meta-step (ConvNet, digits)", title="time of one meta-step")
    steps = list(result.steps)
    loss_ax.plot(
        steps,
        result.maml_all_layers,
        "o-",
        color=algorithm_color("maml"),
        label="MAML's init, all layers adapted",
    )
    loss_ax.plot(
        steps,
        result.maml_head_only,
        "s--",
        color=algorithm_color("maml"),
        label="MAML's init, head only",
    )
    loss_ax.plot(steps, result.anil, "^-", color=algorithm_color("anil"), label="ANIL")
    loss_ax.set(xlabel="adaptation steps", ylabel="query MSE (sinusoids, K = 10)")
    plain_log_scale(loss_ax)
    loss_ax.legend(fontsize="small")
    for ax in (time_ax, loss_ax):
        ax.grid(alpha=0.3)
    return fig


def plot_metasgd_rates(result) -> Figure:
    """Meta-SGD's learned rates, one box per parameter tensor, and its loss against MAML's."""
    fig, (rates_ax, loss_ax) = _two_panels(11.0)
    names = list(result.rates)
    rates_ax.boxplot([result.rates[n].flatten().tolist() for n in names], showfliers=False)
    rates_ax.set_xticks(range(1, len(names) + 1), names, rotation=30, fontsize="small")
    rates_ax.axhline(0.01, color=algorithm_color("maml"), ls="--", lw=1, label="MAML's alpha")
    rates_ax.axhline(0, color="grey", lw=0.8)
    rates_ax.set(ylabel="learned inner rate", title="Meta-SGD: one rate per weight")
    rates_ax.legend(fontsize="small")
    steps = list(result.steps)
    for a, values in (("maml", result.maml), ("metasgd", result.metasgd)):
        loss_ax.plot(steps, values, "o-", color=algorithm_color(a), label=algorithm_label(a))
    loss_ax.set(xlabel="adaptation steps", ylabel="query MSE (sinusoids, K = 10)")
    plain_log_scale(loss_ax)
    loss_ax.legend()
    for ax in (rates_ax, loss_ax):
        ax.grid(alpha=0.3)
    return fig


def plot_mamlpp_seeds(result) -> Figure:
    """Median test loss per seed against steps (MAML solid, MAML++ dashed), and blow-ups."""
    fig, (loss_ax, blown_ax) = _two_panels()
    steps = list(result.steps)
    for a, style in (("maml", "-"), ("mamlpp", "--")):
        for i, seed in enumerate(result.seeds):
            loss_ax.plot(
                steps,
                result.losses[a][i],
                marker="o",
                ls=style,
                color=algorithm_color(a),
                alpha=0.5 + 0.5 * i / max(1, len(result.seeds) - 1),
                label=f"{algorithm_label(a)}, seed {seed}",
            )
    loss_ax.set(xlabel="adaptation steps at test time", ylabel="median query MSE (K = 5)")
    plain_log_scale(loss_ax)
    loss_ax.legend(fontsize="x-small", ncol=2)
    width = 0.4
    for j, a in enumerate(("maml", "mamlpp")):
        blown_ax.bar(
            [i + (j - 0.5) * width for i in range(len(result.seeds))],
            result.blown_up[a],
            width,
            color=algorithm_color(a),
            label=algorithm_label(a),
        )
    blown_ax.set_xticks(range(len(result.seeds)), [f"seed {s}" for s in result.seeds])
    blown_ax.set(ylabel=f"test tasks above MSE 100 (up to {steps[-1]} steps)")
    blown_ax.legend()
    for ax in (loss_ax, blown_ax):
        ax.grid(alpha=0.3)
    return fig


def plot_comparison(rows: Sequence, *, axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """The widget's picture: loss curves, time and memory of each compared algorithm.

    ``rows`` hold ``algorithm``, ``losses`` (after 0..k steps), ``milliseconds``
    and ``peak_mib`` (see :class:`~metalearn_lib.teaching.widgets.variants.VariantComparison`).
    """
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(11.0, 3.4), layout="constrained")
    loss_ax, time_ax, memory_ax = axes
    for row in rows:
        color = algorithm_color(row.algorithm)
        loss_ax.plot(
            range(len(row.losses)),
            row.losses,
            "o-",
            color=color,
            label=algorithm_label(row.algorithm),
        )
    labels = [algorithm_label(r.algorithm) for r in rows]
    colors = [algorithm_color(r.algorithm) for r in rows]
    time_ax.bar(labels, [r.milliseconds for r in rows], color=colors)
    memory_ax.bar(labels, [r.peak_mib for r in rows], color=colors)
    loss_ax.set(xlabel="adaptation steps", ylabel="query MSE on test tasks")
    time_ax.set(ylabel="ms per meta-step")
    memory_ax.set(ylabel="peak MiB per meta-step")
    if rows:
        loss_ax.legend(fontsize="small")
    for ax in (time_ax, memory_ax):
        ax.tick_params(axis="x", labelrotation=30, labelsize="small")
    for ax in axes:
        ax.grid(alpha=0.3)
    return axes
