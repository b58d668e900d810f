"""The same meta-gradients as a plain per-task Python loop.

This is how most tutorials (and learn2learn) write MAML: one task at a time,
``torch.autograd.grad`` with ``create_graph=True`` so the outer gradient can
flow back through the inner steps. It is deliberately independent of the
``torch.func`` code in :mod:`metalearn_lib.algorithms`: the tests check the
batched version against it, and the benchmarks time the two side by side.

:data:`LOOP_DIRECTIONS` is this module's registry: one *loop twin* per entry
of :data:`metalearn_lib.algorithms.DIRECTIONS`, with the signature::

    loop_direction(model, params, batch, *, inner_steps, inner_lr, loss_fn, **options)
        -> direction dict

(a test checks that the two registries have the same names). A twin may
assume ``params`` are detached leaves that require grad.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .algorithms import ALGORITHMS, check_algorithm, mse_loss
from .checks import LossFn, Params
from .tasks import TaskBatch

__all__ = [
    "LOOP_DIRECTIONS",
    "loop_fomaml",
    "loop_maml",
    "loop_meta_gradient",
    "loop_reptile",
    "register_loop_direction",
    "unregister_loop_direction",
]


def _loss_at(model: nn.Module, names: list[str], weights: list[Tensor], x, y, loss_fn) -> Tensor:
    buffers = dict(model.named_buffers())
    return loss_fn(functional_call(model, (dict(zip(names, weights)), buffers), (x,)), y)


def _adapted(model, names, theta, x, y, inner_steps, inner_lr, loss_fn, second_order):
    """One task's inner loop with torch.autograd; differentiable only if second_order."""
    fast = theta
    for _ in range(inner_steps):
        inner = _loss_at(model, names, fast, x, y, loss_fn)
        grads = torch.autograd.grad(inner, fast, create_graph=second_order)
        # Without create_graph the gradients are constants: first order.
        fast = [w - inner_lr * g for w, g in zip(fast, grads)]
    return fast


def _query_gradient_loop(model, params, batch, inner_steps, inner_lr, loss_fn, second_order):
    names = list(params)
    theta = [params[n] for n in names]
    total = [torch.zeros_like(t) for t in theta]
    for i in range(batch.num_tasks):
        fast = _adapted(
            model,
            names,
            theta,
            batch.support_x[i],
            batch.support_y[i],
            inner_steps,
            inner_lr,
            loss_fn,
            second_order,
        )
        outer = _loss_at(model, names, fast, batch.query_x[i], batch.query_y[i], loss_fn)
        contribution = torch.autograd.grad(outer, theta)
        total = [s + c for s, c in zip(total, contribution)]
    return {n: s / batch.num_tasks for n, s in zip(names, total)}


def loop_maml(model, params, batch, *, inner_steps, inner_lr, loss_fn) -> Params:
    """MAML, one task at a time, differentiating through the inner loop (create_graph)."""
    return _query_gradient_loop(model, params, batch, inner_steps, inner_lr, loss_fn, True)


def loop_fomaml(model, params, batch, *, inner_steps, inner_lr, loss_fn) -> Params:
    """FOMAML, one task at a time: the query gradient at the (constant) adapted weights."""
    return _query_gradient_loop(model, params, batch, inner_steps, inner_lr, loss_fn, False)


def loop_reptile(model, params, batch, *, inner_steps, inner_lr, loss_fn) -> Params:
    """Reptile, one task at a time: theta minus the mean adapted weights."""
    names = list(params)
    theta = [params[n] for n in names]
    total = [torch.zeros_like(t) for t in theta]
    for i in range(batch.num_tasks):
        fast = _adapted(
            model,
            names,
            theta,
            batch.support_x[i],
            batch.support_y[i],
            inner_steps,
            inner_lr,
            loss_fn,
            False,
        )
        total = [s + (t - w).detach() for s, t, w in zip(total, theta, fast)]
    return {n: s / batch.num_tasks for n, s in zip(names, total)}


_LOOP_DIRECTIONS: dict[str, Callable[..., Params]] = {
    "maml": loop_maml,
    "fomaml": loop_fomaml,
    "reptile": loop_reptile,
}
_BUILT_IN = frozenset(_LOOP_DIRECTIONS)


#: name -> loop twin of the direction function of the same name.
LOOP_DIRECTIONS = MappingProxyType(_LOOP_DIRECTIONS)


def register_loop_direction(name: str, loop_direction: Callable[..., Params]) -> None:
    """Add the loop twin of an algorithm registered with ``register_algorithm``."""
    check_algorithm(name)
    if name in _LOOP_DIRECTIONS:
        raise ValueError(f"a loop twin of {name!r} is already registered")
    if not callable(loop_direction):
        raise TypeError(f"loop_direction must be callable, got {loop_direction!r}")
    _LOOP_DIRECTIONS[name] = loop_direction


def unregister_loop_direction(name: str) -> None:
    """Remove a loop twin added by :func:`register_loop_direction` (built-ins stay)."""
    if name in _BUILT_IN or name not in _LOOP_DIRECTIONS:
        raise ValueError(f"no removable loop twin named {name!r}")
    del _LOOP_DIRECTIONS[name]


def loop_meta_gradient(
    model: nn.Module,
    params: dict[str, Tensor],
    batch: TaskBatch,
    *,
    algorithm: str,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn = mse_loss,
    **options,
) -> dict[str, Tensor]:
    """Per-task loop version of :func:`metalearn_lib.algorithms.meta_gradient`."""
    check_algorithm(algorithm)
    if algorithm not in _LOOP_DIRECTIONS:
        raise ValueError(
            f"algorithm {algorithm!r} has no loop twin; loop twins: {tuple(_LOOP_DIRECTIONS)} "
            f"(algorithms: {ALGORITHMS})"
        )
    theta = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    direction = _LOOP_DIRECTIONS[algorithm](
        model, theta, batch, inner_steps=inner_steps, inner_lr=inner_lr, loss_fn=loss_fn, **options
    )
    return {n: d.detach() for n, d in direction.items()}
