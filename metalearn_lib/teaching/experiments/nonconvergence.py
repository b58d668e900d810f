"""Experiment 3b of chapter 4: task distributions too dissimilar for meta-training to converge.

Experiment 3 shows a shared start that is a compromise. Here the tasks differ
so much that MAML, with the chapter's recipe, does not get anywhere: the
meta-training loss hardly falls, and the initialization adapts no better
than the untrained network, or blows up when adapted for more steps.

Three sinusoid distributions are meta-trained with the same recipe, from the
same weights: the MAML paper's (the control), one whose amplitudes span
0.1 to 50 (tasks of very different scales), and one whose frequencies span
0.5 to 4 (tasks of very different shapes). Every loss is also given relative
to the untrained network's loss without adaptation on the same tasks, so
distributions of different scales can be compared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from tqdm.auto import tqdm

from ...checks import check_bool, check_int
from ...models import parameters_of
from ...tasks import SinusoidTasks
from ...training import Evaluation, History, evaluate, meta_train
from .recipe import CHAPTER, Settings, check_settings, format_number, markdown_table

__all__ = ["DISSIMILAR", "OUTSIDE", "NonConvergence", "dissimilar_distributions"]

#: The distributions compared: name -> SinusoidTasks keyword arguments.
DISSIMILAR: dict[str, dict] = {
    "paper sines": {},
    "amplitudes 0.1 to 50": {"amplitude": (0.1, 50.0)},
    "frequencies 0.5 to 4": {"frequency": (0.5, 4.0)},
}

#: Tasks outside the first distribution's range: name -> SinusoidTasks keyword arguments.
OUTSIDE: dict[str, dict] = {
    "inputs 5 to 10": {"x_range": (5.0, 10.0)},
    "amplitudes 5 to 10": {"amplitude": (5.0, 10.0)},
}


@dataclass
class NonConvergence:
    """Result of :func:`dissimilar_distributions`.

    Attributes
    ----------
    histories : dict of str to History
        Meta-training loss per distribution.
    evaluations : dict of str to Evaluation
        Test loss on the distribution's own fresh tasks after 0..n steps.
    references : dict of str to float
        The untrained network's loss without adaptation on the same tasks.
    on_paper : dict of str to Evaluation
        Each initialization evaluated on the paper's sines.
    outside : dict of str to Evaluation
        The first distribution's initialization on tasks outside its range.
    outside_references : dict of str to float
        The untrained network's loss without adaptation on those tasks.
    window : int
        Iterations averaged at the start and the end of training.
    settings : Settings
    """

    histories: dict[str, History]
    evaluations: dict[str, Evaluation]
    references: dict[str, float]
    on_paper: dict[str, Evaluation]
    outside: dict[str, Evaluation]
    outside_references: dict[str, float]
    window: int
    settings: Settings

    def training_ratio(self, name: str) -> float:
        """Mean training loss of the last ``window`` iterations over that of the first."""
        loss = self.histories[name].loss
        first = sum(loss[: self.window]) / self.window
        last = sum(loss[-self.window :]) / self.window
        return last / first

    def relative(self, name: str) -> list[float]:
        """Test loss after each step count over the untrained network's loss (inf: non-finite)."""
        return [
            v / self.references[name] if math.isfinite(v) else math.inf
            for v in self.evaluations[name].mean
        ]

    def claims(self) -> dict:
        """The numbers the chapter's text relies on, in one flat dict keyed by distribution."""
        out: dict = {"steps": list(self.settings.eval_steps)}
        for name in self.histories:
            out[name] = {
                "training_ratio": self.training_ratio(name),
                "relative": [v if math.isfinite(v) else None for v in self.relative(name)],
                "reference": self.references[name],
                "paper_loss": [v if math.isfinite(v) else None for v in self.on_paper[name].mean],
            }
        for name, ev in self.outside.items():
            out[f"outside: {name}"] = {
                "loss": [v if math.isfinite(v) else None for v in ev.mean],
                "reference": self.outside_references[name],
            }
        return out

    def summary(self) -> str:
        """The numbers as a Markdown table, one row per distribution."""
        steps = self.settings.eval_steps
        rows = [
            [
                name,
                f"{self.training_ratio(name):.2f}",
                format_number(self.references[name]),
                *(format_number(v, 2) for v in self.relative(name)),
                format_number(self.on_paper[name].at(self.settings.report_steps)[0]),
            ]
            for name in self.histories
        ]
        header = [
            "tasks",
            f"training loss, last {self.window} / first {self.window} iterations",
            "untrained loss (no adaptation)",
            *(f"test loss / untrained, {s} steps" for s in steps),
            f"on the paper's sines, {self.settings.report_steps} steps",
        ]
        first = next(iter(self.histories))
        s = self.settings.report_steps
        outside = [
            [f"{first}, own test tasks", format_number(self.evaluations[first].at(s)[0])],
            *([name, format_number(ev.at(s)[0])] for name, ev in self.outside.items()),
        ]
        return (
            markdown_table(header, rows)
            + f"\n\nThe {first} initialization on tasks outside its range:\n\n"
            + markdown_table(["test tasks", f"loss after {s} steps"], outside)
        )


def dissimilar_distributions(
    settings: Settings = CHAPTER,
    *,
    distributions: Mapping[str, dict] | None = None,
    outside: Mapping[str, dict] | None = None,
    window: int = 25,
    progress: bool = True,
) -> NonConvergence:
    """Meta-train MAML on each distribution with the same recipe; measure whether it converges.

    Parameters
    ----------
    settings : Settings
        Training and evaluation recipe (the same for every distribution).
    distributions : mapping of str to dict, optional
        Name -> keyword arguments of :class:`~metalearn_lib.tasks.SinusoidTasks`
        (default :data:`DISSIMILAR`).
    outside : mapping of str to dict, optional
        Distributions outside the first one's range, on which its
        initialization is also evaluated (default :data:`OUTSIDE`).
    window : int
        Iterations averaged at the start and end of the training curve.
    progress : bool
        Show a progress bar.
    """
    settings = check_settings(settings)
    distributions = dict(DISSIMILAR if distributions is None else distributions)
    if not distributions:
        raise ValueError("distributions must name at least one distribution")
    check_int("window", window, 1)
    if 2 * window > settings.iterations:
        raise ValueError(
            f"window ({window}) must be at most half of settings.iterations ({settings.iterations})"
        )
    check_bool("progress", progress)
    model = settings.model()
    paper = SinusoidTasks()
    histories, evaluations, references, on_paper = {}, {}, {}, {}
    first_params = None
    for name, kwargs in tqdm(
        distributions.items(), desc="distributions", disable=not progress, leave=False
    ):
        tasks = SinusoidTasks(**kwargs)
        params, histories[name] = meta_train(
            model, tasks, algorithm="maml", progress=False, **settings.train_kwargs()
        )
        start = evaluate(model, parameters_of(model), tasks, **settings.eval_kwargs(steps=(0,)))
        references[name] = start.mean[0]
        evaluations[name] = evaluate(model, params, tasks, **settings.eval_kwargs())
        on_paper[name] = evaluate(model, params, paper, **settings.eval_kwargs())
        if first_params is None:
            first_params = params
    outside_evals, outside_refs = {}, {}
    for name, kwargs in dict(OUTSIDE if outside is None else outside).items():
        tasks = SinusoidTasks(**kwargs)
        start = evaluate(model, parameters_of(model), tasks, **settings.eval_kwargs(steps=(0,)))
        outside_refs[name] = start.mean[0]
        outside_evals[name] = evaluate(model, first_params, tasks, **settings.eval_kwargs())
    return NonConvergence(
        histories,
        evaluations,
        references,
        on_paper,
        outside_evals,
        outside_refs,
        window,
        settings,
    )
