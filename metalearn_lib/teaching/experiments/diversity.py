"""Experiment 2 of chapter 4: MAML against the pretrain baseline as the task distribution widens."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from ...checks import check_bool
from ...tasks import FAMILIES, FunctionFamilyTasks, SinusoidTasks
from ...training import evaluate, meta_train, pretrain
from .recipe import (
    CHAPTER,
    AlgorithmRun,
    ClockedTasks,
    ProgressCallback,
    Settings,
    check_settings,
    losses_at,
    markdown_table,
    nonempty,
    paired_difference,
    with_interval,
)

__all__ = [
    "DiversityRun",
    "DiversitySweep",
    "diversity_sweep",
    "task_distribution",
    "train_at_diversity",
]


def task_distribution(diversity: float = 1.0, families: Sequence[str] = ("sine",)):
    """The task distribution of one point of the diversity experiment.

    Sines alone give :class:`~metalearn_lib.tasks.SinusoidTasks` with the
    given ``diversity``; any other choice of families gives the mixture
    :class:`~metalearn_lib.tasks.FunctionFamilyTasks` (whose ranges are fixed:
    ``diversity`` is then ignored).
    """
    if isinstance(families, str):
        families = (families,)
    families = tuple(families)
    if not families or any(f not in FAMILIES for f in families):
        raise ValueError(f"families must be a non-empty subset of {list(FAMILIES)}, got {families}")
    if families == ("sine",):
        return SinusoidTasks(diversity)
    return FunctionFamilyTasks(families)


@dataclass
class DiversityRun:
    """MAML and the pretrain baseline on one task distribution.

    Attributes
    ----------
    diversity : float
        The sinusoid diversity (meaningless for a family mixture).
    families : tuple of str
        ``("sine",)`` or the families of the mixture.
    maml, pretrain : AlgorithmRun or None
        The two runs (``pretrain`` is None if the baseline was skipped).
    settings : Settings
    """

    diversity: float
    families: tuple[str, ...]
    maml: AlgorithmRun
    pretrain: AlgorithmRun | None
    settings: Settings

    @property
    def is_sinusoid(self) -> bool:
        return self.families == ("sine",)

    @property
    def label(self) -> str:
        if self.is_sinusoid:
            return f"sines, diversity {self.diversity:g}"
        return " + ".join(self.families)

    def loss(self, which: str = "maml") -> tuple[float, float]:
        """``(mean, ci95)`` after ``settings.report_steps`` adaptation steps."""
        run = self.maml if which == "maml" else self.pretrain
        if run is None:
            raise ValueError("this run has no pretrain baseline")
        return run.evaluation.at(self.settings.report_steps)

    def advantage(self) -> tuple[float, float]:
        """Pretrain loss minus MAML loss on the same test tasks, with its 95% half-width."""
        if self.pretrain is None:
            raise ValueError("this run has no pretrain baseline")
        s = self.settings.report_steps
        return paired_difference(
            losses_at(self.pretrain.evaluation, s), losses_at(self.maml.evaluation, s)
        )


def train_at_diversity(
    diversity: float = 1.0,
    *,
    families: Sequence[str] = ("sine",),
    settings: Settings = CHAPTER,
    baseline: bool = True,
    callback: ProgressCallback | None = None,
) -> DiversityRun:
    """Meta-train MAML (and the pretrain baseline) on one task distribution.

    This is one point of :func:`diversity_sweep`; the task-diversity widget
    calls it too, so its result is directly comparable with the sweep.

    Parameters
    ----------
    diversity : float
        Sinusoid diversity (see :class:`~metalearn_lib.tasks.SinusoidTasks`).
    families : sequence of str
        ``("sine",)`` for sinusoids, or a mixture such as ``("sine", "line")``.
    settings : Settings
        Training and evaluation recipe.
    baseline : bool
        Also train and evaluate the pretrain baseline.
    callback : callable, optional
        ``callback(done, total)`` after every meta-iteration (and baseline
        iteration): for progress bars.
    """
    settings = check_settings(settings)
    check_bool("baseline", baseline)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable(done, total) or None, got {callback!r}")
    tasks = task_distribution(diversity, families)
    model = settings.model()
    total = settings.iterations * (2 if baseline else 1)

    def report(offset: int) -> Callable[[int], None] | None:
        if callback is None:
            return None
        return lambda iteration: callback(offset + iteration, total)

    params, history = meta_train(
        model,
        ClockedTasks(tasks, callback=report(0)),
        algorithm="maml",
        progress=False,
        **settings.train_kwargs(),
    )
    maml = AlgorithmRun(
        "maml", params, history, evaluate(model, params, tasks, **settings.eval_kwargs())
    )
    pre = None
    if baseline:
        params, history = pretrain(
            model,
            ClockedTasks(tasks, callback=report(settings.iterations)),
            iterations=settings.iterations,
            batch_size=settings.meta_batch_size,
            shots=settings.shots,
            lr=settings.meta_lr,
            seed=settings.seed,
            progress=False,
        )
        pre = AlgorithmRun(
            "pretrain", params, history, evaluate(model, params, tasks, **settings.eval_kwargs())
        )
    if callback is not None:
        callback(total, total)
    families = ("sine",) if isinstance(tasks, SinusoidTasks) else tuple(tasks.families)
    return DiversityRun(float(diversity), families, maml, pre, settings)


@dataclass
class DiversitySweep:
    """Result of :func:`diversity_sweep`: one :class:`DiversityRun` per diversity."""

    runs: list[DiversityRun]
    settings: Settings

    @property
    def diversities(self) -> list[float]:
        return [r.diversity for r in self.runs]

    def maml_losses(self) -> list[tuple[float, float]]:
        return [r.loss("maml") for r in self.runs]

    def pretrain_losses(self) -> list[tuple[float, float]]:
        return [r.loss("pretrain") for r in self.runs]

    def advantages(self) -> list[tuple[float, float]]:
        return [r.advantage() for r in self.runs]

    def summary(self) -> str:
        """The sweep's numbers as a Markdown table, one row per diversity."""
        s = self.settings.report_steps
        rows = [
            [
                f"{r.diversity:g}",
                with_interval(r.loss("maml")),
                with_interval(r.loss("pretrain")),
                with_interval(r.advantage()),
            ]
            for r in self.runs
        ]
        header = [
            "diversity",
            f"MAML, loss after {s} steps",
            f"pretrain, loss after {s} steps",
            "advantage of MAML (paired)",
        ]
        return markdown_table(header, rows)


def diversity_sweep(
    diversities: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
    *,
    settings: Settings = CHAPTER,
    progress: bool = True,
) -> DiversitySweep:
    """MAML against the pretrain baseline for sinusoid tasks of growing diversity.

    Each point trains MAML and the baseline from the same initial weights on
    ``SinusoidTasks(diversity)`` and evaluates both on the same fresh tasks
    of that distribution.

    Parameters
    ----------
    diversities : sequence of float
        Increasing diversities (0 = a single task, 1 = the MAML paper's
        ranges, 2 = full-period phases, larger amplitudes, frequencies up to 2).
    settings : Settings
    progress : bool
        Show a progress bar over the points.
    """
    settings = check_settings(settings)
    diversities = nonempty("diversities", diversities)
    values = []
    for d in diversities:
        if isinstance(d, bool) or not isinstance(d, int | float) or not math.isfinite(d) or d < 0:
            raise ValueError(f"diversities must be finite numbers >= 0, got {d!r}")
        values.append(float(d))
    if values != sorted(values) or len(set(values)) != len(values):
        raise ValueError(f"diversities must be increasing without repeats, got {values}")
    check_bool("progress", progress)
    runs = [
        train_at_diversity(d, settings=settings)
        for d in tqdm(values, desc="diversity sweep", disable=not progress, leave=False)
    ]
    return DiversitySweep(runs, settings)
