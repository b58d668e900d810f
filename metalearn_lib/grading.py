"""Checks used by the test cells of the nbgrader assignments in ``solutions/``.

Each ``check_*`` function runs a learner's function on one case built from a
seed, a network shape and a step count, compares the result with the
library's reference implementation
(:func:`metalearn_lib.reference.loop_meta_gradient`, the per-task loop that
the tests of :func:`metalearn_lib.adapt` and :func:`metalearn_lib.meta_gradient`
check the batched ``torch.func`` code against), and returns ``True`` or
``False``. The reference uses plain autograd, which starts in milliseconds in a
fresh kernel (the first ``torch.func`` call costs about 1.5 s), so grading
stays fast. It never raises and prints nothing: a
learner's exception, printout or warning inside the check counts as a
mismatch, so a hidden test cell written as

.. code-block:: python

    assert check_adapt(adapt_k, seed=..., hidden=..., steps=...), "message"

shows only its message when it fails, never the expected numbers. Results
are compared in float64 with tight tolerances; only plain tensors in plain
dicts with the right keys count (an object that claims to equal anything
does not).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from .models import MLP, parameters_of
from .reference import loop_meta_gradient
from .tasks import SinusoidTasks, TaskBatch

__all__ = [
    "check_adapt",
    "check_meta_gradient",
    "check_sgd_step",
    "params_match",
]

_RTOL = 1e-6
_ATOL = 1e-8


def params_match(got: object, expected: dict[str, Tensor]) -> bool:
    """True if ``got`` is a dict of plain tensors equal to ``expected`` (float64 tolerances)."""
    if type(got) is not dict or set(got) != set(expected) or not all(type(k) is str for k in got):
        return False
    for name, want in expected.items():
        value = got[name]
        if type(value) not in (Tensor, torch.nn.Parameter) or value.shape != want.shape:
            return False
        value = value.detach().to(torch.float64)
        if not torch.allclose(value, want.detach().to(torch.float64), rtol=_RTOL, atol=_ATOL):
            return False
    return True


def _quietly(fn: Callable, *args, **kwargs) -> tuple[bool, object]:
    """Call ``fn``; return (ok, result) with all output and warnings swallowed."""
    sink = io.StringIO()
    try:
        with (
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            return True, fn(*args, **kwargs)
    except Exception:  # the learner's bug: a failed check, not a crash of the grader
        return False, None


def _model_and_params(seed: int, hidden: tuple[int, ...]):
    model = MLP(1, 1, hidden, seed=seed).double()
    return model, parameters_of(model)


def _batch(seed: int, tasks: int, shots: int) -> TaskBatch:
    generator = torch.Generator().manual_seed(10_000 + seed)
    return SinusoidTasks().sample(tasks, shots, generator=generator, dtype=torch.float64)


def _copy(params: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}


def check_sgd_step(sgd_step: Callable, *, seed: int, shapes: tuple[tuple[int, ...], ...]) -> bool:
    """Check ``sgd_step(params, grads, lr)`` on random tensors of the given shapes.

    It must return ``{name: params[name] - lr * grads[name]}`` and leave its
    inputs unchanged.
    """
    generator = torch.Generator().manual_seed(seed)
    params = {
        f"p{i}": torch.randn(s, generator=generator, dtype=torch.float64)
        for i, s in enumerate(shapes)
    }
    grads = {
        k: torch.randn(v.shape, generator=generator, dtype=torch.float64) for k, v in params.items()
    }
    lr = 0.01 + 0.5 * torch.rand(1, generator=generator).item()
    expected = {k: params[k] - lr * grads[k] for k in params}
    before = {k: v.clone() for k, v in params.items()}
    ok, got = _quietly(sgd_step, params, grads, lr)
    unchanged = all(torch.equal(params[k], before[k]) for k in params)
    return ok and unchanged and params_match(got, expected)


def check_adapt(
    adapt_fn: Callable,
    *,
    seed: int,
    hidden: tuple[int, ...] = (40, 40),
    steps: int = 1,
    lr: float = 0.01,
    shots: int = 10,
) -> bool:
    """Check ``adapt_fn(model, params, x, y, steps=, lr=)``, k steps of MAML's inner loop.

    The adapted values must equal the reference's (for one task, Reptile's
    direction is ``theta - phi``), and the result must stay differentiable with
    respect to ``params`` (second order): the gradient of the query loss at
    the adapted parameters with respect to ``params`` must equal the
    reference MAML meta-gradient of that one task.
    """
    model, params = _model_and_params(seed, hidden)
    task = _batch(seed, 1, shots)
    kwargs = {"inner_steps": steps, "inner_lr": lr}
    reptile = loop_meta_gradient(model, _copy(params), task, algorithm="reptile", **kwargs)
    expected = {n: params[n].detach() - reptile[n] for n in params}
    expected_grad = loop_meta_gradient(model, _copy(params), task, algorithm="maml", **kwargs)

    mine = _copy(params)
    x, y = task.support_x[0], task.support_y[0]
    ok, got = _quietly(adapt_fn, model, mine, x, y, steps=steps, lr=lr)
    if not ok or not params_match(got, expected):
        return False

    def query_grad() -> dict[str, Tensor]:
        out = torch.func.functional_call(model, got, (task.query_x[0],))
        loss = torch.nn.functional.mse_loss(out, task.query_y[0])
        grads = torch.autograd.grad(loss, list(mine.values()), allow_unused=True)
        return {n: torch.zeros_like(mine[n]) if g is None else g for n, g in zip(mine, grads)}

    ok, got_grad = _quietly(query_grad)
    return ok and params_match(got_grad, expected_grad)


def check_meta_gradient(
    fn: Callable,
    algorithm: str,
    *,
    seed: int,
    hidden: tuple[int, ...] = (40, 40),
    tasks: int = 4,
    shots: int = 10,
    inner_steps: int = 1,
    inner_lr: float = 0.01,
) -> bool:
    """Check ``fn(model, params, batch, inner_steps=, inner_lr=)`` against the library's
    ``meta_gradient(..., algorithm=algorithm)`` (through its reference loop)."""
    model, params = _model_and_params(seed, hidden)
    batch = _batch(seed, tasks, shots)
    kwargs = {"inner_steps": inner_steps, "inner_lr": inner_lr}
    expected = loop_meta_gradient(model, _copy(params), batch, algorithm=algorithm, **kwargs)
    ok, got = _quietly(fn, model, _copy(params), batch, **kwargs)
    return ok and params_match(got, expected)
