"""The experiments of chapter 4: where MAML runs into its limits.

Each function runs one small, seeded experiment and returns a result object
holding every number it measured, with a ``reading()`` method that turns those
numbers into a short paragraph of plain English. Nothing here draws or uses
widgets: the figures are in :mod:`metalearn_lib.plots` and the task-diversity
explorer in :mod:`metalearn_lib.widgets`, so these runs also work headless in
tests and scripts.

* :func:`cost_of_second_order` - time and memory of one meta-step against
  inner steps, and what the first-order methods give up on the same budget;
* :func:`diversity_sweep` (and :func:`train_at_diversity` for one point) -
  MAML against the pretrain baseline as the task distribution widens;
* :func:`dissimilar_families` - one initialization shared by very different
  function families against one initialization per family;
* :func:`nonstationary_drift` - the task distribution moves during
  meta-training: what happens to early and late tasks;
* :func:`hyperparameter_grid` - final loss over inner steps, inner learning
  rate, meta-optimizer and meta-batch size, divergence included.

All experiments share one recipe, :class:`Settings`; :data:`CHAPTER` is the
one the chapter uses (a few hundred meta-iterations with a large Adam step, so
that every experiment finishes in seconds on a laptop CPU). The same settings
and seeds always give the same numbers, except measured times.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..algorithms import ALGORITHMS, adapt, meta_gradient
from ..cost import StepCost, cost_sweep
from ..models import MLP, parameters_of
from ..tasks import FAMILIES, DriftingSinusoidTasks, FunctionFamilyTasks, SinusoidTasks
from ..training import META_OPTIMIZERS, Evaluation, History, evaluate, meta_train, pretrain

__all__ = [
    "CHAPTER",
    "AlgorithmRun",
    "CostOfSecondOrder",
    "DiversityRun",
    "DiversitySweep",
    "DriftResult",
    "FamilyComparison",
    "FitCurves",
    "GridResult",
    "Settings",
    "adapted_fits",
    "cost_of_second_order",
    "dissimilar_families",
    "diversity_sweep",
    "hyperparameter_grid",
    "nonstationary_drift",
    "task_distribution",
    "train_at_diversity",
]

Params = dict[str, Tensor]
ProgressCallback = Callable[[int, int], None]


# ---------------------------------------------------------------------------
# Shared recipe and small helpers.
# ---------------------------------------------------------------------------


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def _check_settings(settings: object) -> Settings:
    if not isinstance(settings, Settings):
        raise TypeError(f"settings must be a Settings, got {type(settings).__name__}")
    return settings


def _nonempty(name: str, values: object) -> tuple:
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
            _check_int(name, getattr(self, name), 1)
        _check_int("eval_queries", self.eval_queries, 1)
        for name in ("inner_steps", "model_seed", "seed", "eval_seed"):
            _check_int(name, getattr(self, name), 0)
        _check_positive("inner_lr", self.inner_lr)
        _check_positive("meta_lr", self.meta_lr)
        if self.meta_optimizer not in META_OPTIMIZERS:
            raise ValueError(
                f"meta_optimizer must be one of {META_OPTIMIZERS}, got {self.meta_optimizer!r}"
            )
        if isinstance(self.hidden, str) or not isinstance(self.hidden, tuple) or not self.hidden:
            raise TypeError(f"hidden must be a non-empty tuple of ints, got {self.hidden!r}")
        for width in self.hidden:
            _check_int("hidden width", width, 1)
        steps = self.eval_steps
        if not isinstance(steps, tuple) or not steps:
            raise TypeError(f"eval_steps must be a non-empty tuple of ints, got {steps!r}")
        for s in steps:
            _check_int("eval_steps entry", s, 0)
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


def _fmt(value: float, digits: int = 3) -> str:
    """A loss for prose: 3 significant digits, 'NaN'/'inf' spelt out."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "infinite"
    return f"{value:.{digits}g}"


def _paired_difference(a: Tensor, b: Tensor) -> tuple[float, float]:
    """Mean of ``a - b`` over the same tasks and its 95% half-width (1.96 SE)."""
    diff = (a - b).to(torch.float64)
    n = diff.numel()
    half = 1.96 * diff.std().item() / math.sqrt(n) if n > 1 else 0.0
    return diff.mean().item(), half


def _row(evaluation: Evaluation, steps: int) -> Tensor:
    return evaluation.losses[evaluation.steps.index(steps)]


def _first_below(values: Sequence[float], threshold: float) -> int | None:
    """Index of the first value below ``threshold`` (None if never)."""
    for i, v in enumerate(values):
        if v < threshold:
            return i
    return None


class _Clocked:
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


def _finite(params: Params) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in params.values())


# ---------------------------------------------------------------------------
# Adapted fits (data for plots).
# ---------------------------------------------------------------------------


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
    _check_int("num_tasks", num_tasks, 1)
    _check_int("points", points, 2)
    generator = torch.Generator().manual_seed(seed)
    dtype = next(iter(params.values())).dtype
    batch = tasks.sample(num_tasks, shots, 1, generator=generator, iteration=iteration).to(dtype)
    if batch.functions is None:
        raise ValueError("adapted_fits needs tasks whose true functions are known")
    low, high = getattr(tasks, "x_range", (-5.0, 5.0))
    x = torch.linspace(low, high, points, dtype=dtype).unsqueeze(-1)
    theta = {n: p.detach() for n, p in params.items()}
    buffers = dict(model.named_buffers())
    before, after = [], []
    with torch.no_grad():
        start = torch.func.functional_call(model, (theta, buffers), (x,))[:, 0]
    for i in range(num_tasks):
        phi = adapt(
            model,
            theta,
            batch.support_x[i],
            batch.support_y[i],
            steps=steps,
            lr=inner_lr,
            first_order=True,
        )
        with torch.no_grad():
            y = torch.func.functional_call(
                model, ({n: p.detach() for n, p in phi.items()}, buffers), (x,)
            )
        before.append(start)
        after.append(y[:, 0])
    truth = batch.functions(x.to(torch.float64))[..., 0].to(dtype)
    return FitCurves(
        x=x[:, 0],
        truth=truth,
        support_x=batch.support_x[..., 0],
        support_y=batch.support_y[..., 0],
        before=torch.stack(before),
        after=torch.stack(after),
        families=batch.functions.names(),
        steps=steps,
        inner_lr=inner_lr,
    )


# ---------------------------------------------------------------------------
# Experiment 1: the cost of second order.
# ---------------------------------------------------------------------------


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
        """First iteration (1-based) whose smoothed training loss is below ``threshold``."""
        smoothed = self.runs[algorithm].history.smoothed(window)
        i = _first_below(smoothed, threshold)
        return None if i is None else i + 1

    def reading(self) -> str:
        """A paragraph stating what this run measured."""
        parts = []
        algorithms = list(dict.fromkeys(c.algorithm for c in self.costs))
        if "maml" in algorithms:
            k_max = max(c.inner_steps for c in self.costs if c.algorithm == "maml")
            k_min = min(c.inner_steps for c in self.costs if c.algorithm == "maml")
            maml_lo, maml_hi = self.cost("maml", k_min), self.cost("maml", k_max)
            text = (
                f"One MAML meta-step took {maml_lo.milliseconds:.0f} ms with {k_min} inner "
                f"step(s) and {maml_hi.milliseconds:.0f} ms with {k_max}"
            )
            if maml_hi.peak_bytes >= 0 and maml_lo.peak_bytes >= 0:
                text += (
                    f"; its peak memory grew from {maml_lo.peak_bytes / 2**20:.2f} MiB "
                    f"to {maml_hi.peak_bytes / 2**20:.2f} MiB"
                )
            others = []
            for a in algorithms:
                if a == "maml":
                    continue
                c = self.cost(a, k_max)
                o = f"{a.upper()} {c.milliseconds:.0f} ms"
                if c.peak_bytes >= 0 and maml_hi.peak_bytes > 0:
                    o += f" and {c.peak_bytes / 2**20:.2f} MiB"
                others.append(o)
            if others:
                text += f". With {k_max} inner steps the first-order methods needed " + ", ".join(
                    others
                )
            parts.append(text + ".")
        if self.runs:
            s = self.settings.report_steps
            iters = len(next(iter(self.runs.values())).history.loss)
            pieces = []
            for a, run in self.runs.items():
                mean, ci = run.evaluation.at(s)
                pieces.append(f"{a.upper()} {_fmt(mean)} ± {_fmt(ci, 2)} in {run.seconds:.1f} s")
            parts.append(
                f"On the same budget ({iters} meta-iterations, {self.inner_steps} inner "
                f"step(s), same tasks), the loss on fresh tasks after {s} adaptation steps "
                "was: " + "; ".join(pieces) + "."
            )
            if "maml" in self.runs:
                maml = _row(self.runs["maml"].evaluation, s)
                for a in self.runs:
                    if a == "maml":
                        continue
                    diff, half = _paired_difference(_row(self.runs[a].evaluation, s), maml)
                    if diff - half > 0:
                        verdict = (
                            f"{a.upper()} gave up {_fmt(diff, 2)} ± {_fmt(half, 2)} of loss "
                            "against MAML (paired over the same test tasks)"
                        )
                    elif diff + half < 0:
                        verdict = (
                            f"{a.upper()} was better than MAML by {_fmt(-diff, 2)} ± "
                            f"{_fmt(half, 2)} here"
                        )
                    else:
                        verdict = (
                            f"{a.upper()} and MAML are within each other's 95% interval "
                            f"(difference {_fmt(diff, 2)} ± {_fmt(half, 2)})"
                        )
                    ratio = self.runs["maml"].seconds / max(self.runs[a].seconds, 1e-9)
                    parts.append(
                        f"{verdict}, while MAML's training took {ratio:.1f}× as long as "
                        f"{a.upper()}'s."
                    )
                first = self.runs["maml"].history.smoothed(25)
                threshold = 0.5 * (first[0] + first[-1])
                reached = []
                for a, run in self.runs.items():
                    i = self.iterations_to_reach(a, threshold)
                    if i is None:
                        reached.append(f"{a.upper()} never did")
                    else:
                        reached.append(
                            f"{a.upper()} after {i} ({run.history.elapsed[i - 1]:.1f} s)"
                        )
                parts.append(
                    f"Halfway from MAML's first to its last training loss ({_fmt(threshold)}) "
                    "was reached by " + ", ".join(reached) + "."
                )
        return " ".join(parts)


def cost_of_second_order(
    settings: Settings = CHAPTER,
    *,
    cost_steps: Sequence[int] = (1, 2, 5, 10),
    algorithms: Sequence[str] = ALGORITHMS,
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
        Any of ``"maml"``, ``"fomaml"``, ``"reptile"``.
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
    settings = _check_settings(settings)
    algorithms = _nonempty("algorithms", algorithms)
    unknown = [a for a in algorithms if a not in ALGORITHMS]
    if unknown:
        raise ValueError(f"algorithms must be chosen from {ALGORITHMS}, got unknown {unknown}")
    _check_int("train_inner_steps", train_inner_steps, 1)
    _check_bool("progress", progress)
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


# ---------------------------------------------------------------------------
# Experiment 2: task diversity.
# ---------------------------------------------------------------------------


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
        return _paired_difference(_row(self.pretrain.evaluation, s), _row(self.maml.evaluation, s))


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
    settings = _check_settings(settings)
    _check_bool("baseline", baseline)
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
        _Clocked(tasks, callback=report(0)),
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
            _Clocked(tasks, callback=report(settings.iterations)),
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

    def reading(self) -> str:
        """A paragraph stating what this sweep measured."""
        s = self.settings.report_steps
        maml = self.maml_losses()
        pre = self.pretrain_losses()
        adv = self.advantages()
        lo, hi = self.runs[0], self.runs[-1]
        parts = [
            f"After {s} adaptation steps, MAML's loss on fresh tasks went from "
            f"{_fmt(maml[0][0])} at diversity {lo.diversity:g} to {_fmt(maml[-1][0])} at "
            f"diversity {hi.diversity:g} (pretraining: {_fmt(pre[0][0])} to {_fmt(pre[-1][0])})."
        ]
        rising = all(b[0] >= a[0] for a, b in zip(maml, maml[1:]))
        parts.append(
            "It rose with every step up in diversity: the wider the distribution, the less one "
            "initialization plus a few gradient steps can cover."
            if rising
            else "It did not rise at every step of the sweep (the runs are short and the "
            "test tasks finite), but the trend is set by the end points."
        )
        best = max(range(len(adv)), key=lambda i: adv[i][0])
        parts.append(
            f"MAML's advantage over pretraining (pretrain loss minus MAML loss, same test "
            f"tasks) was {_fmt(adv[0][0], 2)} ± {_fmt(adv[0][1], 2)} at diversity "
            f"{lo.diversity:g}, largest at diversity {self.runs[best].diversity:g} "
            f"({_fmt(adv[best][0], 2)} ± {_fmt(adv[best][1], 2)}), and "
            f"{_fmt(adv[-1][0], 2)} ± {_fmt(adv[-1][1], 2)} at diversity {hi.diversity:g}."
        )
        peak, peak_half = adv[best]
        last, last_half = adv[-1]
        if best != len(adv) - 1 and last + last_half < peak - peak_half:
            if last - last_half <= 0:
                parts.append(
                    f"At diversity {hi.diversity:g} the advantage is gone (its interval "
                    "includes zero): the tasks share too little for one starting point to be a "
                    "few small steps from all of them, and MAML does no better than a network "
                    "trained on everything."
                )
            else:
                parts.append(
                    f"Past diversity {self.runs[best].diversity:g} the advantage shrank: the "
                    "wider the distribution, the further the average task lies from any one "
                    "starting point."
                )
        else:
            parts.append(
                "In this sweep the advantage did not clearly shrink at the widest setting; "
                "widen the sweep to see where it stops paying off."
            )
        return " ".join(parts)


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
    settings = _check_settings(settings)
    diversities = _nonempty("diversities", diversities)
    values = []
    for d in diversities:
        if isinstance(d, bool) or not isinstance(d, int | float) or not math.isfinite(d) or d < 0:
            raise ValueError(f"diversities must be finite numbers >= 0, got {d!r}")
        values.append(float(d))
    if values != sorted(values) or len(set(values)) != len(values):
        raise ValueError(f"diversities must be increasing without repeats, got {values}")
    _check_bool("progress", progress)
    runs = [
        train_at_diversity(d, settings=settings)
        for d in tqdm(values, desc="diversity sweep", disable=not progress, leave=False)
    ]
    return DiversitySweep(runs, settings)


# ---------------------------------------------------------------------------
# Experiment 3: dissimilar tasks.
# ---------------------------------------------------------------------------


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
    """

    families: tuple[str, ...]
    shared: AlgorithmRun
    shared_on: dict[str, Evaluation]
    specialists: dict[str, AlgorithmRun]
    settings: Settings

    def gap(self, family: str) -> tuple[float, float]:
        """Shared minus specialist loss on ``family``'s test tasks (paired), with 95% half-width."""
        s = self.settings.report_steps
        return _paired_difference(
            _row(self.shared_on[family], s), _row(self.specialists[family].evaluation, s)
        )

    def reading(self) -> str:
        """A paragraph stating what this run measured."""
        s = self.settings.report_steps
        pieces, worse = [], []
        for f in self.families:
            shared, _ = self.shared_on[f].at(s)
            spec, _ = self.specialists[f].evaluation.at(s)
            diff, half = self.gap(f)
            pieces.append(f"{f}s {_fmt(shared)} vs {_fmt(spec)}")
            if diff - half > 0:
                worse.append(f)
        text = (
            f"After {s} adaptation steps, the loss of the shared initialization against the "
            f"per-family ones was: " + "; ".join(pieces) + "."
        )
        if len(worse) == len(self.families):
            text += (
                " The shared initialization was worse on every family (each gap is larger than "
                "its paired 95% interval): a single starting point has to sit between "
                "functions that need very different weights, so a few small steps cannot reach "
                "any of them as well as a start made for that family."
            )
        elif worse:
            text += (
                f" The shared initialization was clearly worse on {', '.join(worse)} "
                "(gap larger than its paired 95% interval); elsewhere the difference is within "
                "the noise of this short run or favours the shared one."
            )
            scale = {f: self.shared_on[f].at(self.shared_on[f].steps[0])[0] for f in self.families}
            smallest = sorted(self.families, key=scale.get)[: len(worse)]
            if self.shared_on[self.families[0]].steps[0] == 0 and set(smallest) == set(worse):
                text += (
                    " Before adaptation, the shared initialization's loss was "
                    + ", ".join(f"{_fmt(scale[f])} on {f}s" for f in self.families)
                    + ": the families with the largest losses dominate the mixture's "
                    "meta-gradient, so the compromise leans towards them and the "
                    f"{' and '.join(worse)} tasks pay for it."
                )
        else:
            text += " In this run no gap exceeds its paired 95% interval."
        iters = self.settings.iterations
        text += (
            f" Each initialization trained for {iters} meta-iterations, so the shared one saw "
            f"about 1/{len(self.families)} as many tasks of each family as its specialist."
        )
        return text


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
    settings = _check_settings(settings)
    families = _nonempty("families", families)
    if len(families) < 2 or len(set(families)) != len(families):
        raise ValueError(f"families must hold at least two different families, got {families}")
    if any(f not in FAMILIES for f in families):
        raise ValueError(f"families must be chosen from {list(FAMILIES)}, got {families}")
    _check_bool("progress", progress)
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
    return FamilyComparison(families, shared, shared_on, runs, settings)


# ---------------------------------------------------------------------------
# Experiment 4: non-stationary tasks.
# ---------------------------------------------------------------------------


@dataclass
class DriftResult:
    """Result of :func:`nonstationary_drift`.

    Attributes
    ----------
    tasks : DriftingSinusoidTasks
        The drifting distribution (its own clock: 0 = start of the drift).
    warmup : int
        Meta-iterations on the early distribution before the drift began.
    checkpoints : list of int
        Meta-iterations after which the initialization was evaluated (0 = untrained).
    early, late : list of Evaluation
        At each checkpoint: loss on tasks from the distribution before the
        drift (early) and after it (late).
    params : dict
        The final initialization.
    history : History
        Training loss of the whole run (segments joined).
    settings : Settings
    """

    tasks: DriftingSinusoidTasks
    warmup: int
    checkpoints: list[int]
    early: list[Evaluation]
    late: list[Evaluation]
    params: Params
    history: History
    settings: Settings

    @property
    def drift_end(self) -> int:
        """Meta-iteration at which the drift was complete."""
        return self.warmup + self.tasks.horizon

    def curve(self, which: str) -> list[float]:
        """Loss after ``report_steps`` adaptation steps at each checkpoint.

        ``which`` is ``"early"`` or ``"late"``.
        """
        if which not in ("early", "late"):
            raise ValueError(f"which must be 'early' or 'late', got {which!r}")
        evaluations = self.early if which == "early" else self.late
        s = self.settings.report_steps
        return [e.at(s)[0] for e in evaluations]

    def forgetting(self) -> tuple[float, float]:
        """Final minus pre-drift loss on the same early test tasks, with its 95% half-width.

        Positive beyond the half-width means the early tasks were forgotten.
        """
        at_warmup = self.checkpoints.index(self.warmup) if self.warmup in self.checkpoints else 0
        s = self.settings.report_steps
        return _paired_difference(_row(self.early[-1], s), _row(self.early[at_warmup], s))

    def reading(self) -> str:
        """A paragraph stating what this run measured."""
        s = self.settings.report_steps
        early, late = self.curve("early"), self.curve("late")
        at_warmup = self.checkpoints.index(self.warmup) if self.warmup in self.checkpoints else 0
        lo, hi = self.tasks.phase_at(self.tasks.horizon)
        parts = [
            f"For {self.warmup} meta-iterations the phase range stayed at "
            f"[{self.tasks.start_phase[0]:.2f}, {self.tasks.start_phase[1]:.2f}]; over the next "
            f"{self.tasks.horizon} it slid to [{lo:.2f}, {hi:.2f}], and training stopped at "
            f"iteration {self.checkpoints[-1]}.",
            f"On tasks from the early distribution, the loss after {s} adaptation steps fell "
            f"from {_fmt(early[0])} to {_fmt(early[at_warmup])} before the drift and ended at "
            f"{_fmt(early[-1])};",
            f"on tasks from the late distribution it was {_fmt(late[at_warmup])} before the "
            f"drift and ended at {_fmt(late[-1])}.",
        ]
        window = max(1, min(25, self.warmup, len(self.history.loss) - self.warmup))
        if self.warmup >= 1 and len(self.history.loss) > self.warmup:
            before = self.history.loss[self.warmup - window : self.warmup]
            after = self.history.loss[-window:]
            parts.append(
                f"The meta-training loss, measured on the tasks of the moment (mean of "
                f"{window} iterations), was {_fmt(sum(before) / len(before))} just before the "
                f"drift and {_fmt(sum(after) / len(after))} at the end."
            )
        rise, rise_half = self.forgetting()
        if rise - rise_half > 0:
            parts.append(
                f"On the same early test tasks, the final loss is {_fmt(rise, 2)} ± "
                f"{_fmt(rise_half, 2)} above the one reached before the drift (paired 95% "
                "interval)."
            )
            parts.append(
                "The initialization followed the drift and forgot where it came from: "
                "meta-training only optimizes for the tasks it is shown now, so what it "
                "learned for the early tasks was overwritten."
            )
        else:
            parts.append(
                "In this run the early tasks did not clearly suffer by the end; try a longer "
                "drift or more iterations."
            )
        return " ".join(parts)


def nonstationary_drift(
    *,
    settings: Settings = CHAPTER,
    warmup: int = 150,
    horizon: int = 150,
    iterations: int = 300,
    checkpoint_every: int = 50,
    shift: float = math.pi,
    progress: bool = True,
) -> DriftResult:
    """Meta-train MAML while the task distribution drifts; track early and late tasks.

    The tasks are :class:`~metalearn_lib.tasks.DriftingSinusoidTasks`. For
    the first ``warmup`` meta-iterations they come from the early
    distribution (the MAML paper's sinusoids); then the phase range slides
    by ``shift`` over ``horizon`` iterations and stays there. Training pauses
    every ``checkpoint_every`` iterations to evaluate the current
    initialization on tasks from before and after the drift (through
    ``meta_train``'s ``callback``, so the run itself is not interrupted).

    Parameters
    ----------
    settings : Settings
        Recipe (its ``iterations`` is replaced by ``iterations`` here).
    warmup : int
        Iterations on the early distribution before the drift starts (>= 0).
    horizon : int
        Iterations over which the drift happens (>= 1).
    iterations : int
        Total meta-iterations.
    checkpoint_every : int
        Evaluate after every this many iterations (must divide ``iterations``).
    shift : float
        Total phase shift in radians (pi: the late sines are the early ones upside down).
    progress : bool
        Show a progress bar over the segments.
    """
    settings = _check_settings(settings)
    _check_int("warmup", warmup, 0)
    _check_int("horizon", horizon, 1)
    _check_int("iterations", iterations, 1)
    _check_int("checkpoint_every", checkpoint_every, 1)
    if iterations % checkpoint_every:
        raise ValueError(
            f"checkpoint_every ({checkpoint_every}) must divide iterations ({iterations})"
        )
    _check_bool("progress", progress)
    tasks = DriftingSinusoidTasks(horizon, shift=shift)
    model = settings.model()
    params = parameters_of(model)

    def judge(p: Params) -> tuple[Evaluation, Evaluation]:
        early = evaluate(model, p, tasks, iteration=0, **settings.eval_kwargs())
        late = evaluate(model, p, tasks, iteration=horizon, **settings.eval_kwargs())
        return early, late

    e, lt = judge(params)
    checkpoints, early, late = [0], [e], [lt]
    bar = tqdm(total=iterations, desc="drift", disable=not progress, leave=False)

    def checkpoint(done: int, theta: Params) -> None:
        bar.update(1)
        if done % checkpoint_every == 0:
            e, lt = judge(theta)
            checkpoints.append(done)
            early.append(e)
            late.append(lt)

    params, history = meta_train(
        model,
        _Clocked(tasks, clock=lambda t: max(0, t - warmup)),
        params=params,
        progress=False,
        callback=checkpoint,
        **settings.train_kwargs(iterations=iterations),
    )
    bar.close()
    history.settings.update(warmup=warmup, horizon=horizon)
    return DriftResult(tasks, warmup, checkpoints, early, late, params, history, settings)


# ---------------------------------------------------------------------------
# Experiment 5: hyperparameter sensitivity.
# ---------------------------------------------------------------------------


@dataclass
class GridResult:
    """Result of :func:`hyperparameter_grid`.

    Rows are (inner steps, inner learning rate); columns are
    (meta-optimizer, meta-batch size).

    Attributes
    ----------
    rows : list of (int, float)
    columns : list of (str, int)
    final_loss : Tensor
        ``[rows, columns]`` query loss on fresh tasks after adapting with the
        row's own inner loop; NaN where training or adaptation produced
        non-finite numbers.
    reference_loss : float
        The untrained network's loss on the same tasks *without* adaptation
        (about what predicting zero gives): the bar to beat.
    untrained_loss : Tensor
        ``[rows]`` the untrained network's loss after the row's own
        adaptation; above ``reference_loss`` when that inner loop overshoots.
    start_gradient : Tensor
        ``[rows]`` median absolute entry of MAML's meta-gradient at the
        untrained network, with the row's inner loop (one meta-batch).
    status : list of list of str
        ``"learned"`` (below ``stall_ratio * reference_loss``), ``"stalled"``
        (not below it) or ``"diverged"`` (non-finite, or above
        ``diverge_ratio * reference_loss``).
    histories : dict of (row, column) to History
    iterations : int
    settings : Settings
    stall_ratio, diverge_ratio : float
    """

    rows: list[tuple[int, float]]
    columns: list[tuple[str, int]]
    final_loss: Tensor
    reference_loss: float
    untrained_loss: Tensor
    start_gradient: Tensor
    status: list[list[str]]
    histories: dict
    iterations: int
    settings: Settings
    stall_ratio: float
    diverge_ratio: float

    def row_labels(self) -> list[str]:
        return [f"{k} inner step{'s' if k != 1 else ''}, lr {lr:g}" for k, lr in self.rows]

    def column_labels(self) -> list[str]:
        names = {"adam": "Adam", "sgd": "SGD"}
        return [f"{names.get(opt, opt)}, {b} tasks" for opt, b in self.columns]

    def cells(self, status: str) -> list[tuple[int, int]]:
        """``(row, column)`` indices of every cell with the given status."""
        if status not in ("learned", "stalled", "diverged"):
            raise ValueError(f"status must be 'learned', 'stalled' or 'diverged', got {status!r}")
        return [
            (i, j)
            for i in range(len(self.rows))
            for j in range(len(self.columns))
            if self.status[i][j] == status
        ]

    def _row_summary(self, i: int) -> str:
        """E.g. 'learned with Adam, stalled with SGD' for row ``i``."""
        groups: dict[str, list[int]] = {}
        for j in range(len(self.columns)):
            groups.setdefault(self.status[i][j], []).append(j)
        if len(groups) == 1:
            return f"{next(iter(groups))} in every column"
        labels = self.column_labels()
        phrases = []
        for status, cols in groups.items():
            optimizers = {self.columns[j][0] for j in cols}
            whole = [j for j in range(len(self.columns)) if self.columns[j][0] in optimizers]
            if cols == whole:
                names = " and ".join({"adam": "Adam", "sgd": "SGD"}[o] for o in sorted(optimizers))
                phrases.append(f"{status} with {names}")
            else:
                phrases.append(f"{status} ({'; '.join(labels[j] for j in cols)})")
        return ", ".join(phrases)

    def reading(self) -> str:
        """A paragraph stating what this grid measured, and why cells failed."""
        loss = self.final_loss
        finite = torch.isfinite(loss)
        ref = self.reference_loss
        parts = []
        if finite.any():
            masked = torch.where(finite, loss, torch.full_like(loss, float("inf")))
            i, j = divmod(int(masked.argmin()), loss.shape[1])
            parts.append(
                f"After {self.iterations} meta-iterations per cell, the best setting was "
                f"{self.row_labels()[i]} with {self.column_labels()[j]} per meta-batch: loss "
                f"{_fmt(loss[i, j].item())}, against {_fmt(ref)} for the untrained network "
                "without adaptation."
            )
        learned, stalled, diverged = (self.cells(x) for x in ("learned", "stalled", "diverged"))
        parts.append(
            f"{len(learned)} of {loss.numel()} settings learned (ended below "
            f"{self.stall_ratio:g}× that), {len(stalled)} stalled and {len(diverged)} diverged "
            f"(NaN, infinite, or above {self.diverge_ratio:g}×). Row by row: "
            + " | ".join(
                f"{label}: {self._row_summary(i)}" for i, label in enumerate(self.row_labels())
            )
            + "."
        )
        for i, (k, lr) in enumerate(self.rows):
            u = self.untrained_loss[i].item()
            if not math.isfinite(u) or u > self.diverge_ratio * ref:
                how = (
                    "the step overshoots"
                    if k == 1
                    else "each step overshoots, and the overshoot compounds over the steps"
                )
                parts.append(
                    f"With {k} inner step{'s' if k != 1 else ''} of lr {lr:g}, adapting even the "
                    f"untrained network takes the loss from {_fmt(ref)} to {_fmt(u)}: {how}."
                )
        if diverged:
            opts = {self.columns[j][0] for _, j in diverged}
            nan = sum(not finite[i, j] for i, j in diverged)
            text = (
                "Where the inner loop overshoots, the post-adaptation loss and its "
                "meta-gradient are huge or NaN, and a NaN gradient turns the weights into NaN "
                "whatever the optimizer"
            )
            if opts == {"sgd"}:
                text += (
                    "; a huge finite one becomes a huge step with SGD (step = lr × gradient), "
                    "while Adam divides by the gradient's running size, which caps its step"
                )
            text += f" ({nan} diverged cell(s) ended in NaN or inf, shown as such)." if nan else "."
            parts.append(text)
        sgd_stalled = [(i, j) for i, j in stalled if self.columns[j][0] == "sgd"]
        if sgd_stalled:
            i = sgd_stalled[0][0]
            g = self.start_gradient[i].item()
            lr = self.settings.meta_lr
            parts.append(
                f"SGD stalls for a different reason: at the start, the median entry of MAML's "
                f"meta-gradient ({self.row_labels()[i]}) was {g:.2g}, so an SGD step (lr × "
                f"gradient, lr {lr:g}) moves a typical weight by about {lr * g:.1g}, while Adam "
                f"moves every weight by about lr = {lr:g} whatever the gradient's size."
            )
        return " ".join(parts)


def hyperparameter_grid(
    *,
    settings: Settings = CHAPTER,
    inner_steps: Sequence[int] = (1, 3),
    inner_lrs: Sequence[float] = (0.03, 0.3),
    meta_optimizers: Sequence[str] = ("adam", "sgd"),
    meta_batch_sizes: Sequence[int] = (4, 16),
    iterations: int = 100,
    stall_ratio: float = 0.8,
    diverge_ratio: float = 2.0,
    progress: bool = True,
) -> GridResult:
    """Train MAML for every combination of four hyperparameters; record the final loss.

    Every cell starts from the same weights, sees the same task stream and is
    judged on the same fresh tasks, after adapting with its own inner steps
    and inner learning rate. The meta learning rate is ``settings.meta_lr``
    for both optimizers, so the optimizer is the only thing that changes
    between those columns.

    Parameters
    ----------
    settings : Settings
    inner_steps, inner_lrs : sequences
        The rows: every (steps, lr) pair.
    meta_optimizers, meta_batch_sizes : sequences
        The columns: every (optimizer, batch size) pair.
    iterations : int
        Meta-iterations per cell.
    stall_ratio, diverge_ratio : float
        With ``reference`` the untrained network's loss without adaptation,
        a cell *learned* if its loss is below ``stall_ratio * reference``,
        *diverged* if it is non-finite or above ``diverge_ratio * reference``,
        and *stalled* otherwise.
    progress : bool
        Show a progress bar over the cells.
    """
    settings = _check_settings(settings)
    steps_values = _nonempty("inner_steps", inner_steps)
    lr_values = _nonempty("inner_lrs", inner_lrs)
    opt_values = _nonempty("meta_optimizers", meta_optimizers)
    batch_values = _nonempty("meta_batch_sizes", meta_batch_sizes)
    for k in steps_values:
        _check_int("inner_steps entry", k, 1)
    for lr in lr_values:
        _check_positive("inner_lrs entry", lr)
    for opt in opt_values:
        if opt not in META_OPTIMIZERS:
            raise ValueError(f"meta_optimizers must be chosen from {META_OPTIMIZERS}, got {opt!r}")
    for b in batch_values:
        _check_int("meta_batch_sizes entry", b, 1)
    _check_int("iterations", iterations, 1)
    _check_positive("stall_ratio", stall_ratio)
    _check_positive("diverge_ratio", diverge_ratio)
    if not stall_ratio < diverge_ratio:
        raise ValueError(
            f"stall_ratio ({stall_ratio}) must be below diverge_ratio ({diverge_ratio})"
        )
    _check_bool("progress", progress)

    rows = [(k, float(lr)) for k in steps_values for lr in lr_values]
    columns = [(opt, b) for opt in opt_values for b in batch_values]
    model = settings.model()
    tasks = SinusoidTasks()
    start = parameters_of(model)

    def judge(params: Params, k: int, lr: float) -> float:
        if not _finite(params):
            return float("nan")
        ev = evaluate(model, params, tasks, **settings.eval_kwargs(steps=(k,), inner_lr=lr))
        value = ev.mean[0]
        return value if math.isfinite(value) else float("nan")

    reference = evaluate(model, start, tasks, **settings.eval_kwargs(steps=(0,))).mean[0]
    untrained = torch.tensor([judge(start, k, lr) for k, lr in rows], dtype=torch.float64)
    probe = tasks.sample(
        max(batch_values),
        settings.shots,
        settings.queries,
        generator=torch.Generator().manual_seed(settings.seed),
    )
    start_gradient = torch.empty(len(rows), dtype=torch.float64)
    for i, (k, lr) in enumerate(rows):
        g = meta_gradient(model, start, probe, algorithm="maml", inner_steps=k, inner_lr=lr)
        start_gradient[i] = torch.cat([v.flatten() for v in g.values()]).abs().median().item()
    final = torch.full((len(rows), len(columns)), float("nan"), dtype=torch.float64)
    status = [["" for _ in columns] for _ in rows]
    histories = {}
    cells = [(i, j) for i in range(len(rows)) for j in range(len(columns))]
    for i, j in tqdm(cells, desc="grid", disable=not progress, leave=False):
        (k, lr), (opt, b) = rows[i], columns[j]
        params, history = meta_train(
            model,
            tasks,
            progress=False,
            **settings.train_kwargs(
                inner_steps=k,
                inner_lr=lr,
                meta_optimizer=opt,
                meta_batch_size=b,
                iterations=iterations,
            ),
        )
        histories[(i, j)] = history
        value = judge(params, k, lr)
        final[i, j] = value
        if not math.isfinite(value) or value > diverge_ratio * reference:
            status[i][j] = "diverged"
        elif value > stall_ratio * reference:
            status[i][j] = "stalled"
        else:
            status[i][j] = "learned"
    return GridResult(
        rows=rows,
        columns=columns,
        final_loss=final,
        reference_loss=reference,
        untrained_loss=untrained,
        start_gradient=start_gradient,
        status=status,
        histories=histories,
        iterations=iterations,
        settings=settings,
        stall_ratio=stall_ratio,
        diverge_ratio=diverge_ratio,
    )
