"""The directions explorer of chapter 3: watch MAML's, FOMAML's and Reptile's updates part.

The numbers come from :mod:`metalearn_lib.teaching.experiments.toy_directions`
(the library's own ``meta_gradient`` on a two-parameter problem), the pictures
from :mod:`metalearn_lib.teaching.figures_directions`.
"""

from __future__ import annotations

import ipywidgets as widgets

from ...checks import check_int
from ..experiments.toy_directions import ToyProblem, toy_cosines, toy_directions, toy_problem
from ..figures_directions import plot_toy_cosines, plot_toy_directions
from .base import FigureExplorer

__all__ = ["DirectionsExplorer"]


class DirectionsExplorer(FigureExplorer):
    """Two sliders, inner steps and inner learning rate; the update arrows and cosines follow.

    Left: theta, each task's optimum and bowl, and the three update directions
    (equal lengths). Right: the cosine of FOMAML's and Reptile's direction with
    MAML's against ``alpha`` times the largest curvature, for the current number
    of steps, with the current ``alpha`` marked.

    Parameters
    ----------
    problem : ToyProblem, optional
        Default :func:`toy_problem` (3 tasks, seed 0).
    inner_steps, inner_lr : int, float
        Initial slider values.
    max_lr : float
        Right end of the learning-rate slider and of the cosine curve.

    Attributes
    ----------
    steps_slider : ipywidgets.IntSlider
        Inner steps, 1..10 (CSS class ``directions-steps``).
    lr_slider : ipywidgets.FloatSlider
        Inner learning rate (``directions-lr``).
    directions : dict of str to Tensor
        The current directions.
    cosines : dict of str to float
        The current cosine of FOMAML's and Reptile's direction with MAML's.
    curve : (list of float, dict of str to list of float)
        Learning rates and cosines of the right panel (computed once per number of steps).
    """

    figsize = (10.0, 4.4)
    curve_points = 24

    def __init__(
        self,
        problem: ToyProblem | None = None,
        *,
        inner_steps: int = 1,
        inner_lr: float = 0.01,
        max_lr: float = 0.45,
    ) -> None:
        problem = toy_problem() if problem is None else problem
        if not isinstance(problem, ToyProblem):
            raise TypeError(f"problem must be a ToyProblem or None, got {type(problem).__name__}")
        check_int("inner_steps", inner_steps, 1)
        if not 0 < inner_lr <= max_lr:
            raise ValueError(f"inner_lr must be in (0, max_lr={max_lr}], got {inner_lr!r}")
        super().__init__("directions-plot")
        self.figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.91, wspace=0.3)
        self.problem = problem
        self.max_lr = float(max_lr)
        self._curves: dict[int, tuple[list[float], dict[str, list[float]]]] = {}
        self.steps_slider = widgets.IntSlider(
            value=inner_steps, min=1, max=10, description="inner steps"
        )
        self.steps_slider.add_class("directions-steps")
        self.lr_slider = widgets.FloatSlider(
            value=inner_lr,
            min=0.005,
            max=self.max_lr,
            step=0.005,
            description="inner lr α",
            readout_format=".3f",
        )
        self.lr_slider.add_class("directions-lr")
        self.summary = widgets.HTML(value="")
        self.summary.add_class("directions-summary")
        for control in (self.steps_slider, self.lr_slider):
            control.observe(lambda _: self._update(), names="value")
        self._update()

    @property
    def ui(self) -> widgets.Widget:
        return widgets.VBox(
            [widgets.HBox([self.steps_slider, self.lr_slider]), self.image, self.summary]
        )

    @property
    def alpha_curvature(self) -> float:
        """The current ``alpha`` times the problem's largest curvature."""
        return self.lr_slider.value * self.problem.max_curvature

    @property
    def curve(self) -> tuple[list[float], dict[str, list[float]]]:
        steps = self.steps_slider.value
        if steps not in self._curves:
            step = self.max_lr / self.curve_points
            lrs = [step * (i + 1) for i in range(self.curve_points)]
            self._curves[steps] = lrs, toy_cosines(self.problem, inner_steps=steps, inner_lrs=lrs)
        return self._curves[steps]

    def _update(self) -> None:
        steps, lr = self.steps_slider.value, self.lr_slider.value
        self.directions = toy_directions(self.problem, inner_steps=steps, inner_lr=lr)
        self.cosines = toy_cosines(self.problem, inner_steps=steps, inner_lrs=[lr])
        self.cosines = {name: values[0] for name, values in self.cosines.items()}
        self.figure.clear()
        arrows_ax, cosine_ax = self.figure.subplots(1, 2, width_ratios=(1, 1.25))
        plot_toy_directions(
            self.problem, self.directions, ax=arrows_ax, title=f"k = {steps}, α = {lr:.3f}"
        )
        lrs, cosines = self.curve
        plot_toy_cosines(
            lrs,
            cosines,
            max_curvature=self.problem.max_curvature,
            current=lr,
            ax=cosine_ax,
            title=f"cosine with MAML's direction, k = {steps}",
        )
        self._show()
        self.summary.value = (
            f"α × largest curvature = {self.alpha_curvature:.2f}; cosine with MAML's direction: "
            + ", ".join(
                f"{name.upper() if name == 'fomaml' else name.capitalize()} {value:+.3f}"
                for name, value in self.cosines.items()
            )
        )
