"""The task-diversity explorer of chapter 4: meta-train on a distribution of your choice.

The experiment it runs is :func:`metalearn_lib.teaching.experiments.train_at_diversity`,
the same as one point of the chapter's diversity sweep.
"""

from __future__ import annotations

import ipywidgets as widgets

from ...checks import check_int
from ..experiments import (
    CHAPTER,
    DiversitySweep,
    Settings,
    adapted_fits,
    task_distribution,
    train_at_diversity,
)
from ..figures_limitations import plot_diversity_sweep, plot_fit_curves
from .base import FigureExplorer

__all__ = ["DIVERSITY_FAMILY_CHOICES", "TaskDiversityExplorer"]

#: Family choices of the task-diversity explorer: (label, families).
DIVERSITY_FAMILY_CHOICES = (
    ("sines (diversity slider)", ("sine",)),
    ("sines + lines", ("sine", "line")),
    ("sines + lines + quadratics", ("sine", "line", "quadratic")),
    ("lines + quadratics", ("line", "quadratic")),
)


class TaskDiversityExplorer(FigureExplorer):
    """Meta-train on a task distribution of your choice and see where it lands (chapter 4).

    Pick a diversity (sinusoids) or a mixture of function families, press
    "meta-train": MAML and the pretrain baseline are trained with exactly the
    recipe of the chapter's diversity sweep
    (:func:`metalearn_lib.teaching.experiments.train_at_diversity`), the progress bar
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
        check_int("fit_tasks", fit_tasks, 1)
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
