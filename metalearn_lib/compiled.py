"""The compiled fast path: one meta-step under ``torch.compile``, built once and reused.

A meta-step of a small network is dominated by Python and dispatcher
overhead: hundreds of tiny operations per inner step. ``torch.compile``
traces the whole functional step (every inner step, the vmap over tasks, the
outer gradient) once, fuses it into a few kernels, and replays it. On the
course's MLP that is several times faster per iteration; on the chapter-5
ConvNet (where the arithmetic itself weighs more) the gain is smaller. See
``docs/benchmarks/training_speed.md`` for the numbers measured on the course machine.

Compiling costs time up front (tens of seconds on a laptop CPU, less with
inductor's on-disk cache warm), so it pays only for long runs. Whether it
pays is decided by :func:`compile_pays` from what this machine measured.

* :func:`compiled_step` builds (or fetches from its cache) the compiled
  direction function of one configuration: model, algorithm, inner steps,
  inner learning rate, loss and options. The cache lives as long as the model.
* :func:`compile_unavailable_reason` says why compiling cannot work here
  (no C++ compiler for CPU tensors, no Triton for GPU tensors, an
  unsupported Python), before anything is traced.

Compiled and eager agree to rounding (checked to 1e-5 relative in float32 and
1e-10 in float64 by the tests); they are not bit-identical, because fused
kernels add in another order.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
import weakref
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .algorithms import DIRECTIONS, directions_unchecked
from .checks import LossFn, Params
from .tasks import TaskBatch

__all__ = [
    "BREAK_EVEN",
    "CompileFailed",
    "MetaStep",
    "cached_step",
    "check_compile",
    "compile_pays",
    "compile_unavailable_reason",
    "compiled_step",
    "fallback_message",
    "options_unfit_reason",
    "resolve_options",
    "fast_directions",
    "tell_once",
]

log = logging.getLogger(__name__)

StepFn = Callable[[Params, Tensor, Tensor, Tensor, Tensor, dict], tuple[Params, Tensor]]

#: When compiling pays, measured on the course machine (2 cores, torch 2.13,
#: one thread; docs/benchmarks/training_speed.md): rows of (eager seconds per
#: iteration up to, seconds one cold compile takes, compiled speed-up). Small
#: models such as the paper's MLP are bound by Python and dispatcher overhead,
#: which compiling removes (MAML at the paper's setup: 3.0-3.9 ms eager, 0.58-0.65
#: ms compiled, about 30 s to compile cold and 3-5 s with inductor's cache warm;
#: the table keeps the cold cost and a cautious 4x); bigger ones such as the
#: chapter-5 ConvNet are bound by arithmetic (about 1.5x, and compiling its
#: convolutions and batch norm took minutes).
BREAK_EVEN: tuple[tuple[float, float, float], ...] = (
    (0.02, 30.0, 4.0),
    (math.inf, 150.0, 1.5),
)


class CompileFailed(RuntimeError):
    """Compiling a meta-step failed; the caller falls back to eager."""


def compile_unavailable_reason(device: torch.device | str = "cpu") -> str | None:
    """Why ``torch.compile`` cannot work for tensors on ``device`` here, or None if it can.

    Checked without tracing anything: dynamo's support for this Python, a C++
    compiler for CPU code (inductor's ``cpp.cxx`` candidates or ``$CXX``), and
    Triton for GPU code.
    """
    device = torch.device(device)
    try:
        from torch._dynamo import is_dynamo_supported

        if not is_dynamo_supported():
            return "torch.compile does not support this Python version"
        if device.type == "cpu":
            import torch._inductor.config as inductor_config

            cxx = inductor_config.cpp.cxx
            candidates = [c for c in (cxx if isinstance(cxx, list | tuple) else (cxx,)) if c]
            if os.environ.get("CXX"):
                candidates.append(os.environ["CXX"])
            if not any(shutil.which(c) for c in candidates):
                return f"no C++ compiler found (looked for {candidates}); install g++"
        elif device.type == "cuda":
            from torch.utils._triton import has_triton

            if not has_triton():
                return "Triton (needed to compile for the GPU) is not installed"
    except Exception as error:  # a broken or partial torch install
        return f"torch.compile is unavailable ({type(error).__name__}: {error})"
    return None


def _plain(value: object) -> bool:
    """A constant that a compiled step may bake in (and a cache key may hold) safely."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, tuple | list) and all(_plain(v) for v in value)


def _per_call(value: object) -> bool:
    """An option that gives new numbers at every meta-update (it has ``for_call``)."""
    return callable(getattr(value, "for_call", None))


def options_unfit_reason(options: dict) -> str | None:
    """Why a compiled step cannot take these options, or None if it can.

    ``torch.compile`` traces a step once and bakes in what the options held at
    that moment. Plain constants (numbers, strings, ``None``, tuples and lists
    of them) are baked in. An option whose numbers change from call to call
    goes in as a tensor *input* instead, so that it is never frozen: a tensor,
    or an object with a ``for_call(inner_steps)`` method (such as MAML++'s
    ``AnnealedStepWeights``), which :func:`resolve_options` calls once per
    meta-update. Anything else would be frozen at its first value, so it runs
    eagerly.
    """
    unfit = sorted(
        name
        for name, value in options.items()
        if not (_plain(value) or isinstance(value, Tensor) or _per_call(value))
    )
    if unfit:
        return (
            f"the options {unfit} hold objects that may change from call to call, "
            "which a compiled step would freeze"
        )
    return None


def resolve_options(options: dict, inner_steps: int, like: Tensor) -> dict:
    """This meta-update's options: each per-call object replaced by its numbers as a tensor.

    Called once per meta-update, eager or compiled alike, so that both see the
    same sequence (an annealing schedule moves on exactly once per update).
    The tensor takes ``like``'s dtype and device.
    """
    return {
        name: (
            torch.as_tensor(value.for_call(inner_steps), dtype=like.dtype, device=like.device)
            if _per_call(value)
            else value
        )
        for name, value in options.items()
    }


def compile_pays(iterations: int, eager_seconds_per_iteration: float) -> bool:
    """Would compiling pay back its cost within ``iterations`` more iterations?

    Compiling saves ``eager * (1 - 1 / speedup)`` seconds per iteration and
    costs ``compile_seconds`` once, both from the row of :data:`BREAK_EVEN`
    that the eager time falls in. On the paper's MLP (about 3-4 ms per eager
    iteration on a quiet course machine) that is about 10,000-13,000
    iterations; on the chapter-5 ConvNet (tens of ms) several thousand.
    """
    _, compile_seconds, speedup = next(
        row for row in BREAK_EVEN if eager_seconds_per_iteration <= row[0]
    )
    saving = eager_seconds_per_iteration * (1 - 1 / speedup)
    return iterations * saving > compile_seconds


# model -> {configuration: compiled step}; entries go when the model does.
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple, StepFn]] = weakref.WeakKeyDictionary()


def _split(options: dict) -> tuple[dict, list[str]]:
    """The options baked in as constants, and the names of those that go in as tensors."""
    inputs = sorted(n for n, v in options.items() if isinstance(v, Tensor) or _per_call(v))
    return {n: v for n, v in options.items() if n not in inputs}, inputs


def _key(algorithm, inner_steps, inner_lr, loss_fn, options) -> tuple:
    constants, inputs = _split(options)
    frozen = tuple(sorted((k, repr(v)) for k, v in constants.items()))
    direction = DIRECTIONS[algorithm]
    return (algorithm, direction, inner_steps, float(inner_lr), loss_fn, frozen, *inputs)


def cached_step(
    model: nn.Module,
    algorithm: str,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn,
    options: dict,
) -> StepFn | None:
    """The compiled step of this configuration if one was built already, else None."""
    if options_unfit_reason(options) is not None:
        return None
    return _CACHE.get(model, {}).get(_key(algorithm, inner_steps, inner_lr, loss_fn, options))


def compiled_step(
    model: nn.Module,
    algorithm: str,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn,
    options: dict,
) -> StepFn:
    """The compiled direction function of one configuration, built on first use and cached.

    It is called as ``step(params, support_x, support_y, query_x, query_y,
    tensor_options)`` and returns ``(direction, mean_query_loss)``, both
    detached, exactly like :func:`~metalearn_lib.algorithms.meta_gradient_and_loss`
    without its checks. ``tensor_options`` holds this call's tensor options
    (see :func:`resolve_options`); the plain ones are baked in.
    ``torch.compile`` traces lazily: the first call (per dtype and shape)
    pays for compiling, later calls replay the compiled code. A
    failure while compiling raises :class:`CompileFailed`, and so do options
    that a compiled step would freeze (see :func:`options_unfit_reason`).
    """
    reason = options_unfit_reason(options)
    if reason is not None:
        raise CompileFailed(reason)
    key = _key(algorithm, inner_steps, inner_lr, loss_fn, options)
    per_model = _CACHE.setdefault(model, {})
    if key in per_model:
        return per_model[key]
    direction_fn = DIRECTIONS[algorithm]
    constants, _ = _split(options)

    # The model is an argument, not a closure variable, so the cache holds
    # it only weakly (dynamo guards on its identity).
    def step(net: nn.Module, theta: Params, sx, sy, qx, qy, tensor_options: dict):
        batch = TaskBatch(sx, sy, qx, qy)
        direction, loss = direction_fn(
            net,
            theta,
            batch,
            inner_steps=inner_steps,
            inner_lr=inner_lr,
            loss_fn=loss_fn,
            **constants,
            **tensor_options,
        )
        return {name: g.detach() for name, g in direction.items()}, loss.detach()

    compiled = torch.compile(step, dynamic=False)
    model_ref = weakref.ref(model)

    def guarded(theta: Params, sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor, tensors: dict):
        try:
            return compiled(model_ref(), theta, sx, sy, qx, qy, tensors)
        except Exception as error:  # dynamo, inductor or the C++ compiler gave up
            per_model.pop(key, None)
            first_line = (str(error).strip().splitlines() or [""])[0]
            raise CompileFailed(f"{type(error).__name__}: {first_line}") from error

    per_model[key] = guarded
    return guarded


def check_compile(compile: object) -> bool | None:
    """``compile`` if it is True, False or None (automatic); else a TypeError."""
    if compile is not None and not isinstance(compile, bool):
        raise TypeError(f"compile must be True, False or None (automatic), got {compile!r}")
    return compile


def fallback_message(reason: str) -> str:
    """The one message shown when a requested compile cannot happen."""
    return (
        f"metalearn_lib: cannot compile the meta-step here ({reason}); "
        "running it eagerly instead (same results, slower)."
    )


_SHOWN: set[str] = set()


def tell_once(message: str) -> None:
    """Print ``message`` to stdout once per process (never stderr: graded cells stay silent)."""
    log.info(message)
    if message not in _SHOWN:
        _SHOWN.add(message)
        print(message, flush=True)


class MetaStep:
    """One run's meta-step: eager, compiled, or eager until compiling pays.

    ``compile=False`` is always eager. ``compile=True`` compiles from the
    first iteration. ``compile=None`` (automatic) reuses a step compiled
    earlier for the same configuration, or else runs eagerly, times
    iterations 1 to :attr:`PROBE` and compiles only if the rest of the run
    pays for it (:func:`compile_pays`). Whenever compiling was wanted but
    is impossible, or fails, it says so once through ``notify`` and goes on
    eagerly.

    Attributes
    ----------
    mode : str
        ``"eager"`` or ``"compiled"``: what the latest call ran.
    message : str or None
        The fallback message, if there was one.
    compile_seconds : float
        Wall time of the first compiled call minus one eager step: the
        compile cost paid in this run (0 if nothing was compiled).
    """

    #: Eager iterations timed before the automatic choice (after one warm-up).
    PROBE = 3

    def __init__(
        self,
        model: nn.Module,
        algorithm: str,
        inner_steps: int,
        inner_lr: float,
        loss_fn: LossFn,
        options: dict,
        *,
        compile: bool | None,
        iterations: int,
        device: torch.device,
        notify: Callable[[str], None],
    ) -> None:
        self.config = (model, algorithm, inner_steps, inner_lr, loss_fn, dict(options))
        self.iterations, self.device, self.notify = iterations, device, notify
        self.compile_seconds, self.message = 0.0, None
        self._eager_times: list[float] = []
        self._step: StepFn | None = None
        self._fresh = False  # the next compiled call is the first: it compiles
        if compile is True:
            self._try_compile()
        elif compile is None:
            self._step = cached_step(*self.config)
        # Automatic mode never compiles options it would freeze (and says nothing).
        unfit = options_unfit_reason(self.config[5]) is not None
        self._decided = compile is not None or self._step is not None or unfit

    @property
    def mode(self) -> str:
        return "eager" if self._step is None else "compiled"

    def _fall_back(self, reason: str) -> None:
        self._step = None
        self.message = fallback_message(reason)
        self.notify(self.message)

    def _try_compile(self) -> None:
        reason = options_unfit_reason(self.config[5]) or compile_unavailable_reason(self.device)
        if reason is not None:
            self._fall_back(reason)
        else:
            self._step, self._fresh = compiled_step(*self.config), True

    def _eager(self, theta: Params, batch: TaskBatch, options: dict) -> tuple[Params, Tensor]:
        model, algorithm, inner_steps, inner_lr, loss_fn, _ = self.config
        return directions_unchecked(
            model, theta, batch, algorithm, inner_steps, inner_lr, loss_fn, options
        )

    def __call__(self, theta: Params, batch: TaskBatch, iteration: int) -> tuple[Params, Tensor]:
        """The direction and mean query loss of ``iteration``'s batch."""
        options = resolve_options(self.config[5], self.config[2], next(iter(theta.values())))
        if self._step is None:
            start = time.perf_counter()
            result = self._eager(theta, batch, options)
            if not self._decided and iteration >= 1:
                self._eager_times.append(time.perf_counter() - start)
                if len(self._eager_times) == self.PROBE:
                    self._decided = True
                    typical = sorted(self._eager_times)[self.PROBE // 2]
                    if compile_pays(self.iterations - iteration - 1, typical):
                        self._try_compile()
            return result
        start = time.perf_counter()
        try:
            result = _call(self._step, theta, batch, options)
        except CompileFailed as error:
            self._fall_back(f"compiling failed: {error}")
            return self._eager(theta, batch, options)
        if self._fresh:
            self._fresh = False
            typical = (
                sorted(self._eager_times)[len(self._eager_times) // 2] if self._eager_times else 0
            )
            self.compile_seconds = max(0.0, time.perf_counter() - start - typical)
        return result


def fast_directions(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    algorithm: str,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn,
    options: dict,
    compile: bool | None,
) -> tuple[Params, Tensor]:
    """``meta_gradient_and_loss`` after its checks: compiled where asked for or already built.

    ``compile=None`` uses a compiled step of this configuration only if one
    exists; ``True`` builds one (or says once why it cannot, on stdout).
    """
    config = (model, algorithm, inner_steps, inner_lr, loss_fn, options)
    step = cached_step(*config)
    if step is None and compile is True:
        device = next(iter(params.values())).device
        reason = options_unfit_reason(options) or compile_unavailable_reason(device)
        if reason is None:
            step = compiled_step(*config)
        else:
            tell_once(fallback_message(reason))
    options = resolve_options(options, inner_steps, next(iter(params.values())))
    if step is not None:
        try:
            return _call(step, params, batch, options)
        except CompileFailed as error:
            tell_once(fallback_message(f"compiling failed: {error}"))
    return directions_unchecked(
        model, params, batch, algorithm, inner_steps, inner_lr, loss_fn, options
    )


def _call(step: StepFn, params: Params, batch: TaskBatch, options: dict) -> tuple[Params, Tensor]:
    """Run a compiled step on detached params (no autograd graph around it) and resolved options."""
    theta = {n: p.detach() for n, p in params.items()}
    tensors = {n: options[n] for n in _split(options)[1]}
    return step(theta, batch.support_x, batch.support_y, batch.query_x, batch.query_y, tensors)
