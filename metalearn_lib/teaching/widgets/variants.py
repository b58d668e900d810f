"""Chapter 6's explorer: any registered algorithms, side by side, at your number of inner steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import torch

from ...algorithms import ALGORITHMS, algorithm_label
from ...checks import check_int
from ...cost import measure_step_cost
from ...models import MLP
from ...tasks import SinusoidTasks
from ...training import evaluate, meta_train
from ...variants import AnnealedStepWeights
from ..figures_variants import plot_comparison
from .base import FigureExplorer

__all__ = ["ComparisonRow", "VariantComparison"]


@dataclass
class ComparisonRow:
    """One algorithm's numbers: test loss after 0..k steps, time and peak memory of a step."""

    algorithm: str
    losses: list[float]
    milliseconds: float
    peak_mib: float


def _options(algorithm: str, iterations: int) -> dict:
    """Learned rates start at the inner lr; MAML++ anneals its weights over half the run."""
    if algorithm == "metasgd":
        return {"init_lr": 0.01}
    if algorithm == "mamlpp":
        return {"step_weights": AnnealedStepWeights(max(1, iterations // 2)), "init_lr": 0.01}
    return {}


class VariantComparison(FigureExplorer):
    """Train the chosen algorithms briefly on sinusoids and compare loss, time and memory.

    Choose algorithms and a number of inner steps ``k``, press "compare":
    each algorithm meta-trains the same MLP on the same tasks (same seed) with
    ``k`` inner steps, then is evaluated on the same fresh tasks after
    0..k steps of its own adaptation; one meta-step is timed and its peak
    memory measured.

    Parameters
    ----------
    iterations : int
        Meta-training iterations per algorithm (short: this is a sketch).
    eval_tasks : int
        Fresh test tasks.
    choices : sequence of str
        Algorithms offered (default: every registered one).

    Attributes
    ----------
    algorithms : ipywidgets.SelectMultiple
        The chosen algorithms (CSS class ``variant-compare-algorithms``).
    inner_steps : ipywidgets.IntSlider
        k (``variant-compare-steps``).
    run_button : ipywidgets.Button
        Starts the comparison (``variant-compare-run``).
    rows : list of ComparisonRow
        The last comparison's numbers.
    """

    figsize = (11.0, 3.4)

    def __init__(
        self,
        *,
        iterations: int = 100,
        eval_tasks: int = 100,
        choices: Sequence[str] | None = None,
        selected: Sequence[str] = ("maml", "anil"),
        inner_steps: int = 2,
    ) -> None:
        check_int("iterations", iterations, 1)
        check_int("eval_tasks", eval_tasks, 1)
        check_int("inner_steps", inner_steps, 1)
        choices = tuple(ALGORITHMS if choices is None else choices)
        unknown = [a for a in (*choices, *selected) if a not in ALGORITHMS]
        if unknown or not set(selected) <= set(choices):
            raise ValueError(
                f"choices and selected must come from {ALGORITHMS} (selected within choices), "
                f"got unknown {unknown}"
            )
        super().__init__("variant-compare-plot")
        self.figure.subplots_adjust(left=0.06, right=0.99, bottom=0.25, top=0.95, wspace=0.35)
        self.iterations, self.eval_tasks = iterations, eval_tasks
        self.algorithms = widgets.SelectMultiple(
            options=[(algorithm_label(a), a) for a in choices],
            value=tuple(selected),
            description="algorithms",
            rows=min(7, len(choices)),
        )
        self.algorithms.add_class("variant-compare-algorithms")
        self.inner_steps = widgets.IntSlider(
            value=inner_steps, min=1, max=10, description="inner steps"
        )
        self.inner_steps.add_class("variant-compare-steps")
        self.run_button = widgets.Button(description="compare", icon="play", button_style="primary")
        self.run_button.add_class("variant-compare-run")
        self.run_button.on_click(lambda _: self.run())
        self.status = widgets.Label(value="choose, then press 'compare'")
        self.status.add_class("variant-compare-status")
        self.rows: list[ComparisonRow] = []
        # A new choice makes the old picture stale: say so instead of silently keeping it.
        for control in (self.algorithms, self.inner_steps):
            control.observe(self._stale, names="value")
        self._draw()

    @property
    def ui(self) -> widgets.Widget:
        controls = widgets.VBox([self.inner_steps, widgets.HBox([self.run_button, self.status])])
        return widgets.VBox([widgets.HBox([self.algorithms, controls]), self.image])

    def _stale(self, _change=None) -> None:
        self.status.value = "changed: press 'compare'"

    def _draw(self) -> None:
        self.figure.clear()
        plot_comparison(self.rows, axes=self.figure.subplots(1, 3))
        self._show()

    def compare_one(self, algorithm: str, k: int) -> ComparisonRow:
        """Train, evaluate and measure one algorithm with ``k`` inner steps."""
        model, tasks = MLP(seed=0), SinusoidTasks()
        options = _options(algorithm, self.iterations)
        params, _ = meta_train(
            model,
            tasks,
            algorithm=algorithm,
            inner_steps=k,
            inner_lr=0.01,
            iterations=self.iterations,
            meta_batch_size=10,
            options=options,
            progress=False,
        )
        test_options = {n: v for n, v in options.items() if n != "step_weights"}
        result = evaluate(
            model,
            params,
            tasks,
            num_tasks=self.eval_tasks,
            steps=tuple(range(k + 1)),
            algorithm=algorithm,
            options=test_options or None,
        )
        batch = tasks.sample(10, 10, 10, generator=torch.Generator().manual_seed(1))
        cost = measure_step_cost(
            model, batch, algorithm=algorithm, inner_steps=k, inner_lr=0.01, repeats=1
        )
        return ComparisonRow(algorithm, result.mean, cost.milliseconds, cost.peak_bytes / 2**20)

    def run(self) -> list[ComparisonRow]:
        """Compare the selected algorithms at the chosen inner steps; returns the rows."""
        chosen, k = tuple(self.algorithms.value), self.inner_steps.value
        if not chosen:
            self.status.value = "choose at least one algorithm"
            return self.rows
        self.run_button.disabled = True
        self.rows = []
        try:
            for algorithm in chosen:
                self.status.value = f"{algorithm_label(algorithm)}, {k} inner steps ..."
                self.rows.append(self.compare_one(algorithm, k))
                self._draw()
            self.status.value = f"done: {len(chosen)} algorithms, {k} inner steps"
        finally:
            self.run_button.disabled = False
        return self.rows
