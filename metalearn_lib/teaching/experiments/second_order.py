"""Experiment 1 of chapter 4: what second order costs, and what first order gives up.

* :func:`cost_of_second_order` - time and memory against inner steps, and the
  same-budget training runs;
* :func:`architecture_cost_sweep` - time and memory as the network gets
  deeper or wider (chapter 3's cost lab varied only the inner steps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ...algorithms import ALGORITHMS, algorithm_label
from ...checks import check_bool, check_int
from ...cost import StepCost, cost_sweep, measure_step_cost
from ...models import MLP
from ...tasks import SinusoidTasks
from ...training import evaluate, meta_train
from .recipe import (
    CHAPTER,
    AlgorithmRun,
    Settings,
    check_settings,
    format_number,
    losses_at,
    markdown_table,
    nonempty,
    paired_difference,
    with_interval,
)

__all__ = [
    "ArchitectureCost",
    "CostOfSecondOrder",
    "architecture_cost_sweep",
    "cost_of_second_order",
]


@dataclass
class CostOfSecondOrder:
    """Result of :func:`cost_of_second_order`.

    Attributes
    ----------
    costs : list of StepCost
        Time and peak memory of one meta-step per algorithm and inner-step count.
    runs : dict of str to AlgorithmRun
        The same-budget training runs, one per algorithm.
    inner_steps : int
        Inner steps used by the training runs.
    settings : Settings
    """

    costs: list[StepCost]
    runs: dict[str, AlgorithmRun]
    inner_steps: int
    settings: Settings

    def cost(self, algorithm: str, inner_steps: int) -> StepCost:
        """The measurement for one algorithm and inner-step count."""
        for c in self.costs:
            if c.algorithm == algorithm and c.inner_steps == inner_steps:
                return c
        raise ValueError(f"no measurement for algorithm={algorithm!r}, inner_steps={inner_steps}")

    def final_loss(self, algorithm: str) -> tuple[float, float]:
        """``(mean, ci95)`` post-adaptation loss of a training run."""
        return self.runs[algorithm].evaluation.at(self.settings.report_steps)

    def iterations_to_reach(self, algorithm: str, threshold: float, window: int = 25):
        """First iteration (1-based) whose smoothed training loss is below ``threshold``.

        None if it never gets there.
        """
        smoothed = self.runs[algorithm].history.smoothed(window)
        below = [i for i, v in enumerate(smoothed) if v < threshold]
        return below[0] + 1 if below else None

    def halfway_loss(self, reference: str = "maml", window: int = 25) -> float:
        """Halfway between ``reference``'s first and last smoothed training loss."""
        smoothed = self.runs[reference].history.smoothed(window)
        return 0.5 * (smoothed[0] + smoothed[-1])

    def difference(self, algorithm: str, reference: str = "maml") -> tuple[float, float]:
        """``algorithm``'s loss minus ``reference``'s on the same test tasks, with 95% half-width.

        After ``settings.report_steps`` adaptation steps; positive: ``algorithm`` is worse.
        """
        s = self.settings.report_steps
        return paired_difference(
            losses_at(self.runs[algorithm].evaluation, s),
            losses_at(self.runs[reference].evaluation, s),
        )

    def summary(self, reference: str = "maml") -> str:
        """The measured numbers as a Markdown table, one row per algorithm."""
        steps = sorted({c.inner_steps for c in self.costs})
        low, high = steps[0], steps[-1]
        s = self.settings.report_steps
        threshold = self.halfway_loss(reference) if reference in self.runs else None
        rows = []
        for a in dict.fromkeys(c.algorithm for c in self.costs):
            lo, hi = self.cost(a, low), self.cost(a, high)
            memory = (
                f"{lo.peak_bytes / 2**20:.2f} → {hi.peak_bytes / 2**20:.2f}"
                if lo.peak_bytes >= 0 and hi.peak_bytes >= 0
                else "not measured"
            )
            row = [algorithm_label(a), f"{lo.milliseconds:.0f} → {hi.milliseconds:.0f}", memory]
            if a in self.runs:
                run = self.runs[a]
                difference = "" if a == reference else with_interval(self.difference(a, reference))
                reached = self.iterations_to_reach(a, threshold) if threshold is not None else None
                row += [
                    with_interval(run.evaluation.at(s)),
                    difference,
                    f"{run.seconds:.1f}",
                    "never" if reached is None else str(reached),
                ]
            rows.append(row)
        header = [
            "algorithm",
            f"ms per meta-step ({low} → {high} inner steps)",
            f"peak MiB ({low} → {high})",
            f"loss after {s} steps",
            f"minus {algorithm_label(reference)}'s (paired)",
            "training seconds",
            f"iterations to {format_number(threshold) if threshold else '-'}",
        ]
        return markdown_table(header, rows)


def cost_of_second_order(
    settings: Settings = CHAPTER,
    *,
    cost_steps: Sequence[int] = (1, 5, 10),
    algorithms: Sequence[str] = ("maml", "fomaml", "reptile"),
    train_inner_steps: int = 2,
    repeats: int = 3,
    memory: bool = True,
    progress: bool = True,
) -> CostOfSecondOrder:
    """Measure what second order costs and what first order gives up.

    Part 1 times one meta-step (and measures its peak memory) for every
    algorithm and every entry of ``cost_steps`` with
    :func:`metalearn_lib.cost.cost_sweep`. Part 2 meta-trains each algorithm
    with the same settings, the same tasks and ``train_inner_steps`` inner
    steps, and evaluates all of them on the same fresh tasks.

    Parameters
    ----------
    settings : Settings
        Training and evaluation recipe.
    cost_steps : sequence of int
        Inner-step counts to measure.
    algorithms : sequence of str
        Registered algorithm names (default: MAML and its two first-order variants).
    train_inner_steps : int
        Inner steps of the training runs (Reptile needs more than one).
    repeats : int
        Timed calls per measurement (the median is kept).
    memory : bool
        Also measure peak memory.
    progress : bool
        Show progress bars.

    Returns
    -------
    CostOfSecondOrder
    """
    settings = check_settings(settings)
    algorithms = nonempty("algorithms", algorithms)
    unknown = [a for a in algorithms if a not in ALGORITHMS]
    if unknown:
        raise ValueError(f"algorithms must be chosen from {ALGORITHMS}, got unknown {unknown}")
    check_int("train_inner_steps", train_inner_steps, 1)
    check_bool("progress", progress)
    model = settings.model()
    tasks = SinusoidTasks()
    generator = torch.Generator().manual_seed(settings.seed)
    batch = tasks.sample(
        settings.meta_batch_size, settings.shots, settings.queries, generator=generator
    )
    costs = cost_sweep(
        model,
        batch,
        algorithms=algorithms,
        inner_steps=tuple(cost_steps),
        inner_lr=settings.inner_lr,
        repeats=repeats,
        memory=memory,
        progress=progress,
    )
    runs = {}
    for algorithm in tqdm(algorithms, desc="training", disable=not progress, leave=False):
        params, history = meta_train(
            model,
            tasks,
            algorithm=algorithm,
            progress=False,
            **settings.train_kwargs(inner_steps=train_inner_steps),
        )
        evaluation = evaluate(model, params, tasks, **settings.eval_kwargs())
        runs[algorithm] = AlgorithmRun(algorithm, params, history, evaluation)
    return CostOfSecondOrder(costs, runs, train_inner_steps, settings)


@dataclass
class ArchitectureCost:
    """Result of :func:`architecture_cost_sweep`.

    Attributes
    ----------
    depths, widths : tuple of int
        Hidden layers, and units per hidden layer, of the networks measured.
    base_depth, base_width : int
        The depth used when sweeping the width, and the width used when sweeping the depth.
    inner_steps : int
        Inner steps of every meta-step measured.
    by_depth, by_width : dict of str to list of StepCost
        Per algorithm, one measurement per depth (at ``base_width``) and per
        width (at ``base_depth``).
    parameters : dict of (depth, width) to int
        Number of weights of each network.
    """

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    base_depth: int
    base_width: int
    inner_steps: int
    by_depth: dict[str, list[StepCost]]
    by_width: dict[str, list[StepCost]]
    parameters: dict[tuple[int, int], int]

    def ratio(self, axis: str, what: str, algorithm: str = "maml") -> float:
        """Largest network's cost over the smallest one's along ``axis`` ("depth" or "width").

        ``what`` is ``"milliseconds"`` or ``"peak_bytes"``.
        """
        if axis not in ("depth", "width"):
            raise ValueError(f"axis must be 'depth' or 'width', got {axis!r}")
        if what not in ("milliseconds", "peak_bytes"):
            raise ValueError(f"what must be 'milliseconds' or 'peak_bytes', got {what!r}")
        costs = (self.by_depth if axis == "depth" else self.by_width)[algorithm]
        return getattr(costs[-1], what) / getattr(costs[0], what)

    def claims(self) -> dict:
        """The numbers the chapter's text relies on, in one flat dict."""
        out = {}
        for axis in ("depth", "width"):
            for what, short in (("milliseconds", "time"), ("peak_bytes", "memory")):
                for a in self.by_depth:
                    out[f"{a}_{short}_ratio_{axis}"] = self.ratio(axis, what, a)
        for axis, costs in (("depth", self.by_depth), ("width", self.by_width)):
            maml, fo = costs["maml"], costs.get("fomaml")
            if fo is not None:
                out[f"memory_maml_over_fomaml_{axis}"] = [
                    m.peak_bytes / f.peak_bytes for m, f in zip(maml, fo)
                ]
                out[f"time_maml_over_fomaml_{axis}"] = [
                    m.milliseconds / f.milliseconds for m, f in zip(maml, fo)
                ]
        return out

    def summary(self) -> str:
        """Time and peak memory per network, MAML against the others, as a Markdown table."""
        algorithms = list(self.by_depth)
        rows = []
        for axis, values, costs in (
            ("depth", self.depths, self.by_depth),
            ("width", self.widths, self.by_width),
        ):
            for i, v in enumerate(values):
                depth, width = (v, self.base_width) if axis == "depth" else (self.base_depth, v)
                rows.append(
                    [
                        f"{depth} × {width}",
                        str(self.parameters[(depth, width)]),
                        *(f"{costs[a][i].milliseconds:.1f}" for a in algorithms),
                        *(f"{costs[a][i].peak_bytes / 2**20:.2f}" for a in algorithms),
                    ]
                )
        header = [
            "hidden layers × units",
            "weights",
            *(f"{algorithm_label(a)} ms" for a in algorithms),
            *(f"{algorithm_label(a)} peak MiB" for a in algorithms),
        ]
        return markdown_table(header, rows) + f"\n\n{self.inner_steps} inner steps per meta-step."


def architecture_cost_sweep(
    settings: Settings = CHAPTER,
    *,
    depths: Sequence[int] = (1, 2, 4, 8),
    widths: Sequence[int] = (20, 40, 80, 160),
    base_depth: int = 2,
    base_width: int = 40,
    algorithms: Sequence[str] = ("maml", "fomaml"),
    inner_steps: int = 5,
    repeats: int = 3,
    progress: bool = True,
) -> ArchitectureCost:
    """Time and peak memory of one meta-step as the network gets deeper or wider.

    Every network is an :class:`~metalearn_lib.models.MLP` with ``depth``
    hidden layers of ``width`` units; each meta-step uses the same tasks
    (one meta-batch of ``settings``) and ``inner_steps`` inner steps.

    Parameters
    ----------
    depths, widths : sequences of int
        Depths measured at ``base_width``, and widths measured at ``base_depth``.
    algorithms : sequence of str
        Registered algorithm names; the first is the one the ratios refer to.
    inner_steps, repeats : int
        Inner steps per meta-step; timed calls per measurement (median kept).
    progress : bool
        Show a progress bar.
    """
    settings = check_settings(settings)
    depths, widths = nonempty("depths", depths), nonempty("widths", widths)
    for d in depths:
        check_int("depths entry", d, 1)
    for w in widths:
        check_int("widths entry", w, 1)
    check_int("base_depth", base_depth, 1)
    check_int("base_width", base_width, 1)
    algorithms = nonempty("algorithms", algorithms)
    unknown = [a for a in algorithms if a not in ALGORITHMS]
    if unknown:
        raise ValueError(f"algorithms must be chosen from {ALGORITHMS}, got unknown {unknown}")
    check_int("inner_steps", inner_steps, 1)
    check_bool("progress", progress)
    batch = SinusoidTasks().sample(
        settings.meta_batch_size,
        settings.shots,
        settings.queries,
        generator=torch.Generator().manual_seed(settings.seed),
    )
    shapes = [(d, base_width) for d in depths] + [(base_depth, w) for w in widths]
    measured, parameters = {}, {}
    for depth, width in tqdm(dict.fromkeys(shapes), desc="networks", disable=not progress):
        model = MLP(hidden=(width,) * depth, seed=settings.model_seed)
        parameters[(depth, width)] = sum(p.numel() for p in model.parameters())
        for a in algorithms:
            measured[(a, depth, width)] = measure_step_cost(
                model,
                batch,
                algorithm=a,
                inner_steps=inner_steps,
                inner_lr=settings.inner_lr,
                repeats=repeats,
            )
    by_depth = {a: [measured[(a, d, base_width)] for d in depths] for a in algorithms}
    by_width = {a: [measured[(a, base_depth, w)] for w in widths] for a in algorithms}
    return ArchitectureCost(
        tuple(depths),
        tuple(widths),
        base_depth,
        base_width,
        inner_steps,
        by_depth,
        by_width,
        parameters,
    )
