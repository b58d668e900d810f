"""Figures and tables of chapter 5 (few-shot image classification).

* :func:`plot_class_grid` - one image of every class, digits by rotation, held-out classes framed;
* :func:`accuracy_table` - mean accuracy ± 95% interval of several starting points, as text;
* :func:`plot_accuracies` - accuracy against adaptation steps, one panel per number of shots.

Like :mod:`.figures`, every function draws only what it is given and returns what it drew on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..datasets import ClassImages
from ..training import Evaluation
from .figures import algorithm_color

#: Frame colour of the meta-test classes in :func:`plot_class_grid`.
HELD_OUT_COLOR = "crimson"


def _digit_and_angle(name: str) -> tuple[int, int]:
    try:
        digit, angle = map(int, name.split(" @ "))
    except ValueError:
        raise ValueError(
            f"class names must look like 'DIGIT @ ANGLE' (e.g. '7 @ 90'), got {name!r}"
        ) from None
    return digit, angle


def plot_class_grid(train_classes: ClassImages, test_classes: ClassImages) -> Figure:
    """One image of every class: columns are digits, rows rotations; meta-test classes framed.

    Parameters
    ----------
    train_classes, test_classes : ClassImages
        The meta-training and meta-test classes of :func:`~metalearn_lib.digits_meta_split`,
        named ``"DIGIT @ ANGLE"``.

    Returns
    -------
    Figure
        Its axes are ``figure.axes``, row-major; an axis's frame is :data:`HELD_OUT_COLOR`
        for a meta-test class.
    """
    for argument, classes in (("train_classes", train_classes), ("test_classes", test_classes)):
        if not isinstance(classes, ClassImages):
            raise TypeError(f"{argument} must be ClassImages, got {type(classes).__name__}")
    places = {}
    for source in (train_classes, test_classes):
        for index, name in enumerate(source.names):
            places[_digit_and_angle(name)] = (source, index)
    digits = sorted({d for d, _ in places})
    angles = sorted({a for _, a in places})
    fig, axes = plt.subplots(
        len(angles),
        len(digits),
        figsize=(0.9 * len(digits), 0.95 * len(angles) + 0.1),
        layout="constrained",
        squeeze=False,
    )
    for row, angle in enumerate(angles):
        for column, digit in enumerate(digits):
            ax = axes[row, column]
            ax.set(xticks=[], yticks=[])
            if (digit, angle) in places:
                source, index = places[digit, angle]
                ax.imshow(source.class_images(index)[0, 0].numpy(), cmap="gray_r")
                held_out = source is test_classes
                for spine in ax.spines.values():
                    spine.set(
                        color=HELD_OUT_COLOR if held_out else "lightgray", lw=2.5 if held_out else 1
                    )
            if row == 0:
                ax.set_title(f"digit {digit}", fontsize=9)
            if column == 0:
                ax.set_ylabel(f"{angle}°", rotation=0, labelpad=14)
    fig.suptitle(
        f"The {len(places)} classes (columns: digit, rows: rotation); "
        "framed in red: meta-test classes"
    )
    return fig


def _check_results(results: Mapping, shots: Sequence[int]) -> list[str]:
    """The labels of ``results`` (keyed ``(label, shots)``); each must have accuracies."""
    if not isinstance(results, Mapping) or not results:
        raise TypeError("results must be a non-empty dict {(label, shots): Evaluation}")
    labels = list(dict.fromkeys(label for label, _ in results))
    for label in labels:
        for k in shots:
            ev = results.get((label, k))
            if not isinstance(ev, Evaluation) or ev.metrics is None:
                raise ValueError(
                    f"results[{label!r}, {k}] must be an Evaluation with accuracies "
                    f"(evaluate(..., metric_fn=accuracy)), got {type(ev).__name__}"
                )
    return labels


def accuracy_table(results: Mapping, shots: Sequence[int] = (1, 5)) -> str:
    """Mean accuracy ± 95% interval (in %) of every starting point, for every shots and steps.

    Parameters
    ----------
    results : dict of (label, shots) to Evaluation
        Evaluations with accuracies (``evaluate(..., metric_fn=accuracy)``).
    shots : sequence of int
        The column groups, in order.

    Returns
    -------
    str
        One header line and one line per label.
    """
    labels = _check_results(results, shots)
    width = max(22, *(len(label) + 2 for label in labels))
    header = "".join(
        f"{f'{k}-shot, {s} step(s)':>20s}" for k in shots for s in results[labels[0], k].steps
    )
    lines = [" " * width + header]
    for label in labels:
        cells = [
            f"{100 * m:6.1f} ± {100 * c:4.1f}"
            for k in shots
            for m, c in zip(results[label, k].metric_mean, results[label, k].metric_ci95)
        ]
        lines.append(f"{label:{width}s}" + "".join(f"{c:>20s}" for c in cells))
    return "\n".join(lines)


def plot_accuracies(
    results: Mapping,
    shots: Sequence[int] = (1, 5),
    *,
    chance: float | None = None,
    axes: Sequence[Axes] | None = None,
) -> Sequence[Axes]:
    """Query accuracy (%) against adaptation steps with 95% intervals, one panel per shots.

    Parameters
    ----------
    results : dict of (label, shots) to Evaluation
        Evaluations with accuracies.
    chance : float, optional
        Accuracy of guessing (e.g. 0.2 for 5-way), drawn as a dotted line.
    axes : sequence of Axes, optional
        One per entry of ``shots``; new ones side by side when not given.
    """
    labels = _check_results(results, shots)
    if axes is None:
        _, axes = plt.subplots(
            1,
            len(shots),
            figsize=(5 * len(shots), 3.6),
            layout="constrained",
            sharey=True,
            squeeze=False,
        )
        axes = list(axes[0])
    if len(axes) != len(shots):
        raise ValueError(f"axes must have one entry per shots ({len(shots)}), got {len(axes)}")
    for ax, k in zip(axes, shots):
        for i, label in enumerate(labels):
            ev = results[label, k]
            ax.errorbar(
                ev.steps,
                [100 * m for m in ev.metric_mean],
                yerr=[100 * c for c in ev.metric_ci95],
                marker="o",
                capsize=3,
                label=label,
                color=algorithm_color(label, i),
            )
        if chance is not None:
            ax.axhline(100 * chance, color="gray", ls=":", label=f"chance ({100 * chance:.0f}%)")
        num_tasks = results[labels[0], k].metrics.shape[-1]
        ax.set(
            xlabel="adaptation steps on the support set",
            title=f"{k}-shot, {num_tasks} test episodes",
            xticks=results[labels[0], k].steps,
        )
    axes[0].set_ylabel("query accuracy (%)")
    axes[-1].legend(fontsize="small", loc="lower right")
    return axes
