r"""MAML's meta-gradient computed two more ways, and how closely two directions agree.

* :func:`one_step_maml_by_hessian` and :func:`finite_difference_meta_gradient`
  - two independent ways to compute MAML's meta-gradient, to check the
  library's :func:`~metalearn_lib.algorithms.meta_gradient` against
  (chapter 2);
* :func:`cosine_similarity` and :func:`direction_similarity` - how closely
  other algorithms' update directions follow MAML's (chapter 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, vmap

from ..algorithms import check_algorithm, inner_loop, meta_gradient, mse_loss
from ..checks import Params, check_model_and_params, flatten, unflatten
from ..tasks import TaskBatch

__all__ = [
    "cosine_similarity",
    "direction_similarity",
    "finite_difference_meta_gradient",
    "maml_objective",
    "one_step_maml_by_hessian",
]


def cosine_similarity(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> float:
    """Cosine of the angle between two parameter-shaped directions (1 = same direction)."""
    if set(a) != set(b):
        raise ValueError(f"a and b must have the same keys, got {sorted(a)} and {sorted(b)}")
    va = flatten({n: a[n] for n in a}).double()
    vb = flatten({n: b[n] for n in a}).double()
    denominator = va.norm() * vb.norm()
    if denominator == 0:
        raise ValueError("cosine similarity is undefined for a zero direction")
    return (va @ vb / denominator).item()


def direction_similarity(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    *,
    inner_steps: Sequence[int] = (1, 2, 5, 10),
    inner_lr: float = 0.01,
    algorithms: Sequence[str] = ("fomaml", "reptile"),
    reference: str = "maml",
    loss_fn=mse_loss,
) -> dict[str, list[float]]:
    """Cosine similarity of other algorithms' directions to ``reference``'s, per inner-step count.

    Parameters
    ----------
    algorithms : sequence of str
        The registered algorithms to compare with ``reference``.

    Returns
    -------
    dict
        ``{algorithm: [...]}``, one cosine per entry of ``inner_steps``.
    """
    check_algorithm(reference)
    out: dict[str, list[float]] = {check_algorithm(a): [] for a in algorithms}
    for k in inner_steps:
        settings = dict(inner_steps=k, inner_lr=inner_lr, loss_fn=loss_fn)
        base = meta_gradient(model, params, batch, algorithm=reference, **settings)
        for algorithm in out:
            other = meta_gradient(model, params, batch, algorithm=algorithm, **settings)
            out[algorithm].append(cosine_similarity(base, other))
    return out


def maml_objective(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    *,
    inner_steps: int,
    inner_lr: float,
    loss_fn=mse_loss,
) -> Tensor:
    """MAML's objective: mean over tasks of the query loss after ``inner_steps`` steps.

    Differentiable with respect to ``params`` (second-order terms included).
    """
    check_model_and_params(model, params)

    def one_task(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
        phi = inner_loop(model, params, sx, sy, inner_steps, inner_lr, False, loss_fn)
        return loss_fn(functional_call(model, (phi, dict(model.named_buffers())), (qx,)), qy)

    return vmap(one_task)(batch.support_x, batch.support_y, batch.query_x, batch.query_y).mean()


def one_step_maml_by_hessian(
    model: nn.Module, params: Params, batch: TaskBatch, *, inner_lr: float, loss_fn=mse_loss
) -> tuple[Params, Tensor]:
    r"""MAML's one-step meta-gradient from the explicit formula.

    For each task, with :math:`\phi = \theta - \alpha \nabla L_S(\theta)`:

    .. math:: g = (I - \alpha \nabla^2 L_S(\theta))\, \nabla L_Q(\phi)

    The Hessian :math:`\nabla^2 L_S(\theta)` is built as a full matrix, so
    this is only for small networks and for checking.

    Returns
    -------
    (dict, Tensor)
        The meta-gradient averaged over the batch's tasks, and the Hessian of
        the *first* task's support loss (``[P, P]`` for ``P`` parameters).
    """
    check_model_and_params(model, params)
    theta = flatten({n: p.detach() for n, p in params.items()})
    buffers = dict(model.named_buffers())

    def loss_at(vector: Tensor, x: Tensor, y: Tensor) -> Tensor:
        return loss_fn(functional_call(model, (unflatten(vector, params), buffers), (x,)), y)

    total, first_hessian = torch.zeros_like(theta), None
    for i in range(batch.num_tasks):
        sx, sy, qx, qy = batch.support_x[i], batch.support_y[i], batch.query_x[i], batch.query_y[i]
        # Reverse-over-reverse: the Jacobian of the gradient is the Hessian.
        h = jacrev(grad(loss_at))(theta, sx, sy)
        phi = theta - inner_lr * grad(loss_at)(theta, sx, sy)
        query_grad = grad(loss_at)(phi, qx, qy)
        identity = torch.eye(theta.numel(), dtype=theta.dtype)
        total += (identity - inner_lr * h) @ query_grad
        if first_hessian is None:
            first_hessian = h
    return unflatten(total / batch.num_tasks, params), first_hessian


def finite_difference_meta_gradient(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    *,
    inner_steps: int,
    inner_lr: float,
    eps: float = 1e-6,
    chunk_size: int = 512,
    loss_fn=mse_loss,
) -> Params:
    r"""MAML's meta-gradient by central finite differences, one coordinate at a time.

    .. math::

        g_j \approx \frac{J(\theta + \varepsilon e_j) - J(\theta - \varepsilon e_j)}
                         {2\varepsilon}

    where :math:`J` is :func:`maml_objective`. No derivative of the
    objective is used, so this is an independent check. Use float64
    parameters and data (float32 rounding swamps small ``eps``).
    """
    check_model_and_params(model, params)
    if not (isinstance(eps, float) and 0 < eps < 1):
        raise ValueError(f"eps must be a float in (0, 1), got {eps!r}")
    theta = flatten({n: p.detach() for n, p in params.items()})

    def objective(vector: Tensor) -> Tensor:
        return maml_objective(
            model,
            unflatten(vector, params),
            batch,
            inner_steps=inner_steps,
            inner_lr=inner_lr,
            loss_fn=loss_fn,
        )

    n = theta.numel()
    out = torch.empty_like(theta)
    with torch.no_grad():
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            bumps = torch.zeros(stop - start, n, dtype=theta.dtype)
            bumps[torch.arange(stop - start), torch.arange(start, stop)] = eps
            plus = vmap(objective)(theta + bumps)
            minus = vmap(objective)(theta - bumps)
            out[start:stop] = (plus - minus) / (2 * eps)
    return unflatten(out, params)
