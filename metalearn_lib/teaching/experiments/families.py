"""Experiment 3 of chapter 4: one initialization shared by dissimilar families, or one each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from ...checks import check_bool
from ...tasks import FAMILIES, FunctionFamilyTasks
from ...training import Evaluation, evaluate, meta_train
from .recipe import (
    CHAPTER,
    AlgorithmRun,
    FitCurves,
    Settings,
    adapted_fits,
    check_settings,
    format_number,
    losses_at,
    markdown_table,
    nonempty,
    paired_difference,
    with_interval,
)

__all__ = ["FamilyComparison", "dissimilar_families"]


@dataclass
class FamilyComparison:
    """Result of :func:`dissimilar_families`.

    Attributes
    ----------
    families : tuple of str
    shared : AlgorithmRun
        MAML meta-trained on the mixture of all families.
    shared_on : dict of str to Evaluation
        The shared initialization evaluated on each family's tasks alone.
    specialists : dict of str to AlgorithmRun
        One MAML initialization per family, each evaluated on its own family.
    settings : Settings
    fits : dict of str to (FitCurves, FitCurves)
        One held-out task per family, adapted from the shared and from the
        family's own initialization (for the figure).
    """

    families: tuple[str, ...]
    shared: AlgorithmRun
    shared_on: dict[str, Evaluation]
    specialists: dict[str, AlgorithmRun]
    settings: Settings
    fits: dict[str, tuple[FitCurves, FitCurves]]

    def gap(self, family: str) -> tuple[float, float]:
        """Shared minus specialist loss on ``family``'s test tasks (paired), with 95% half-width."""
        s = self.settings.report_steps
        return paired_difference(
            losses_at(self.shared_on[family], s), losses_at(self.specialists[family].evaluation, s)
        )

    def summary(self) -> str:
        """The comparison's numbers as a Markdown table, one row per family."""
        s = self.settings.report_steps
        first = self.shared_on[self.families[0]].steps[0]
        rows = [
            [
                f,
                format_number(self.shared_on[f].at(first)[0]),
                with_interval(self.shared_on[f].at(s)),
                with_interval(self.specialists[f].evaluation.at(s)),
                with_interval(self.gap(f)),
            ]
            for f in self.families
        ]
        header = [
            "test tasks",
            f"shared, loss after {first} steps",
            f"shared, after {s} steps",
            f"own family's, after {s} steps",
            "shared minus own (paired)",
        ]
        return markdown_table(header, rows)


def dissimilar_families(
    families: Sequence[str] = ("sine", "line", "quadratic"),
    *,
    settings: Settings = CHAPTER,
    progress: bool = True,
) -> FamilyComparison:
    """One MAML initialization for a mixture of families against one per family.

    Parameters
    ----------
    families : sequence of str
        At least two of ``("sine", "line", "quadratic")``.
    settings : Settings
    progress : bool
        Show a progress bar over the runs.
    """
    settings = check_settings(settings)
    families = nonempty("families", families)
    if len(families) < 2 or len(set(families)) != len(families):
        raise ValueError(f"families must hold at least two different families, got {families}")
    if any(f not in FAMILIES for f in families):
        raise ValueError(f"families must be chosen from {list(FAMILIES)}, got {families}")
    check_bool("progress", progress)
    model = settings.model()
    mixture = FunctionFamilyTasks(families)
    jobs = [None, *families]
    runs: dict = {}
    for job in tqdm(jobs, desc="families", disable=not progress, leave=False):
        tasks = mixture if job is None else FunctionFamilyTasks((job,))
        params, history = meta_train(model, tasks, progress=False, **settings.train_kwargs())
        evaluation = evaluate(model, params, tasks, **settings.eval_kwargs())
        runs[job] = AlgorithmRun("maml", params, history, evaluation)
    shared = runs.pop(None)
    shared_on = {
        f: evaluate(model, shared.params, FunctionFamilyTasks((f,)), **settings.eval_kwargs())
        for f in families
    }
    fits = {}
    for f in families:
        tasks = FunctionFamilyTasks((f,))
        fits[f] = tuple(
            adapted_fits(
                model,
                params,
                tasks,
                num_tasks=1,
                steps=settings.report_steps,
                inner_lr=settings.inner_lr,
                shots=settings.shots,
            )
            for params in (shared.params, runs[f].params)
        )
    return FamilyComparison(families, shared, shared_on, runs, settings, fits)
