"""The shared recipe of chapter 4's experiments, and what every experiment reuses.

* :class:`Settings` - one training and evaluation recipe; :data:`CHAPTER` is the
  chapter's (a few hundred meta-iterations with a large Adam step, so that every
  experiment finishes in seconds on a laptop CPU);
* :class:`AlgorithmRun` - one meta-training run and its evaluation;
* :func:`paired_difference` - a difference of two models on the same test tasks;
* :class:`ClockedTasks` - a task distribution seen through another clock;
* :func:`adapted_fits` - held-out tasks before and after adaptation, for figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from ...algorithms import adaptation_trajectory
from ...checks import Params, check_int, check_positive, ci95
from ...models import MLP
from ...training import META_OPTIMIZERS, Evaluation, History

__all__ = [
    "CHAPTER",
    "AlgorithmRun",
    "ClockedTasks",
    "FitCurves",
    "ProgressCallback",
    "Settings",
    "adapted_fits",
    "check_settings",
    "format_number",
    "losses_at",
    "markdown_table",
    "with_interval",
    "nonempty",
    "paired_difference",
]

#: ``callback(done, total)``: for progress bars.
ProgressCallback = Callable[[int, int], None]


def check_settings(settings: object) -> Settings:
    """``settings`` if it is a :class:`Settings`; else a TypeError."""
    if not isinstance(settings, Settings):
        raise TypeError(f"settings must be a Settings, got {type(settings).__name__}")
    return settings


def nonempty(name: str, values: object) -> tuple:
    """``values`` as a tuple if it is a non-empty sequence (not a string); else a TypeError."""
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"{name} must be a non-empty sequence, got {values!r}")
    return tuple(values)


@dataclass(frozen=True)
class Settings:
    """One training and evaluation recipe, shared by every experiment.

    Attributes
    ----------
    iterations : int
        Meta-training iterations of one run.
    meta_batch_size : int
        Tasks per meta-iteration.
    inner_steps, inner_lr :
        The inner loop used for training and for evaluation.
    meta_optimizer : {"adam", "sgd"}
        Outer optimizer.
    meta_lr : float
        Outer learning rate (also the pretrain baseline's Adam learning rate).
    shots, queries : int
        Support and query points per training task.
    hidden : tuple of int
        Hidden layer widths of the :class:`~metalearn_lib.models.MLP`.
    model_seed, seed :
        Seeds of the network's initial weights and of the training tasks.
    eval_tasks, eval_queries :
        Fresh test tasks and query points per test task.
    eval_steps : tuple of int
        Adaptation step counts reported; the largest is the headline number.
    eval_seed : int
        Seed of the test tasks: every model in an experiment sees the same ones.
    """

    iterations: int = 250
    meta_batch_size: int = 10
    inner_steps: int = 1
    inner_lr: float = 0.01
    meta_optimizer: str = "adam"
    meta_lr: float = 0.01
    shots: int = 10
    queries: int = 10
    hidden: tuple[int, ...] = (40, 40)
    model_seed: int = 0
    seed: int = 0
    eval_tasks: int = 200
    eval_queries: int = 50
    eval_steps: tuple[int, ...] = (0, 1, 5, 10)
    eval_seed: int = 12345

    def __post_init__(self) -> None:
        for name in ("iterations", "meta_batch_size", "shots", "queries", "eval_tasks"):
            check_int(name, getattr(self, name), 1)
        check_int("eval_queries", self.eval_queries, 1)
        for name in ("inner_steps", "model_seed", "seed", "eval_seed"):
            check_int(name, getattr(self, name), 0)
        check_positive("inner_lr", self.inner_lr)
        check_positive("meta_lr", self.meta_lr)
        if self.meta_optimizer not in META_OPTIMIZERS:
            raise ValueError(
                f"meta_optimizer must be one of {META_OPTIMIZERS}, got {self.meta_optimizer!r}"
            )
        if isinstance(self.hidden, str) or not isinstance(self.hidden, tuple) or not self.hidden:
            raise TypeError(f"hidden must be a non-empty tuple of ints, got {self.hidden!r}")
        for width in self.hidden:
            check_int("hidden width", width, 1)
        steps = self.eval_steps
        if not isinstance(steps, tuple) or not steps:
            raise TypeError(f"eval_steps must be a non-empty tuple of ints, got {steps!r}")
        for s in steps:
            check_int("eval_steps entry", s, 0)
        if list(steps) != sorted(set(steps)):
            raise ValueError(f"eval_steps must be increasing without repeats, got {steps}")

    @property
    def report_steps(self) -> int:
        """The adaptation step count the readings quote (the largest of ``eval_steps``)."""
        return self.eval_steps[-1]

    def model(self) -> MLP:
        """A fresh network with the recipe's architecture and initial weights."""
        return MLP(hidden=self.hidden, seed=self.model_seed)

    def train_kwargs(self, **overrides) -> dict:
        """Keyword arguments of :func:`~metalearn_lib.training.meta_train`."""
        kwargs = dict(
            inner_steps=self.inner_steps,
            inner_lr=self.inner_lr,
            meta_optimizer=self.meta_optimizer,
            meta_lr=self.meta_lr,
            meta_batch_size=self.meta_batch_size,
            shots=self.shots,
            queries=self.queries,
            iterations=self.iterations,
            seed=self.seed,
        )
        kwargs.update(overrides)
        return kwargs

    def eval_kwargs(self, **overrides) -> dict:
        """Keyword arguments of :func:`~metalearn_lib.training.evaluate`."""
        kwargs = dict(
            num_tasks=self.eval_tasks,
            shots=self.shots,
            queries=self.eval_queries,
            steps=self.eval_steps,
            inner_lr=self.inner_lr,
            seed=self.eval_seed,
        )
        kwargs.update(overrides)
        return kwargs

    def as_dict(self) -> dict:
        """The settings as a plain dict (for labels and reports)."""
        return asdict(self)


#: The recipe of the chapter: small enough to run every experiment in seconds.
CHAPTER = Settings()


def paired_difference(a: Tensor, b: Tensor) -> tuple[float, float]:
    """Mean of ``a - b`` over the same tasks and its 95% half-width (1.96 SE)."""
    diff = (a - b).to(torch.float64)
    return diff.mean().item(), float(ci95(diff))


def format_number(value: float, digits: int = 3) -> str:
    """A number for a table: ``digits`` significant digits, NaN and infinity spelt out."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def with_interval(mean_and_half: tuple[float, float]) -> str:
    """``(mean, half-width)`` as ``"mean ± half"``."""
    mean, half = mean_and_half
    return f"{format_number(mean)} ± {format_number(half, 2)}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (the experiments' ``summary()`` tables)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def losses_at(evaluation: Evaluation, steps: int) -> Tensor:
    """Per-task losses of ``evaluation`` after ``steps`` adaptation steps."""
    return evaluation.losses[evaluation.steps.index(steps)]


class ClockedTasks:
    """A task distribution seen through a different clock, with an optional callback.

    ``meta_train`` samples ``tasks`` with ``iteration = 0, 1, ...``. This
    wrapper passes ``clock(iteration)`` on instead (so a run can continue
    where another ended on a drifting distribution, or hold the distribution
    still for a while) and calls ``callback(iteration)`` before each sample
    (so a widget can move a progress bar). Nothing else changes.
    """

    def __init__(
        self,
        tasks,
        clock: Callable[[int], int] | None = None,
        callback: Callable[[int], None] | None = None,
    ) -> None:
        self.tasks, self.clock, self.callback = tasks, clock, callback

    def sample(self, num_tasks, shots, queries=None, *, generator=None, iteration=0, **kwargs):
        if self.callback is not None:
            self.callback(iteration)
        when = iteration if self.clock is None else self.clock(iteration)
        return self.tasks.sample(
            num_tasks, shots, queries, generator=generator, iteration=when, **kwargs
        )

    def __getattr__(self, name):  # e.g. x_range or sample_functions, for plots
        return getattr(self.tasks, name)


@dataclass
class FitCurves:
    """Curves of a few held-out tasks before and after adaptation, ready to plot.

    Attributes
    ----------
    x : Tensor
        ``[N]`` grid of inputs.
    truth : Tensor
        ``[T, N]`` true function of each task.
    support_x, support_y : Tensor
        ``[T, K]`` the support points each task adapts on.
    before, after : Tensor
        ``[T, N]`` predictions of the initialization and of the adapted model.
    families : list of str
        Function family of each task.
    steps, inner_lr :
        The adaptation that produced ``after``.
    """

    x: Tensor
    truth: Tensor
    support_x: Tensor
    support_y: Tensor
    before: Tensor
    after: Tensor
    families: list[str]
    steps: int
    inner_lr: float


def adapted_fits(
    model: torch.nn.Module,
    params: Params,
    tasks,
    *,
    num_tasks: int = 3,
    shots: int = 10,
    steps: int = 10,
    inner_lr: float = 0.01,
    seed: int = 2024,
    iteration: int = 0,
    points: int = 200,
) -> FitCurves:
    """Adapt ``params`` to ``num_tasks`` held-out tasks and return the curves.

    Parameters
    ----------
    model : nn.Module
        The network the parameters belong to.
    params : dict
        The initialization (theta).
    tasks : task distribution
        Where the held-out tasks come from (with known functions).
    num_tasks, shots : int
        How many tasks, and support points per task.
    steps, inner_lr :
        Adaptation: plain gradient descent on the support set.
    seed : int
        Seeds the held-out tasks.
    iteration : int
        For drifting distributions: when the tasks are drawn.
    points : int
        Grid size of the curves.
    """
    check_int("num_tasks", num_tasks, 1)
    check_int("points", points, 2)
    generator = torch.Generator().manual_seed(seed)
    dtype = next(iter(params.values())).dtype
    batch = tasks.sample(num_tasks, shots, 1, generator=generator, iteration=iteration).to(dtype)
    if batch.functions is None:
        raise ValueError("adapted_fits needs tasks whose true functions are known")
    low, high = getattr(tasks, "x_range", (-5.0, 5.0))
    x = torch.linspace(low, high, points, dtype=dtype).unsqueeze(-1)
    theta = {n: p.detach() for n, p in params.items()}
    buffers = dict(model.named_buffers())
    truth = batch.functions(x.to(torch.float64))[..., 0].to(dtype)
    with torch.no_grad():
        start = torch.func.functional_call(model, (theta, buffers), (x,))[:, 0]
    after = []
    for i in range(num_tasks):
        # The curve itself is the query set, so the trajectory ends at the adapted fit.
        adapted = adaptation_trajectory(
            model,
            theta,
            batch.support_x[i],
            batch.support_y[i],
            x,
            truth[i].unsqueeze(-1),
            steps=steps,
            inner_lr=inner_lr,
        )
        with torch.no_grad():
            after.append(torch.func.functional_call(model, (adapted.params, buffers), (x,))[:, 0])
    return FitCurves(
        x=x[:, 0],
        truth=truth,
        support_x=batch.support_x[..., 0],
        support_y=batch.support_y[..., 0],
        before=start.expand(num_tasks, -1).clone(),
        after=torch.stack(after),
        families=batch.functions.names(),
        steps=steps,
        inner_lr=inner_lr,
    )


@dataclass
class AlgorithmRun:
    """One meta-training run and its evaluation on fresh tasks.

    Attributes
    ----------
    algorithm : str
        ``"maml"``, ``"fomaml"``, ``"reptile"`` (or ``"pretrain"``).
    params : dict
        The learned initialization.
    history : History
        Training loss (and elapsed seconds) per iteration.
    evaluation : Evaluation
        Post-adaptation loss on the test tasks.
    """

    algorithm: str
    params: Params
    history: History
    evaluation: Evaluation

    @property
    def seconds(self) -> float:
        """Wall-clock seconds the training took."""
        return self.history.elapsed[-1] if self.history.elapsed else 0.0
