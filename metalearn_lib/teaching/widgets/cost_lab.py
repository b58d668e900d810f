"""The cost lab of chapter 3: time and peak memory of one meta-step against inner steps."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
from torch import nn

from ...algorithms import ALGORITHMS, algorithm_label
from ...checks import check_int
from ...cost import measure_step_cost
from ...tasks import TaskBatch
from ..figures import plot_step_cost
from .base import FigureExplorer

__all__ = ["CostLab"]


class CostLab(FigureExplorer):
    """Measure what one meta-step costs against inner steps (chapter 3).

    Press "measure": for every algorithm and every number of inner steps it
    times one meta-step (and measures its peak memory) with
    :func:`metalearn_lib.cost.measure_step_cost`, advancing the progress bar
    and redrawing the plot after each measurement.

    Parameters
    ----------
    model : nn.Module
        The network.
    batch : TaskBatch
        The meta-batch every measurement uses.
    algorithms : sequence of str
        Registered algorithm names (default: MAML and its two first-order variants).
    inner_steps : sequence of int
        The x axis.
    inner_lr : float
        Inner learning rate.
    repeats : int
        Timed repetitions per point (the median is reported).
    memory : bool
        Also measure peak memory.

    Attributes
    ----------
    run_button : ipywidgets.Button
        Starts the measurements (CSS class ``cost-lab-run``).
    progress : ipywidgets.IntProgress
        One tick per measurement (``cost-lab-progress``).
    costs : list of StepCost
        The measurements so far.
    """

    def __init__(
        self,
        model: nn.Module,
        batch: TaskBatch,
        *,
        algorithms: Sequence[str] = ("maml", "fomaml", "reptile"),
        inner_steps: Sequence[int] = (1, 2, 5, 10),
        inner_lr: float = 0.01,
        repeats: int = 3,
        memory: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(batch, TaskBatch):
            raise TypeError(f"batch must be a TaskBatch, got {type(batch).__name__}")
        algorithms = tuple(algorithms)
        if not algorithms or any(a not in ALGORITHMS for a in algorithms):
            raise ValueError(
                f"algorithms must be a non-empty subset of {ALGORITHMS}, got {algorithms}"
            )
        inner_steps = tuple(inner_steps)
        if not inner_steps or any(
            isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in inner_steps
        ):
            raise ValueError(
                f"inner_steps must be a non-empty sequence of ints >= 1, got {inner_steps}"
            )
        check_int("repeats", repeats, 1)
        super().__init__("cost-lab-plot")
        self.model, self.batch = model, batch
        self.algorithms, self.inner_steps = algorithms, tuple(sorted(inner_steps))
        self.inner_lr, self.repeats, self.memory = inner_lr, repeats, memory
        self.costs: list = []
        self.run_button = widgets.Button(description="measure", icon="play", button_style="primary")
        self.run_button.add_class("cost-lab-run")
        self.run_button.on_click(lambda _: self.run())
        self.progress = widgets.IntProgress(
            value=0, min=0, max=len(algorithms) * len(self.inner_steps), description="measured"
        )
        self.progress.add_class("cost-lab-progress")
        self.status = widgets.Label(value="press 'measure'")
        self.status.add_class("cost-lab-status")
        self._draw()

    @property
    def ui(self) -> widgets.Widget:
        return widgets.VBox(
            [widgets.HBox([self.run_button, self.progress, self.status]), self.image]
        )

    def _draw(self) -> None:
        self.figure.clear()
        axes = self.figure.subplots(1, 2)
        if self.costs:
            plot_step_cost(self.costs, axes=axes)
        else:
            for ax, what in zip(axes, ("time of one meta-step (ms)", "peak memory (MiB)")):
                ax.set_xlabel("inner steps")
                ax.set_ylabel(what)
                ax.text(0.5, 0.5, "not measured yet", ha="center", transform=ax.transAxes)
        self._show()

    def run(self) -> list:
        """Measure every (algorithm, inner steps) pair; returns the list of StepCost."""
        self.run_button.disabled = True
        self.costs = []
        self.progress.value = 0
        try:
            for algorithm in self.algorithms:
                for k in self.inner_steps:
                    self.status.value = f"{algorithm_label(algorithm)}, {k} inner steps ..."
                    self.costs.append(
                        measure_step_cost(
                            self.model,
                            self.batch,
                            algorithm=algorithm,
                            inner_steps=k,
                            inner_lr=self.inner_lr,
                            repeats=self.repeats,
                            memory=self.memory,
                        )
                    )
                    self.progress.value += 1
                    self._draw()
            self.status.value = "done"
        finally:
            self.run_button.disabled = False
        return self.costs
