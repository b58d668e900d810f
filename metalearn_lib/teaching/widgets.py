"""Interactive explorers for the chapters (ipywidgets 8 + matplotlib).

Each explorer is a small class: its controls are ordinary ipywidgets
(``explorer.steps_slider`` ...), their changes are handled with ``observe``,
and the picture is a fixed-size PNG in a ``widgets.Image``. The logic runs
without a browser: a test sets ``explorer.steps_slider.value = 5`` and reads
the matplotlib figure (``explorer.figure``) or the numbers the explorer keeps.
Show one in a notebook by leaving it as the last expression of a cell.

Controls carry stable ``description``s and CSS classes (``_dom_classes``) so a
browser test can find them.

* :class:`TaskSampler` (chapter 1) - draw tasks, see the family of functions;
* :class:`InnerStepsExplorer` (chapter 2) - adapt to one task with a chosen
  number of inner steps and inner learning rate;
* :class:`CostLab` (chapter 3) - measure time and peak memory of a meta-step
  against inner steps for MAML, FOMAML and Reptile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from ..algorithms import ALGORITHMS, _check_model_and_params, mse_loss, task_loss
from .figures import (
    ALGORITHM_COLORS,
    figure_png,
    plain_log_scale,
    plot_step_cost,
    plot_tasks,
    predict,
)
from ..tasks import TaskBatch

__all__ = ["CostLab", "InnerStepsExplorer", "TaskSampler"]

Params = dict[str, Tensor]


class _FixedMarginFigure(Figure):
    """A Figure whose ``clear()`` keeps the margins set with ``subplots_adjust``.

    (A plain Figure resets them to the defaults on every clear, which would
    change the layout between the first picture and the redraws.)
    """

    def clear(self, keep_observers: bool = False) -> None:
        names = ("left", "right", "bottom", "top", "wspace", "hspace")
        margins = {name: getattr(self.subplotpars, name) for name in names}
        super().clear(keep_observers)
        self.subplots_adjust(**margins)


class _FigureExplorer:
    """Base: a matplotlib Figure shown as a fixed-size PNG image widget."""

    figsize = (9.0, 3.4)
    dpi = 80

    def __init__(self, image_class: str) -> None:
        # Fixed margins, no layout engine: a redraw stays fast and the picture keeps its size.
        self.figure = _FixedMarginFigure(figsize=self.figsize)
        self.figure.subplots_adjust(left=0.07, right=0.98, bottom=0.17, top=0.9, wspace=0.25)
        width, height = (int(round(s * self.dpi)) for s in self.figsize)
        self.image = widgets.Image(
            format="png",
            layout=widgets.Layout(width=f"{width}px", height=f"{height}px"),
        )
        self.image.add_class(image_class)
        #: How many times the picture was redrawn (tests and browser checks).
        self.renders = 0

    def _show(self) -> None:
        self.image.value = figure_png(self.figure, dpi=self.dpi)
        self.renders += 1

    @property
    def ui(self) -> widgets.Widget:  # pragma: no cover - overridden
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        return self.ui._repr_mimebundle_(**kwargs)


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


# ---------------------------------------------------------------------------
# Chapter 1: the task sampler.
# ---------------------------------------------------------------------------


class TaskSampler(_FigureExplorer):
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
        _check_int("seed", seed, 0)
        super().__init__("task-sampler-plot")
        self.tasks = tasks
        self.seed = seed
        self.tasks_slider = widgets.IntSlider(
            value=_check_int("num_tasks", num_tasks, 1), min=1, max=8, description="tasks"
        )
        self.tasks_slider.add_class("task-sampler-tasks")
        self.shots_slider = widgets.IntSlider(
            value=_check_int("shots", shots, 1), min=1, max=40, description="shots K"
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


# ---------------------------------------------------------------------------
# Chapter 2: the inner-steps explorer.
# ---------------------------------------------------------------------------


def _adaptation_trajectory(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    steps: int,
    lr: float,
    loss_fn=mse_loss,
) -> tuple[list[Params], list[float]]:
    """Parameters and query loss after 0..steps steps of plain gradient descent on task 0."""
    from torch.func import grad

    loss_grad = grad(task_loss, argnums=1)
    sx, sy, qx, qy = batch.support_x[0], batch.support_y[0], batch.query_x[0], batch.query_y[0]
    phi = {n: p.detach() for n, p in params.items()}
    trajectory, losses = [phi], []
    with torch.no_grad():
        losses.append(task_loss(model, phi, qx, qy, loss_fn).item())
    for _ in range(steps):
        g = loss_grad(model, phi, sx, sy, loss_fn)
        phi = {n: (p - lr * g[n]).detach() for n, p in phi.items()}
        trajectory.append(phi)
        with torch.no_grad():
            loss = task_loss(model, phi, qx, qy, loss_fn).item()
        losses.append(loss if math.isfinite(loss) else float("inf"))
    return trajectory, losses


class InnerStepsExplorer(_FigureExplorer):
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
            _check_model_and_params(model, params)
        if not callable(getattr(tasks, "sample", None)):
            raise TypeError(f"tasks must be a task distribution, got {type(tasks).__name__}")
        _check_int("shots", shots, 1)
        _check_int("queries", queries, 1)
        _check_int("seed", seed, 0)
        _check_int("max_steps", max_steps, 1)
        if not 0 <= _check_int("steps", steps, 0) <= max_steps:
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
            trajectory, losses = _adaptation_trajectory(self.model, params, batch, steps, lr)
            self.losses[label], self.adapted[label] = losses, trajectory[-1]
            color = ALGORITHM_COLORS.get(label.lower().split()[0], f"C{i}")
            y = predict(self.model, trajectory[-1], x)[:, 0].clamp(-50, 50)
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


# ---------------------------------------------------------------------------
# Chapter 3: the cost lab.
# ---------------------------------------------------------------------------


class CostLab(_FigureExplorer):
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
        Any of ``"maml"``, ``"fomaml"``, ``"reptile"``.
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
        algorithms: Sequence[str] = ALGORITHMS,
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
        _check_int("repeats", repeats, 1)
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
        from ..cost import measure_step_cost

        self.run_button.disabled = True
        self.costs = []
        self.progress.value = 0
        try:
            for algorithm in self.algorithms:
                for k in self.inner_steps:
                    self.status.value = f"{algorithm.upper()}, {k} inner steps ..."
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


# --- Chapter 4: limitations ---
# The task-diversity explorer and the practice-quiz helpers of chapter 4 (helper E).
# The experiments themselves live in metalearn_lib.experiments (headless).

#: Family choices of the task-diversity explorer: (label, families).
DIVERSITY_FAMILY_CHOICES = (
    ("sines (diversity slider)", ("sine",)),
    ("sines + lines", ("sine", "line")),
    ("sines + lines + quadratics", ("sine", "line", "quadratic")),
    ("lines + quadratics", ("line", "quadratic")),
)


class TaskDiversityExplorer(_FigureExplorer):
    """Meta-train on a task distribution of your choice and see where it lands (chapter 4).

    Pick a diversity (sinusoids) or a mixture of function families, press
    "meta-train": MAML and the pretrain baseline are trained with exactly the
    recipe of the chapter's diversity sweep
    (:func:`metalearn_lib.experiments.train_at_diversity`), the progress bar
    advances with every iteration, and the picture shows

    * left: the meta-learned initialization adapted to a few held-out tasks;
    * middle and right: the sweep, with this run as a red star (a dashed line
      for a family mixture, which has no place on the diversity axis).

    Parameters
    ----------
    sweep : DiversitySweep, optional
        The chapter's sweep; without it the middle and right panels show only this run.
    settings : Settings, optional
        Training recipe; defaults to the sweep's (or the chapter's) so the
        star is comparable with the curve.
    diversity : float
        Initial slider value.
    fit_tasks : int
        Held-out tasks drawn on the left.

    Attributes
    ----------
    diversity_slider : ipywidgets.FloatSlider
        Sinusoid diversity (CSS class ``task-diversity-slider``); disabled
        while a family mixture is chosen.
    families_picker : ipywidgets.Dropdown
        Sines only, or a mixture of families (``task-diversity-families``).
    train_button : ipywidgets.Button
        Starts training (``task-diversity-train``).
    progress : ipywidgets.IntProgress
        One tick per training iteration (``task-diversity-progress``).
    summary : ipywidgets.HTML
        The run's numbers in words.
    run : DiversityRun or None
        The last run; ``fits`` holds its adapted held-out tasks.
    """

    figsize = (12.0, 3.9)

    def __init__(
        self,
        sweep=None,
        *,
        settings=None,
        diversity: float = 1.0,
        fit_tasks: int = 3,
    ) -> None:
        from .experiments import CHAPTER, DiversitySweep, Settings

        if sweep is not None and not isinstance(sweep, DiversitySweep):
            raise TypeError(f"sweep must be a DiversitySweep or None, got {type(sweep).__name__}")
        if settings is None:
            settings = sweep.settings if sweep is not None else CHAPTER
        if not isinstance(settings, Settings):
            raise TypeError(f"settings must be a Settings, got {type(settings).__name__}")
        if isinstance(diversity, bool) or not isinstance(diversity, int | float):
            raise TypeError(f"diversity must be a number, got {type(diversity).__name__}")
        top = max(2.0, max(sweep.diversities) if sweep is not None else 0.0)
        if not 0.0 <= diversity <= top:
            raise ValueError(f"diversity must be in [0, {top:g}], got {diversity}")
        _check_int("fit_tasks", fit_tasks, 1)
        super().__init__("task-diversity-plot")
        self.figure.subplots_adjust(left=0.05, right=0.99, bottom=0.14, top=0.91, wspace=0.32)
        self.sweep, self.settings, self.fit_tasks = sweep, settings, fit_tasks
        self.run = None
        self.fits = None
        self.diversity_slider = widgets.FloatSlider(
            value=float(diversity), min=0.0, max=top, step=0.25, description="diversity"
        )
        self.diversity_slider.add_class("task-diversity-slider")
        self.families_picker = widgets.Dropdown(
            options=list(DIVERSITY_FAMILY_CHOICES),
            value=("sine",),
            description="families",
            layout=widgets.Layout(width="320px"),
        )
        self.families_picker.add_class("task-diversity-families")
        self.families_picker.observe(self._on_families, names="value")
        self.train_button = widgets.Button(
            description="meta-train", icon="play", button_style="primary"
        )
        self.train_button.add_class("task-diversity-train")
        self.train_button.on_click(lambda _: self.train())
        self.progress = widgets.IntProgress(
            value=0, min=0, max=2 * settings.iterations, description="training"
        )
        self.progress.add_class("task-diversity-progress")
        self.status = widgets.Label(value="choose a distribution and press 'meta-train'")
        self.status.add_class("task-diversity-status")
        self.summary = widgets.HTML(value="")
        self.summary.add_class("task-diversity-summary")
        self._draw()

    @property
    def ui(self) -> widgets.Widget:
        controls = widgets.HBox([self.diversity_slider, self.families_picker, self.train_button])
        return widgets.VBox(
            [controls, widgets.HBox([self.progress, self.status]), self.image, self.summary]
        )

    def _on_families(self, change) -> None:
        self.diversity_slider.disabled = change["new"] != ("sine",)

    def _progress(self, done: int, total: int) -> None:
        # A message per iteration is cheap, but every 5th keeps the browser relaxed.
        if done == total or done % 5 == 0:
            self.progress.max = total
            self.progress.value = done

    def train(self):
        """Meta-train with the current choices, then redraw; returns the DiversityRun."""
        from .experiments import adapted_fits, task_distribution, train_at_diversity

        families = self.families_picker.value
        diversity = float(self.diversity_slider.value)
        self.train_button.disabled = True
        self.progress.value = 0
        what = f"diversity {diversity:g}" if families == ("sine",) else " + ".join(families)
        self.status.value = f"training MAML and the baseline on {what} ..."
        try:
            run = train_at_diversity(
                diversity, families=families, settings=self.settings, callback=self._progress
            )
            s = self.settings
            self.fits = adapted_fits(
                s.model(),
                run.maml.params,
                task_distribution(diversity, families),
                num_tasks=self.fit_tasks,
                shots=s.shots,
                steps=s.report_steps,
                inner_lr=s.inner_lr,
            )
            self.run = run
            self.status.value = "done"
        finally:
            self.train_button.disabled = False
        self._draw()
        maml, maml_ci = run.loss("maml")
        pre, pre_ci = run.loss("pretrain")
        gain, gain_ci = run.advantage()
        self.summary.value = (
            f"<b>{run.label}</b>: after {self.settings.report_steps} adaptation steps, "
            f"MAML {maml:.3g} &plusmn; {maml_ci:.2g}, pretrain {pre:.3g} &plusmn; {pre_ci:.2g}; "
            f"advantage of MAML {gain:.3g} &plusmn; {gain_ci:.2g} (same test tasks)."
        )
        return run

    def _draw(self) -> None:
        from .experiments import DiversitySweep
        from .figures import plot_diversity_sweep, plot_fit_curves

        self.figure.clear()
        fit_ax, loss_ax, adv_ax = self.figure.subplots(1, 3)
        if self.fits is not None:
            plot_fit_curves(self.fits, ax=fit_ax, title=f"{self.run.label}: held-out tasks")
        else:
            fit_ax.text(0.5, 0.5, "not trained yet", ha="center", transform=fit_ax.transAxes)
            fit_ax.set_xlabel("input x")
            fit_ax.set_ylabel("output y")
        sweep = self.sweep
        if sweep is None and self.run is not None and self.run.is_sinusoid:
            sweep = DiversitySweep([self.run], self.settings)
        if sweep is not None:
            plot_diversity_sweep(sweep, axes=(loss_ax, adv_ax), highlight=self.run)
            for ax in (loss_ax, adv_ax):
                ax.set_title(ax.get_title(), fontsize="small")
                ax.set_xlabel("task diversity")
            adv_ax.set_ylabel("advantage of MAML", labelpad=0)
        else:
            for ax in (loss_ax, adv_ax):
                ax.text(0.5, 0.5, "no sweep to compare with", ha="center", transform=ax.transAxes)
                ax.set_xlabel("task diversity")
            if self.run is not None:
                loss_ax.axhline(self.run.loss("maml")[0], color="crimson", ls="--")
                adv_ax.axhline(self.run.advantage()[0], color="crimson", ls="--")
        self._show()


class _PracticeFeedback:
    """What :func:`practice_feedback` returns: Markdown text that renders in a notebook."""

    def __init__(self, text: str, ok: bool) -> None:
        self.text, self.ok = text, ok

    def __repr__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return self.text


def practice_feedback(question, answer) -> _PracticeFeedback:
    """Check a practice answer and explain every statement, without a traceback.

    Parameters
    ----------
    question : metalearn_lib.quiz.Question
        A practice question (with key and explanations).
    answer : set of str or None
        The learner's answer, e.g. ``{"A", "C"}``; ``None`` means not answered yet.

    Returns
    -------
    object
        Renders as Markdown: a reminder if ``answer`` is None, the format
        problem if it is malformed (``.ok`` is False in both cases), or the
        score with a right/wrong verdict and an explanation per statement.
    """
    from ..quiz import Question

    if not isinstance(question, Question):
        raise TypeError(f"question must be a quiz.Question, got {type(question).__name__}")
    if question.key is None:
        raise ValueError("question has no key: practice feedback needs a practice question")
    if answer is None:
        letters = ", ".join(question.letters)
        return _PracticeFeedback(
            f"*Not answered yet.* Replace `None` with the set of true letters (from {letters}), "
            'e.g. `{"A", "C"}`, and run the cell again.',
            ok=False,
        )
    try:
        text = question.feedback(answer)
    except (TypeError, ValueError) as error:
        return _PracticeFeedback(f"**Answer format:** {error}", ok=False)
    return _PracticeFeedback(text, ok=True)


def limitations_practice() -> list:
    """The practice questions of chapter 4 (variants and limitations), with explanations.

    Every statement is backed by an experiment of the chapter (or the maths
    of chapter 2); the explanations say which.
    """
    from ..quiz import Question

    return [
        Question(
            "Time, memory and what they buy (experiment 1): which statements are true?",
            [
                "Reptile's meta-step skips a computation that FOMAML's makes: the gradient of "
                "each task's query loss at the adapted parameters.",
                "Knowing each algorithm's time per meta-iteration is enough to tell which one "
                "reaches a given loss first.",
                "Switching from MAML to FOMAML changes the adapted parameters each task reaches "
                "in the inner loop.",
                "With a fixed memory budget, the largest number of inner steps you can afford "
                "is smaller for MAML than for FOMAML.",
                "The three algorithms are judged on the same fresh test tasks, so their losses "
                "can be compared task by task (a paired comparison).",
            ],
            key={"A", "D", "E"},
            explanations={
                "A": "True: Reptile's direction is theta minus the adapted parameters; FOMAML "
                "also backpropagates each task's query loss. With one inner step the saving shows "
                "in experiment 1's time panel; with many, the inner loop dominates both.",
                "B": "False: what matters is time per iteration times the iterations needed; "
                "that is why experiment 1 plots the training loss against seconds.",
                "C": "False: the inner loop is the same plain gradient descent; only the outer "
                "direction differs (the Hessian terms are dropped).",
                "D": "True: MAML's peak memory rises with the inner steps while FOMAML's stays "
                "nearly flat (experiment 1, memory panel).",
                "E": "True: evaluate() draws its test tasks from a fixed seed, and the reading "
                "quotes paired differences with their 95% intervals.",
            },
            question_id="Practice 1",
        ),
        Question(
            "About task diversity (experiment 2 and the widget), which statements are true?",
            [
                "The pretrain baseline is a fair comparison: it sees tasks from the same "
                "distribution and is adapted the same way at test time; only its training "
                "objective differs.",
                "Where MAML's advantage over pretraining is larger, MAML's own loss is lower.",
                "If no single starting point is a few small gradient steps away from most tasks, "
                "MAML's advantage over pretraining can vanish.",
                "Pretraining on sinusoids with random phases learns roughly their average, which "
                "is close to a flat line.",
                "A widget run at a diversity of the sweep, with the sweep's settings, lands on the "
                "sweep's point: same recipe, same seeds, same test tasks.",
            ],
            key={"A", "C", "D", "E"},
            explanations={
                "A": "True: both runs use the same tasks, iterations and test-time adaptation "
                "(train_at_diversity); pretraining minimizes the loss before adaptation, MAML "
                "the loss after it.",
                "B": "False: the advantage is a difference of two losses; in the sweep it can "
                "grow with diversity while MAML's own loss rises too.",
                "C": "True: at the widest setting of the sweep, look at the advantage panel and "
                "its 95% interval.",
                "D": "True: the phases cover half a period or more, so the sines cancel on "
                "average (chapter 1 shows the average task).",
                "E": "True: the widget calls the same train_at_diversity as the sweep, and every "
                "random draw is seeded.",
            },
            question_id="Practice 2",
        ),
        Question(
            "Dissimilar and drifting tasks (experiments 3 and 4): which statements are true?",
            [
                "A shared initialization for a mixture of families is a compromise, and the "
                "families with larger losses pull it harder, since the meta-gradient averages "
                "the task losses.",
                "Using one initialization per family at test time requires knowing (or "
                "inferring) which family a new task belongs to.",
                "Before the drift began, the initialization was already a good start for the "
                "late tasks, since they are sines too.",
                "After a drift, the final initialization is tuned to the most recent tasks.",
                "A low meta-training loss at the end of training shows that the initialization "
                "still suits the tasks seen at the start.",
            ],
            key={"A", "B", "D"},
            explanations={
                "A": "True: MAML minimizes the mean post-adaptation loss over tasks; families "
                "with large losses dominate that mean (experiment 3, losses before adaptation).",
                "B": "True: to pick the right start, the learner must know the family; that is "
                "extra information the shared initialization does not need.",
                "C": "False: the late sines are the early ones upside down; in experiment 4 the "
                "late-task loss stayed near its untrained level before the drift while the "
                "early-task loss fell.",
                "D": "True: experiment 4, late-task curve and adapted fits.",
                "E": "False: the meta-training loss is computed on the tasks of the moment; only "
                "the separate evaluation on early tasks in experiment 4 shows they were forgotten.",
            },
            question_id="Practice 3",
        ),
        Question(
            "Hyperparameters of MAML (experiment 5): which statements are true?",
            [
                "The untrained network's loss after a row's own adaptation, measured before any "
                "meta-training, already warns when that row's inner learning rate is too large.",
                "If the inner loop produces NaN, switching the meta-optimizer from SGD to Adam "
                "fixes it.",
                "With the same meta learning rate, SGD and Adam move the weights by similar "
                "amounts.",
                "A larger meta-batch averages the meta-gradient over more tasks, which makes it "
                "less noisy.",
                "More inner steps help whatever the inner learning rate.",
            ],
            key={"A", "D"},
            explanations={
                "A": "True: the grid's reading quotes it; with a large inner learning rate it is "
                "far above the loss without adaptation, before MAML has trained at all.",
                "B": "False: a NaN meta-gradient makes NaN weights whatever the optimizer does "
                "with it; the fix is a smaller inner learning rate (or fewer steps).",
                "C": "False: SGD's step is lr × gradient, Adam's is about lr per weight; with "
                "MAML's small meta-gradients SGD moves far less (the grid's SGD columns).",
                "D": "True: the meta-gradient is a mean over the batch's tasks; its variance "
                "falls roughly as 1 / batch size.",
                "E": "False: with a large inner learning rate, every extra step compounds the "
                "overshoot (the grid's 3-step, large-lr row).",
            },
            question_id="Practice 4",
        ),
    ]


__all__ += [
    "DIVERSITY_FAMILY_CHOICES",
    "TaskDiversityExplorer",
    "limitations_practice",
    "practice_feedback",
]


# --- Chapter 5: few-shot image classification ---
# The few-shot episode explorer and the chapter's check-yourself exercises (helper D).
# The data and the conv net live in metalearn_lib.datasets and metalearn_lib.models.


class FewShotExplorer(_FigureExplorer):
    """One test episode: support images, and query predictions before and after adaptation.

    Column ``j`` of the picture is the episode's class with label ``j``: its
    support images on top (the only labelled images the learner gets), then
    the query images. Above each query image: the label predicted *before*
    adaptation -> the label predicted *after* ``steps`` gradient steps on the
    support set; green when the second is right, red when it is wrong.

    Parameters
    ----------
    model : nn.Module
        An N-way classifier, e.g. ``ConvNet(out_features=5)``.
    initializations : dict of label to parameter dict
        The starting points to compare, e.g. ``{"MAML": theta, "pretrained": theta_pre}``.
    tasks : FewShotTasks
        Where episodes come from (the meta-test classes).
    shots, queries : int
        Support and query images per class (``queries`` are shown).
    steps : int
        Initial number of adaptation steps.
    inner_lr : float or dict of label to float
        Learning rate of adaptation, one for all or one per initialization.
    seed : int
        Episode number ``i`` is always the same episode for the same seed.
    max_steps, max_shots : int
        Largest values of the sliders.

    Attributes
    ----------
    episode_picker : ipywidgets.BoundedIntText
        Which episode (CSS class ``few-shot-episode``); ``new_button`` moves to the next.
    start_dropdown : ipywidgets.Dropdown
        Which initialization to adapt (``few-shot-start``).
    shots_slider, steps_slider : ipywidgets.IntSlider
        Support images per class, adaptation steps (``few-shot-shots``, ``few-shot-steps``).
    predictions_before, predictions_after : Tensor
        Predicted labels of the query images (class-major, like ``batch.query_y``).
    accuracy_before, accuracy_after : float
        Fraction of query images labelled correctly.
    class_names : list of str
        The episode's classes, in label order.
    """

    figsize = (9.0, 5.8)

    def __init__(
        self,
        model: nn.Module,
        initializations: Mapping[str, Params],
        tasks,
        *,
        shots: int = 1,
        queries: int = 3,
        steps: int = 1,
        inner_lr: float | Mapping[str, float] = 0.4,
        seed: int = 0,
        max_steps: int = 10,
        max_shots: int = 5,
    ) -> None:
        from ..datasets import FewShotTasks

        if not isinstance(tasks, FewShotTasks):
            raise TypeError(f"tasks must be a FewShotTasks, got {type(tasks).__name__}")
        if not isinstance(initializations, Mapping) or not initializations:
            raise TypeError("initializations must be a non-empty dict {label: parameter dict}")
        for params in initializations.values():
            _check_model_and_params(model, params)
        _check_int("max_shots", max_shots, 1)
        _check_int("max_steps", max_steps, 1)
        if not 1 <= _check_int("shots", shots, 1) <= max_shots:
            raise ValueError(f"shots must be in [1, max_shots={max_shots}], got {shots}")
        if not 0 <= _check_int("steps", steps, 0) <= max_steps:
            raise ValueError(f"steps must be in [0, max_steps={max_steps}], got {steps}")
        _check_int("queries", queries, 1)
        _check_int("seed", seed, 0)
        if max_shots + queries > int(tasks.classes.counts.min()):
            raise ValueError(
                f"max_shots + queries = {max_shots + queries} is more images than the smallest "
                f"class has ({int(tasks.classes.counts.min())})"
            )
        if isinstance(inner_lr, Mapping):
            rates = dict(inner_lr)
        else:
            rates = dict.fromkeys(initializations, inner_lr)
        if set(rates) != set(initializations) or any(
            isinstance(r, bool) or not isinstance(r, int | float) or not r > 0
            for r in rates.values()
        ):
            raise ValueError(
                "inner_lr must be a positive number or a dict with a positive number per "
                f"initialization {list(initializations)}, got {inner_lr!r}"
            )
        super().__init__("few-shot-plot")
        self.model, self.tasks = model, tasks
        self.initializations = {k: dict(v) for k, v in initializations.items()}
        self.inner_lr = {k: float(v) for k, v in rates.items()}
        self.queries, self.seed = queries, seed

        self.episode_picker = widgets.BoundedIntText(
            value=0, min=0, max=10**6, description="episode", layout=widgets.Layout(width="170px")
        )
        self.episode_picker.add_class("few-shot-episode")
        self.new_button = widgets.Button(description="new episode", icon="refresh")
        self.new_button.add_class("few-shot-new")
        self.new_button.on_click(lambda _: self.new_episode())
        self.start_dropdown = widgets.Dropdown(
            options=list(self.initializations), description="start from"
        )
        self.start_dropdown.add_class("few-shot-start")
        self.shots_slider = widgets.IntSlider(
            value=shots, min=1, max=max_shots, description="shots K"
        )
        self.shots_slider.add_class("few-shot-shots")
        self.steps_slider = widgets.IntSlider(
            value=steps, min=0, max=max_steps, description="steps"
        )
        self.steps_slider.add_class("few-shot-steps")
        self.summary = widgets.HTML(value="")
        self.summary.add_class("few-shot-summary")
        for control in (
            self.episode_picker,
            self.start_dropdown,
            self.shots_slider,
            self.steps_slider,
        ):
            control.observe(lambda _: self.update(), names="value")
        self.update()

    @property
    def ui(self) -> widgets.Widget:
        top = widgets.HBox([self.episode_picker, self.new_button, self.start_dropdown])
        sliders = widgets.HBox([self.shots_slider, self.steps_slider])
        return widgets.VBox([top, sliders, self.image, self.summary])

    def new_episode(self) -> None:
        """Move to the next episode (redraws through the episode picker)."""
        self.episode_picker.value = self.episode_picker.value + 1

    def episode(self, index: int, shots: int):
        """Episode ``index`` with ``shots`` support images per class: ``(batch, class indices)``."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        dtype = next(iter(next(iter(self.initializations.values())).values())).dtype
        # Draw the largest support set and keep its first `shots` images per class,
        # so the query images stay the same when the shots slider moves.
        most = self.shots_slider.max
        batch, classes = self.tasks.sample_with_classes(
            1, most, self.queries, generator=generator, dtype=dtype
        )
        n = self.tasks.ways
        keep = (torch.arange(n * most) % most) < shots
        return (
            TaskBatch(
                batch.support_x[:, keep], batch.support_y[:, keep], batch.query_x, batch.query_y
            ),
            classes[0],
        )

    def update(self) -> None:
        """Adapt the chosen initialization to the current episode and redraw."""
        import torch.nn.functional as F
        from torch.func import functional_call

        from ..algorithms import adapt

        label = self.start_dropdown.value
        shots, steps = self.shots_slider.value, self.steps_slider.value
        batch, classes = self.episode(self.episode_picker.value, shots)
        self.batch = batch
        self.class_names = [self.tasks.classes.names[i] for i in classes.tolist()]
        theta = self.initializations[label]
        sx, sy, qx, qy = batch.support_x[0], batch.support_y[0], batch.query_x[0], batch.query_y[0]
        phi = adapt(
            self.model,
            theta,
            sx,
            sy,
            steps=steps,
            lr=self.inner_lr[label],
            loss_fn=F.cross_entropy,
        )
        buffers = dict(self.model.named_buffers())
        with torch.no_grad():
            before = functional_call(self.model, (theta, buffers), (qx,)).argmax(-1)
            after = functional_call(self.model, (phi, buffers), (qx,)).argmax(-1)
        self.predictions_before, self.predictions_after = before, after
        self.accuracy_before = (before == qy).float().mean().item()
        self.accuracy_after = (after == qy).float().mean().item()
        self._draw(sx, qx, qy, shots, label, steps)
        self.summary.value = (
            f"<b>{label}</b>: query accuracy {self.accuracy_before:.0%} before adaptation, "
            f"<b>{self.accuracy_after:.0%}</b> after {steps} step{'s' * (steps != 1)} "
            f"on {shots} image{'s' * (shots != 1)} per class (chance: {1 / self.tasks.ways:.0%})"
        )

    def _draw(self, sx: Tensor, qx: Tensor, qy: Tensor, shots: int, label: str, steps: int):
        # One mosaic image in one axes (fast to redraw): column j = label j,
        # support rows on top, a gap, then the query rows.
        from matplotlib.patches import Rectangle

        n, q = self.tasks.ways, self.queries
        height, width = sx.shape[-2:]
        pad, gap = 2, 6
        cell_h, cell_w = height + 3 * pad, 2 * width + 4 * pad  # room for the labels
        rows = shots + q
        mosaic = torch.full((rows * cell_h + gap, n * cell_w), float("nan"))

        def place(image: Tensor, row: int, col: int) -> tuple[int, int]:
            top = row * cell_h + (gap if row >= shots else 0) + 2 * pad
            left = col * cell_w + (cell_w - width) // 2
            mosaic[top : top + height, left : left + width] = image.float()
            return top, left

        self.figure.clear()
        ax = self.figure.add_axes((0.1, 0.02, 0.88, 0.84))
        texts = []
        for j in range(n):
            for r in range(shots):
                place(sx[j * shots + r, 0], r, j)
            for r in range(q):
                i = j * q + r
                top, left = place(qx[i, 0], shots + r, j)
                right = bool(self.predictions_after[i] == qy[i])
                color = "tab:green" if right else "tab:red"
                texts.append((left + width / 2, top - 0.8, i, color))
                ax.add_patch(
                    Rectangle((left - 0.5, top - 0.5), width, height, fill=False, ec=color, lw=1.5)
                )
        ax.imshow(mosaic.numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        for x, y, i, color in texts:
            ax.text(
                x,
                y,
                f"{int(self.predictions_before[i])} → {int(self.predictions_after[i])}",
                ha="center",
                va="bottom",
                fontsize=8,
                color=color,
            )
        ax.set_xticks([j * cell_w + cell_w / 2 - 0.5 for j in range(n)])
        ax.set_xticklabels([f"label {j}\n{name}" for j, name in enumerate(self.class_names)])
        ax.xaxis.tick_top()
        ax.tick_params(length=0, labelsize=8)
        ax.set_yticks([shots * cell_h / 2, shots * cell_h + gap + q * cell_h / 2])
        ax.set_yticklabels(["support", "query"], rotation=90, va="center")
        for spine in ax.spines.values():
            spine.set_visible(False)
        self.figure.suptitle(
            f"{label}: predicted label before → after {steps} steps "
            f"(query accuracy {self.accuracy_before:.0%} → {self.accuracy_after:.0%})",
            fontsize=10,
        )
        self._show()


__all__ += ["FewShotExplorer"]
