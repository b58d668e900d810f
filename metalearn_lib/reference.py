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


# ---------------------------------------------------------------------------
# Loop twins of the variants (metalearn_lib.variants), written with torch.autograd.
# ---------------------------------------------------------------------------


def _rates_or_constant(params, names, prefix, inner_lr):
    """The learned rates ``params[prefix + name]`` if present, else ``inner_lr``."""
    found = all(prefix + n in params for n in names)
    return [params[prefix + n] if found else inner_lr for n in names], found


def _differentiate(outer, names, theta, rates, found, prefix):
    """d outer / d (theta, learned rates), as a dict keyed like the params."""
    inputs = theta + (rates if found else [])
    grads = torch.autograd.grad(outer, inputs, allow_unused=True)
    keys = names + ([prefix + n for n in names] if found else [])
    return {k: torch.zeros_like(x) if g is None else g for k, x, g in zip(keys, inputs, grads)}


def _mean_over_tasks(per_task: list[Params]) -> Params:
    return {k: sum(d[k] for d in per_task) / len(per_task) for k in per_task[0]}


def loop_anil(model, params, batch, *, inner_steps, inner_lr, loss_fn, head=None) -> Params:
    """ANIL, one task at a time: MAML whose inner gradients of the body are set to zero."""
    from .variants import head_names

    names = list(params)
    theta = [params[n] for n in names]
    in_head = [n in head_names(model, head) for n in names]
    per_task = []
    for i in range(batch.num_tasks):
        fast = theta
        for _ in range(inner_steps):
            inner = _loss_at(model, names, fast, batch.support_x[i], batch.support_y[i], loss_fn)
            grads = torch.autograd.grad(inner, fast, create_graph=True)
            grads = [g if h else torch.zeros_like(g) for g, h in zip(grads, in_head)]
            fast = [w - inner_lr * g for w, g in zip(fast, grads)]
        outer = _loss_at(model, names, fast, batch.query_x[i], batch.query_y[i], loss_fn)
        per_task.append(dict(zip(names, torch.autograd.grad(outer, theta))))
    return _mean_over_tasks(per_task)


def loop_metasgd(model, params, batch, *, inner_steps, inner_lr, loss_fn, init_lr=0.01) -> Params:
    """Meta-SGD, one task at a time: per-entry learned rates, differentiated with theta."""
    names = [n for n in params if not n.startswith("meta.")]
    theta = [params[n] for n in names]
    rates, found = _rates_or_constant(params, names, "meta.lr.", inner_lr)
    per_task = []
    for i in range(batch.num_tasks):
        fast = theta
        for _ in range(inner_steps):
            inner = _loss_at(model, names, fast, batch.support_x[i], batch.support_y[i], loss_fn)
            grads = torch.autograd.grad(inner, fast, create_graph=True)
            fast = [w - r * g for w, r, g in zip(fast, rates, grads)]
        outer = _loss_at(model, names, fast, batch.query_x[i], batch.query_y[i], loss_fn)
        per_task.append(_differentiate(outer, names, theta, rates, found, "meta.lr."))
    return _mean_over_tasks(per_task)


def loop_mamlpp(
    model,
    params,
    batch,
    *,
    inner_steps,
    inner_lr,
    loss_fn,
    step_weights=None,
    learn_rates=True,
    init_lr=0.01,
    rate_steps=5,
) -> Params:
    """MAML++, one task at a time: weighted query losses after every step, per-step rates."""
    names = [n for n in params if not n.startswith("meta.")]
    theta = [params[n] for n in names]
    rates, found = _rates_or_constant(params, names, "meta.step_lr.", inner_lr)
    found = found and learn_rates
    if callable(step_weights):
        step_weights = step_weights(inner_steps)
    if step_weights is None:
        step_weights = [1 / inner_steps] * inner_steps if inner_steps else []
    weights = list(step_weights)
    per_task = []
    for i in range(batch.num_tasks):
        fast = theta
        qx, qy = batch.query_x[i], batch.query_y[i]
        outer = _loss_at(model, names, fast, qx, qy, loss_fn) if inner_steps == 0 else 0.0
        for j in range(inner_steps):
            inner = _loss_at(model, names, fast, batch.support_x[i], batch.support_y[i], loss_fn)
            grads = torch.autograd.grad(inner, fast, create_graph=True)
            step = [r[min(j, len(r) - 1)] if found else inner_lr for r in rates]
            fast = [w - s * g for w, s, g in zip(fast, step, grads)]
            outer = outer + weights[j] * _loss_at(model, names, fast, qx, qy, loss_fn)
        per_task.append(_differentiate(outer, names, theta, rates, found, "meta.step_lr."))
    return _mean_over_tasks(per_task)


def _flat_loss(model, names, shapes, vector, x, y, loss_fn):
    pieces = torch.split(vector, [int(torch.Size(s).numel()) for s in shapes])
    weights = [piece.reshape(s) for piece, s in zip(pieces, shapes)]
    return _loss_at(model, names, weights, x, y, loss_fn)


def _imaml_task(model, names, shapes, theta_flat, x, y, inner_steps, inner_lr, lam, loss_fn):
    """The proximal inner loop on a flat vector, with plain autograd (no graph kept)."""
    phi = theta_flat.clone()
    for _ in range(inner_steps):
        phi = phi.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(_flat_loss(model, names, shapes, phi, x, y, loss_fn), phi)
        phi = phi - inner_lr * (g + lam * (phi - theta_flat))
    return phi.detach().requires_grad_(True)


def loop_imaml(
    model, params, batch, *, inner_steps, inner_lr, loss_fn, lam=1.0, cg_steps=5
) -> Params:
    """iMAML, one task at a time: autograd Hessian-vector products and a conjugate-gradient loop."""
    names = list(params)
    shapes = [params[n].shape for n in names]
    theta_flat = torch.cat([params[n].detach().reshape(-1) for n in names])
    total = torch.zeros_like(theta_flat)
    for i in range(batch.num_tasks):
        sx, sy = batch.support_x[i], batch.support_y[i]
        phi = _imaml_task(
            model, names, shapes, theta_flat, sx, sy, inner_steps, inner_lr, lam, loss_fn
        )
        query = _flat_loss(model, names, shapes, phi, batch.query_x[i], batch.query_y[i], loss_fn)
        (b,) = torch.autograd.grad(query, phi)
        (g_support,) = torch.autograd.grad(
            _flat_loss(model, names, shapes, phi, sx, sy, loss_fn), phi, create_graph=True
        )
        x, r = torch.zeros_like(b), b.clone()
        p, rs = r.clone(), r @ r
        for _ in range(cg_steps):
            (hp,) = torch.autograd.grad(g_support @ p, phi, retain_graph=True)
            ap = p + hp / lam
            curvature = p @ ap
            alpha = rs / curvature if curvature > 0 else torch.zeros_like(rs)
            x, r = x + alpha * p, r - alpha * ap
            rs_new = r @ r
            p = r + (rs_new / rs if rs > 0 else 0.0) * p
            rs = rs_new
        total = total + x.detach()
    mean = total / batch.num_tasks
    return dict(
        zip(
            names,
            (
                t.reshape(s)
                for t, s in zip(
                    torch.split(mean, [int(torch.Size(s).numel()) for s in shapes]), shapes
                )
            ),
        )
    )


def exact_imaml_direction(
    model, params, batch, *, inner_steps, inner_lr, lam, loss_fn=mse_loss
) -> Params:
    """iMAML's meta-gradient by an explicit Hessian and a direct solve (small nets only).

    ``mean_i (I + H_i/lam)^-1 grad L_Qi(phi_i)`` with ``H_i`` the full Hessian
    of the support loss at the adapted ``phi_i``: the quantity CG approximates.
    """
    names = list(params)
    shapes = [params[n].shape for n in names]
    theta_flat = torch.cat([params[n].detach().reshape(-1) for n in names])
    eye = torch.eye(theta_flat.numel(), dtype=theta_flat.dtype)
    total = torch.zeros_like(theta_flat)
    for i in range(batch.num_tasks):
        sx, sy = batch.support_x[i], batch.support_y[i]
        phi = _imaml_task(
            model, names, shapes, theta_flat, sx, sy, inner_steps, inner_lr, lam, loss_fn
        ).detach()

        def support(v, sx=sx, sy=sy):
            return _flat_loss(model, names, shapes, v, sx, sy, loss_fn)

        def query(v, i=i):
            return _flat_loss(model, names, shapes, v, batch.query_x[i], batch.query_y[i], loss_fn)

        hessian = torch.autograd.functional.hessian(support, phi)
        b = torch.autograd.functional.jacobian(query, phi)
        total = total + torch.linalg.solve(eye + hessian / lam, b)
    mean = total / batch.num_tasks
    pieces = torch.split(mean, [int(torch.Size(s).numel()) for s in shapes])
    return {n: piece.reshape(s) for n, piece, s in zip(names, pieces, shapes)}


_LOOP_DIRECTIONS.update(imaml=loop_imaml, anil=loop_anil, metasgd=loop_metasgd, mamlpp=loop_mamlpp)
_BUILT_IN = _BUILT_IN | {"imaml", "anil", "metasgd", "mamlpp"}
