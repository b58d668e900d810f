"""The explorers of chapters 1 and 2: sinusoid tasks, and adapting to one of them.

* :class:`TaskSampler` (chapter 1) - draw tasks, see the family of functions
  and their average;
* :class:`InnerStepsExplorer` (chapter 2) - adapt to one task with a chosen
  number of inner steps and inner learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import ipywidgets as widgets
import torch
from torch import Tensor, nn

from ...algorithms import adaptation_trajectory
from ...checks import Params, check_int, check_model_and_params
from ...tasks import TaskBatch
from ..figures import algorithm_color, plain_log_scale, plot_tasks, predict
from .base import FigureExplorer

__all__ = ["InnerStepsExplorer", "TaskSampler"]


class TaskSampler(FigureExplorer):
    """Draw tasks from a distribution and look at them (chapter 1).

    Left: a few tasks, each a curve with its support points (dots) and query
    points (crosses). Right: many tasks at once, and optionally their average
    function, the thing a single network trained on all tasks ends up fitting.

    Parameters
    ----------
    tasks : task distribution
        E.g. ``SinusoidTasks()``; anything with ``sample`` and ``sample_functions``.
    seed : int
        Seed of the first draw; the "new tasks" button moves to the next seed.
    num_tasks, shots : int
        Initial values of the sliders.

    Attributes
    ----------
    tasks_slider, shots_slider : ipywidgets.IntSlider
        Number of tasks drawn on the left, and support points per task.
    average_checkbox : ipywidgets.Checkbox
        Show the average of 1000 tasks on the right.
    new_button : ipywidgets.Button
        Draw new tasks.
    batch : TaskBatch
        The tasks on the left.
    """

    def __init__(self, tasks, *, seed: int = 0, num_tasks: int = 3, shots: int = 10) -> None:
        if not callable(getattr(tasks, "sample", None)):
            raise TypeError(f"tasks must be a task distribution, got {type(tasks).__name__}")
        check_int("seed", seed, 0)
        super().__init__("task-sampler-plot")
        self.tasks = tasks
        self.seed = seed
        self.tasks_slider = widgets.IntSlider(
            value=check_int("num_tasks", num_tasks, 1), min=1, max=8, description="tasks"
        )
        self.tasks_slider.add_class("task-sampler-tasks")
        self.shots_slider = widgets.IntSlider(
            value=check_int("shots", shots, 1), min=1, max=40, description="shots K"
        )
        self.shots_slider.add_class("task-sampler-shots")
        self.average_checkbox = widgets.Checkbox(value=False, description="show the average task")
        self.average_checkbox.add_class("task-sampler-average")
        self.new_button = widgets.Button(description="new tasks", icon="refresh")
        self.new_button.add_class("task-sampler-new")
        self.new_button.on_click(lambda _: self.new_tasks())
        for control in (self.tasks_slider, self.shots_slider, self.average_checkbox):
            control.observe(lambda _: self.update(), names="value")
        self.update()

    @property
    def ui(self) -> widgets.Widget:
        controls = widgets.HBox(
            [self.tasks_slider, self.shots_slider, self.average_checkbox, self.new_button]
        )
        return widgets.VBox([controls, self.image])

    def new_tasks(self) -> None:
        """Draw a fresh set of tasks (the next seed) and redraw."""
        self.seed += 1
        self.update()

    def update(self) -> None:
        """Sample with the current settings and redraw."""
        generator = torch.Generator().manual_seed(self.seed)
        self.batch = self.tasks.sample(
            self.tasks_slider.value, self.shots_slider.value, generator=generator
        )
        self.figure.clear()
        left, right = self.figure.subplots(1, 2)
        plot_tasks(self.batch, ax=left, max_tasks=self.tasks_slider.value)
        many = self.tasks.sample_functions(1000, generator=torch.Generator().manual_seed(1))
        x = torch.linspace(-5, 5, 200, dtype=torch.float64).unsqueeze(-1)
        curves = many(x)[..., 0]
        for curve in curves[:60]:
            right.plot(x[:, 0], curve, color="tab:blue", alpha=0.15, lw=0.8)
        self.average = curves.mean(dim=0)
        if self.average_checkbox.value:
            right.plot(x[:, 0], self.average, color="black", lw=2.5, label="average of 1000 tasks")
            right.legend(fontsize="small", loc="upper right")
        right.set_xlabel("input x")
        right.set_ylabel("output y")
        right.set_title("60 of 1000 tasks")
        self._show()


class InnerStepsExplorer(FigureExplorer):
    """Adapt to one task and watch the fit and the loss change (chapter 2).

    Every update only *adapts* (a few gradient steps on the support set), it
    never trains, so it answers in a fraction of a second.

    Parameters
    ----------
    model : nn.Module
        The network.
    initializations : dict of label to parameter dict
        The starting points to compare, e.g. ``{"MAML": theta, "pretrained": theta_pre}``.
        A single parameter dict is accepted too (labelled ``"meta-learned"``).
    tasks : task distribution
        Where tasks come from, e.g. ``SinusoidTasks()``.
    shots : int
        Support points per task (K).
    queries : int
        Query points used for the loss curve.
    seed : int
        Task number ``i`` is always the same task for the same seed.
    max_steps : int
        Largest value of the inner-steps slider.
    steps, inner_lr : int, float
        Initial slider values.

    Attributes
    ----------
    task_picker : ipywidgets.BoundedIntText
        Which task (0, 1, 2, ...); the "new task" button moves to the next one.
    steps_slider : ipywidgets.IntSlider
        Number of inner steps (CSS class ``inner-steps-slider``).
    lr_slider : ipywidgets.FloatLogSlider
        Inner learning rate (CSS class ``inner-lr-slider``).
    readout : ipywidgets.Label
        Shows the number of steps the picture was drawn for (``inner-steps-readout``);
        it is written after the picture, so it equals the slider once the plot is current.
    losses : dict of label to list of float
        Query loss after 0..steps steps, for the current picture.
    """

    def __init__(
        self,
        model: nn.Module,
        initializations: Mapping[str, Params] | Params,
        tasks,
        *,
        shots: int = 10,
        queries: int = 100,
        seed: int = 0,
        max_steps: int = 20,
        steps: int = 1,
        inner_lr: float = 0.01,
    ) -> None:
        if (
            isinstance(initializations, Mapping)
            and initializations
            and all(isinstance(v, Tensor) for v in initializations.values())
        ):
            initializations = {"meta-learned": initializations}
        if not isinstance(initializations, Mapping) or not initializations:
            raise TypeError(
                "initializations must be a dict {label: parameter dict} or one parameter dict"
            )
        for params in initializations.values():
            check_model_and_params(model, params)
        if not callable(getattr(tasks, "sample", None)):
            raise TypeError(f"tasks must be a task distribution, got {type(tasks).__name__}")
        check_int("shots", shots, 1)
        check_int("queries", queries, 1)
        check_int("seed", seed, 0)
        check_int("max_steps", max_steps, 1)
        if not 0 <= check_int("steps", steps, 0) <= max_steps:
            raise ValueError(f"steps must be in [0, max_steps={max_steps}], got {steps}")
        if not isinstance(inner_lr, int | float) or not 1e-4 <= inner_lr <= 1.0:
            raise ValueError(f"inner_lr must be a number in [1e-4, 1], got {inner_lr!r}")
        super().__init__("inner-steps-plot")
        self.model = model
        self.initializations = {k: dict(v) for k, v in initializations.items()}
        self.tasks, self.shots, self.queries, self.seed = tasks, shots, queries, seed

        self.task_picker = widgets.BoundedIntText(
            value=0, min=0, max=10**6, description="task", layout=widgets.Layout(width="160px")
        )
        self.task_picker.add_class("inner-steps-task")
        self.new_button = widgets.Button(description="new task", icon="refresh")
        self.new_button.add_class("inner-steps-new-task")
        self.new_button.on_click(lambda _: self.new_task())
        self.steps_slider = widgets.IntSlider(
            value=steps, min=0, max=max_steps, description="inner steps"
        )
        self.steps_slider.add_class("inner-steps-slider")
        self.lr_slider = widgets.FloatLogSlider(
            value=inner_lr,
            base=10,
            min=-4,
            max=0,
            step=0.1,
            description="inner lr",
            readout_format=".3g",
        )
        self.lr_slider.add_class("inner-lr-slider")
        self.readout = widgets.Label(value="")
        self.readout.add_class("inner-steps-readout")
        self.summary = widgets.HTML(value="")
        self.summary.add_class("inner-steps-summary")
        self._task_cache: dict[int, TaskBatch] = {}
        for control in (self.task_picker, self.steps_slider, self.lr_slider):
            control.observe(lambda _: self.update(), names="value")
        self.update()

    @property
    def ui(self) -> widgets.Widget:
        controls = widgets.HBox(
            [self.task_picker, self.new_button, self.steps_slider, self.lr_slider]
        )
        status = widgets.HBox([widgets.Label("picture drawn for inner steps ="), self.readout])
        return widgets.VBox([controls, self.image, status, self.summary])

    def task(self, index: int) -> TaskBatch:
        """Task number ``index`` (a batch of one), the same for the same seed."""
        if index not in self._task_cache:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
            batch = self.tasks.sample(1, self.shots, self.queries, generator=generator)
            dtype = next(iter(next(iter(self.initializations.values())).values())).dtype
            self._task_cache[index] = batch.to(dtype)
        return self._task_cache[index]

    def new_task(self) -> None:
        """Move to the next task (redraws through the task picker)."""
        self.task_picker.value = self.task_picker.value + 1

    def update(self) -> None:
        """Adapt every initialization to the current task and redraw."""
        steps, lr = self.steps_slider.value, self.lr_slider.value
        batch = self.task(self.task_picker.value)
        self.batch = batch
        self.losses: dict[str, list[float]] = {}
        self.adapted: dict[str, Params] = {}
        self.figure.clear()
        fit_ax, loss_ax = self.figure.subplots(1, 2, width_ratios=(1.3, 1))
        x = torch.linspace(-5, 5, 200, dtype=batch.support_x.dtype).unsqueeze(-1)
        truth = batch.functions(x.to(torch.float64))[0, :, 0]
        fit_ax.plot(x[:, 0], truth, color="black", lw=2, label="true function")
        fit_ax.scatter(
            batch.support_x[0, :, 0],
            batch.support_y[0, :, 0],
            color="black",
            s=25,
            zorder=3,
            label=f"{self.shots} support points",
        )
        for i, (label, params) in enumerate(self.initializations.items()):
            adapted = adaptation_trajectory(
                self.model,
                params,
                batch.support_x[0],
                batch.support_y[0],
                batch.query_x[0],
                batch.query_y[0],
                steps=steps,
                inner_lr=lr,
            )
            # A diverging inner loop may overflow: plot it as off the scale, not as a gap.
            losses = [
                v if math.isfinite(v) else float("inf") for v in adapted.query_losses.tolist()
            ]
            self.losses[label], self.adapted[label] = losses, adapted.params
            color = algorithm_color(label, i)
            y = predict(self.model, adapted.params, x)[:, 0].clamp(-50, 50)
            fit_ax.plot(x[:, 0], y, color=color, lw=1.8, ls="--", label=f"{label}, {steps} steps")
            loss_ax.plot(range(steps + 1), losses, color=color, marker="o", ms=3, label=label)
        fit_ax.set_ylim(-6, 6)
        fit_ax.set_xlabel("input x")
        fit_ax.set_ylabel("output y")
        fit_ax.set_title(
            f"task {self.task_picker.value}: fit after {steps} inner steps (lr {lr:.3g})"
        )
        fit_ax.legend(fontsize="x-small", loc="lower left")
        loss_ax.set_xlabel("inner steps")
        loss_ax.set_ylabel("query loss (MSE)")
        plain_log_scale(loss_ax)
        loss_ax.set_title("query loss while adapting")
        loss_ax.legend(fontsize="x-small")
        self._show()
        self.summary.value = "; ".join(
            f"<b>{label}</b>: query loss {losses[0]:.3g} &rarr; {losses[-1]:.3g}"
            for label, losses in self.losses.items()
        )
        self.readout.value = str(steps)
