"""Task distributions for few-shot regression.

A *task* is one function to learn from a handful of points. A *task
distribution* is where tasks come from. Meta-learning samples many tasks,
each split into a **support set** (the few points the learner may adapt on)
and a **query set** (fresh points from the same function, used to judge the
adapted model).

Everything random takes a :class:`torch.Generator`, so the same seed always
gives the same tasks.

Three distributions are provided:

* :class:`SinusoidTasks` - ``y = A sin(f x - phi)`` with the ranges of the
  MAML paper (Finn et al., 2017, section 5.1) by default, plus one
  ``diversity`` knob that narrows or widens them;
* :class:`FunctionFamilyTasks` - a mixture of very different function
  families (sines, lines, quadratics), for dissimilar tasks;
* :class:`DriftingSinusoidTasks` - a non-stationary distribution whose phase
  range slides as meta-training goes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .checks import check_int

__all__ = [
    "FAMILIES",
    "DriftingSinusoidTasks",
    "FunctionBatch",
    "FunctionFamilyTasks",
    "SinusoidTasks",
    "TaskBatch",
    "TaskDistribution",
]

#: The function families and the meaning of their three coefficients (a, b, c).
FAMILIES: dict[str, str] = {
    "sine": "a * sin(c * x - b)   (a = amplitude, b = phase, c = frequency)",
    "line": "a * x + b            (a = slope, b = intercept; c unused)",
    "quadratic": "a * (x - b)**2 + c   (a = curvature, b = centre, c = offset)",
}
_FAMILY_NAMES = tuple(FAMILIES)

Range = tuple[float, float]


def _check_range(name: str, value: Range) -> Range:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high) of numbers, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"{name} must be a finite pair with low <= high, got {value!r}")
    return (low, high)


def _uniform(n: int, value_range: Range, generator: torch.Generator | None) -> Tensor:
    low, high = value_range
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


@dataclass(frozen=True)
class FunctionBatch:
    """A batch of ground-truth functions, one per task.

    Attributes
    ----------
    family : Tensor
        ``[B]`` integer index into :data:`FAMILIES` (0 = sine, 1 = line,
        2 = quadratic).
    coeffs : Tensor
        ``[B, 3]`` float64 coefficients ``(a, b, c)``; see :data:`FAMILIES`.
    """

    family: Tensor
    coeffs: Tensor

    def __len__(self) -> int:
        return self.family.shape[0]

    def __getitem__(self, index) -> FunctionBatch:
        index = [index] if isinstance(index, int) else index
        return FunctionBatch(self.family[index], self.coeffs[index])

    def names(self) -> list[str]:
        """The family name of each function, e.g. ``['sine', 'line']``."""
        return [_FAMILY_NAMES[i] for i in self.family.tolist()]

    def __call__(self, x: Tensor) -> Tensor:
        """Evaluate every function at ``x``.

        ``x`` is ``[N, 1]`` (the same points for every task) or ``[B, N, 1]``;
        the result is ``[B, N, 1]`` in the dtype of ``x``.
        """
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(len(self), -1, -1)
        if x.dim() != 3 or x.shape[0] != len(self) or x.shape[-1] != 1:
            raise ValueError(
                f"x must have shape [N, 1] or [{len(self)}, N, 1], got {list(x.shape)}"
            )
        xd = x.to(torch.float64)
        a, b, c = (self.coeffs[:, i].view(-1, 1, 1) for i in range(3))
        formulas = (
            lambda: a * torch.sin(c * xd - b),
            lambda: a * xd + b,
            lambda: a * (xd - b) ** 2 + c,
        )
        present = self.family.unique().tolist()
        if len(present) == 1:  # e.g. all sinusoids (every training batch): one formula
            return formulas[present[0]]().to(x.dtype)
        sine, line, quadratic = (formula() for formula in formulas)
        fam = self.family.view(-1, 1, 1)
        y = torch.where(fam == 0, sine, torch.where(fam == 1, line, quadratic))
        return y.to(x.dtype)


@dataclass(frozen=True)
class TaskBatch:
    """A batch of few-shot tasks; the leading axis of every tensor is the task.

    Attributes
    ----------
    support_x, support_y : Tensor
        ``[B, K, ...]`` inputs and targets the learner adapts on (K shots).
    query_x, query_y : Tensor
        ``[B, Q, ...]`` inputs and targets the adapted learner is judged on.
    functions : FunctionBatch or None
        The true functions, when known (regression tasks), for plotting.
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    functions: FunctionBatch | None = None

    def __post_init__(self) -> None:
        names = ("support_x", "support_y", "query_x", "query_y")
        tensors = [getattr(self, n) for n in names]
        for name, t in zip(names, tensors, strict=True):
            if not isinstance(t, Tensor):
                raise TypeError(f"TaskBatch.{name} must be a torch.Tensor, got {type(t).__name__}")
            if t.dim() < 2:
                raise ValueError(
                    f"TaskBatch.{name} must have shape [tasks, points, ...], got {list(t.shape)}"
                )
        num_tasks = {t.shape[0] for t in tensors}
        if len(num_tasks) != 1:
            raise ValueError(
                "all TaskBatch tensors must have the same number of tasks (leading axis), got "
                + ", ".join(f"{n}={list(t.shape)}" for n, t in zip(names, tensors, strict=True))
            )
        if self.num_tasks == 0:
            raise ValueError("a TaskBatch needs at least one task, got 0")
        if self.support_x.shape[:2] != self.support_y.shape[:2]:
            raise ValueError(
                f"support_x {list(self.support_x.shape)} and support_y "
                f"{list(self.support_y.shape)} must agree on [tasks, points]"
            )
        if self.query_x.shape[:2] != self.query_y.shape[:2]:
            raise ValueError(
                f"query_x {list(self.query_x.shape)} and query_y "
                f"{list(self.query_y.shape)} must agree on [tasks, points]"
            )
        if self.support_x.shape[2:] != self.query_x.shape[2:]:
            raise ValueError(
                f"support_x {list(self.support_x.shape)} and query_x "
                f"{list(self.query_x.shape)} must have the same per-point shape"
            )

    @property
    def num_tasks(self) -> int:
        """Number of tasks B."""
        return self.support_x.shape[0]

    def __getitem__(self, index) -> TaskBatch:
        """Select tasks, keeping the task axis: ``batch[0]`` is a batch of one task."""
        index = [index] if isinstance(index, int) else index
        return TaskBatch(
            self.support_x[index],
            self.support_y[index],
            self.query_x[index],
            self.query_y[index],
            None if self.functions is None else self.functions[index],
        )

    def to(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> TaskBatch:
        """The same tasks with floating-point tensors cast to ``dtype``, all on ``device``.

        ``None`` keeps the dtype (or the device); integer labels keep their dtype.
        """

        tensors = (self.support_x, self.support_y, self.query_x, self.query_y)
        if all(
            (dtype is None or not t.is_floating_point() or t.dtype == dtype)
            and (device is None or t.device == torch.device(device))
            for t in tensors
        ):
            return self  # nothing to change (every training iteration asks)

        def cast(t: Tensor) -> Tensor:
            if t.is_floating_point() and dtype is not None:
                t = t.to(dtype)
            return t if device is None else t.to(device)

        return TaskBatch(
            cast(self.support_x),
            cast(self.support_y),
            cast(self.query_x),
            cast(self.query_y),
            self.functions,
        )


class TaskDistribution:
    """Base class: a distribution over 1-D regression functions on ``x_range``.

    Subclasses implement :meth:`sample_functions`; :meth:`sample` draws the
    support and query points.
    """

    x_range: Range = (-5.0, 5.0)
    noise_std: float = 0.0

    def sample_functions(
        self, num_tasks: int, *, generator: torch.Generator | None = None, iteration: int = 0
    ) -> FunctionBatch:
        raise NotImplementedError

    def sample(
        self,
        num_tasks: int,
        shots: int,
        queries: int | None = None,
        *,
        generator: torch.Generator | None = None,
        iteration: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> TaskBatch:
        """Sample ``num_tasks`` tasks with ``shots`` support and ``queries`` query points.

        Parameters
        ----------
        num_tasks : int
            Number of tasks B (>= 1).
        shots : int
            Support points per task, K (>= 1).
        queries : int, optional
            Query points per task (>= 1); defaults to ``shots``.
        generator : torch.Generator, optional
            Source of randomness; pass a seeded one for reproducible tasks.
        iteration : int
            Meta-training iteration; only non-stationary distributions use it.
        dtype : torch.dtype
            Floating-point type of the returned tensors.

        Returns
        -------
        TaskBatch
            ``support_x``/``support_y`` of shape ``[B, K, 1]`` and
            ``query_x``/``query_y`` of shape ``[B, Q, 1]``.
        """
        check_int("num_tasks", num_tasks, 1)
        check_int("shots", shots, 1)
        queries = shots if queries is None else check_int("queries", queries, 1)
        check_int("iteration", iteration, 0)
        functions = self.sample_functions(num_tasks, generator=generator, iteration=iteration)
        low, high = self.x_range
        x = low + (high - low) * torch.rand(
            num_tasks, shots + queries, 1, generator=generator, dtype=torch.float64
        )
        y = functions(x)
        if self.noise_std > 0:
            y = y + self.noise_std * torch.randn(y.shape, generator=generator, dtype=torch.float64)
        x, y = x.to(dtype), y.to(dtype)
        return TaskBatch(x[:, :shots], y[:, :shots], x[:, shots:], y[:, shots:], functions)


def _sines(
    n: int, amplitude: Range, phase: Range, frequency: Range, generator: torch.Generator | None
) -> FunctionBatch:
    coeffs = torch.stack(
        [
            _uniform(n, amplitude, generator),
            _uniform(n, phase, generator),
            _uniform(n, frequency, generator),
        ],
        dim=1,
    )
    return FunctionBatch(torch.zeros(n, dtype=torch.long), coeffs)


class SinusoidTasks(TaskDistribution):
    """Sinusoid regression tasks ``y = A sin(f x - phi)``, x uniform on ``x_range``.

    With no arguments these are the MAML paper's tasks (Finn et al., 2017,
    section 5.1): amplitude A ~ U[0.1, 5.0], phase phi ~ U[0, pi], frequency
    f = 1, x ~ U[-5, 5].

    Parameters
    ----------
    diversity : float
        How spread out the tasks are (>= 0). ``1`` gives the ranges above;
        ``0`` collapses every range to its centre (a single task: A = 2.55,
        phi = pi/2); values in between shrink the ranges proportionally around
        their centres. Values above 1 widen them further: the phase half-width
        grows as ``diversity * pi/2`` (``2`` already covers a full period), the
        amplitude upper bound as ``2.55 + 2.45 * diversity`` (the lower bound
        stays at 0.1), and the frequency range becomes ``[1, diversity]``.
    amplitude, phase, frequency : (low, high), optional
        Explicit ranges; each one given overrides what ``diversity`` implies.
    x_range : (low, high)
        Where inputs are drawn.
    noise_std : float
        Standard deviation of Gaussian noise added to targets (default 0).
    """

    PAPER_AMPLITUDE: Range = (0.1, 5.0)
    PAPER_PHASE: Range = (0.0, math.pi)

    def __init__(
        self,
        diversity: float = 1.0,
        *,
        amplitude: Range | None = None,
        phase: Range | None = None,
        frequency: Range | None = None,
        x_range: Range = (-5.0, 5.0),
        noise_std: float = 0.0,
    ) -> None:
        if isinstance(diversity, bool) or not isinstance(diversity, int | float):
            raise TypeError(f"diversity must be a number >= 0, got {type(diversity).__name__}")
        if not math.isfinite(diversity) or diversity < 0:
            raise ValueError(f"diversity must be a finite number >= 0, got {diversity}")
        if not (isinstance(noise_std, int | float) and math.isfinite(noise_std) and noise_std >= 0):
            raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
        self.diversity = float(diversity)
        d = self.diversity
        amp_c, amp_hw = 2.55, 2.45
        default_amplitude = (max(0.1, amp_c - amp_hw * d), amp_c + amp_hw * d)
        default_phase = (math.pi / 2 - d * math.pi / 2, math.pi / 2 + d * math.pi / 2)
        default_frequency = (1.0, max(1.0, d))
        self.amplitude = _check_range("amplitude", amplitude or default_amplitude)
        self.phase = _check_range("phase", phase or default_phase)
        self.frequency = _check_range("frequency", frequency or default_frequency)
        self.x_range = _check_range("x_range", x_range)
        self.noise_std = float(noise_std)

    def __repr__(self) -> str:
        def fmt(r: Range) -> str:
            return f"({r[0]:.3g}, {r[1]:.3g})"

        return (
            f"SinusoidTasks(diversity={self.diversity:g}, amplitude={fmt(self.amplitude)}, "
            f"phase={fmt(self.phase)}, frequency={fmt(self.frequency)})"
        )

    def sample_functions(
        self, num_tasks: int, *, generator: torch.Generator | None = None, iteration: int = 0
    ) -> FunctionBatch:
        """Draw ``num_tasks`` sinusoids (``iteration`` is ignored: stationary)."""
        check_int("num_tasks", num_tasks, 1)
        return _sines(num_tasks, self.amplitude, self.phase, self.frequency, generator)


class FunctionFamilyTasks(TaskDistribution):
    """A mixture of function families: dissimilar tasks.

    Each task first picks a family (uniformly, or by ``weights``), then its
    coefficients:

    * ``"sine"``: the MAML paper's sinusoids (A ~ U[0.1, 5], phi ~ U[0, pi]);
    * ``"line"``: slope ~ U[-2, 2], intercept ~ U[-3, 3];
    * ``"quadratic"``: curvature ~ U[-0.4, 0.4], centre ~ U[-2, 2],
      offset ~ U[-3, 3].

    Parameters
    ----------
    families : sequence of str
        Any non-empty subset of ``("sine", "line", "quadratic")``.
    weights : sequence of float, optional
        Relative probability of each family (default: equal).
    """

    RANGES: dict[str, tuple[Range, Range, Range]] = {
        "sine": ((0.1, 5.0), (0.0, math.pi), (1.0, 1.0)),
        "line": ((-2.0, 2.0), (-3.0, 3.0), (0.0, 0.0)),
        "quadratic": ((-0.4, 0.4), (-2.0, 2.0), (-3.0, 3.0)),
    }

    def __init__(
        self,
        families: tuple[str, ...] | list[str] = ("sine", "line", "quadratic"),
        *,
        weights: tuple[float, ...] | list[float] | None = None,
        x_range: Range = (-5.0, 5.0),
        noise_std: float = 0.0,
    ) -> None:
        if isinstance(families, str):
            families = (families,)
        families = tuple(families)
        unknown = [f for f in families if f not in FAMILIES]
        if not families or unknown:
            raise ValueError(
                f"families must be a non-empty subset of {list(FAMILIES)}, got {list(families)}"
            )
        if len(set(families)) != len(families):
            raise ValueError(f"families must not repeat, got {list(families)}")
        if weights is None:
            weights = [1.0] * len(families)
        weights = [float(w) for w in weights]
        if len(weights) != len(families) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(
                f"weights must be {len(families)} non-negative numbers with a positive sum, "
                f"got {weights}"
            )
        self.families = families
        self.weights = torch.tensor(weights, dtype=torch.float64) / sum(weights)
        self.x_range = _check_range("x_range", x_range)
        if not (isinstance(noise_std, int | float) and math.isfinite(noise_std) and noise_std >= 0):
            raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
        self.noise_std = float(noise_std)

    def __repr__(self) -> str:
        return f"FunctionFamilyTasks(families={self.families})"

    def sample_functions(
        self, num_tasks: int, *, generator: torch.Generator | None = None, iteration: int = 0
    ) -> FunctionBatch:
        """Draw ``num_tasks`` functions from the mixture."""
        check_int("num_tasks", num_tasks, 1)
        choice = torch.multinomial(self.weights, num_tasks, replacement=True, generator=generator)
        family = torch.tensor([_FAMILY_NAMES.index(f) for f in self.families])[choice]
        coeffs = torch.empty(num_tasks, 3, dtype=torch.float64)
        # Draw every family's coefficients for every task, then keep the
        # chosen ones: the random stream does not depend on the family choice.
        for name in self.families:
            drawn = torch.stack(
                [_uniform(num_tasks, r, generator) for r in self.RANGES[name]], dim=1
            )
            mask = family == _FAMILY_NAMES.index(name)
            coeffs[mask] = drawn[mask]
        return FunctionBatch(family, coeffs)


class DriftingSinusoidTasks(TaskDistribution):
    """Non-stationary sinusoid tasks: the phase range slides during meta-training.

    At meta-training iteration ``t`` the phase is drawn from
    ``start_phase + s`` with ``s = shift * min(t / horizon, 1)``. With the
    defaults, tasks start as the MAML paper's (phase in [0, pi]) and end with
    phase in [pi, 2 pi]: the late sines are the early ones turned upside down.

    Parameters
    ----------
    horizon : int
        Iterations over which the drift happens (>= 1).
    start_phase : (low, high)
        Phase range at iteration 0.
    shift : float
        How far the phase range moves in total (radians).
    amplitude : (low, high)
        Amplitude range (fixed).
    """

    def __init__(
        self,
        horizon: int,
        *,
        start_phase: Range = (0.0, math.pi),
        shift: float = math.pi,
        amplitude: Range = (0.1, 5.0),
        x_range: Range = (-5.0, 5.0),
    ) -> None:
        self.horizon = check_int("horizon", horizon, 1)
        self.start_phase = _check_range("start_phase", start_phase)
        if not isinstance(shift, int | float) or not math.isfinite(shift):
            raise ValueError(f"shift must be a finite number of radians, got {shift!r}")
        self.shift = float(shift)
        self.amplitude = _check_range("amplitude", amplitude)
        self.x_range = _check_range("x_range", x_range)

    def __repr__(self) -> str:
        return f"DriftingSinusoidTasks(horizon={self.horizon}, shift={self.shift:.3g})"

    def phase_at(self, iteration: int) -> Range:
        """The phase range tasks are drawn from at ``iteration``."""
        check_int("iteration", iteration, 0)
        s = self.shift * min(iteration / self.horizon, 1.0)
        return (self.start_phase[0] + s, self.start_phase[1] + s)

    def sample_functions(
        self, num_tasks: int, *, generator: torch.Generator | None = None, iteration: int = 0
    ) -> FunctionBatch:
        """Draw ``num_tasks`` sinusoids from the distribution in force at ``iteration``."""
        check_int("num_tasks", num_tasks, 1)
        return _sines(num_tasks, self.amplitude, self.phase_at(iteration), (1.0, 1.0), generator)
