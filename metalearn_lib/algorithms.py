r"""MAML, first-order MAML and Reptile, written close to the maths.

Notation: :math:`\theta` are the meta-parameters (a ``{name: tensor}`` dict),
task :math:`i` has a support set :math:`S_i` and a query set :math:`Q_i`, and
the inner loop takes ``k`` gradient steps with learning rate
:math:`\alpha`:

.. math::

    \phi_i^{(0)} = \theta, \qquad
    \phi_i^{(j+1)} = \phi_i^{(j)} - \alpha \nabla L_{S_i}(\phi_i^{(j)}), \qquad
    \phi_i = \phi_i^{(k)}.

The three algorithms differ only in the direction :math:`g` that the outer
loop follows (``theta <- theta - meta_lr * g``):

* **MAML**: :math:`g = \nabla_\theta \frac1B \sum_i L_{Q_i}(\phi_i(\theta))`.
  The chain rule runs back through every inner step, so it contains
  Hessians of the support loss (second-order terms). For one step,
  :math:`g_i = (I - \alpha \nabla^2 L_{S_i}(\theta))\,\nabla L_{Q_i}(\phi_i)`.
* **FOMAML**: :math:`g = \frac1B \sum_i \nabla L_{Q_i}(\phi_i)`: the
  adaptation is treated as a constant, i.e. the Hessian terms are dropped.
* **Reptile**: :math:`g = \theta - \frac1B \sum_i \phi_i`: step towards the
  average of the adapted parameters (adapted on the support set only).

Implementation: everything is a pure function of the parameter dict.
``torch.func.functional_call`` runs any ``nn.Module`` with given parameters
(its buffers are taken from the module), ``torch.func.grad`` differentiates,
and ``torch.func.vmap`` runs all tasks of a batch at once instead of a Python
loop over tasks. ``torch.func.grad`` always keeps the graph needed for
higher-order derivatives, so the first-order variants cut it explicitly with
``.detach()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, grad_and_value, vmap

from .tasks import TaskBatch

__all__ = [
    "ALGORITHMS",
    "adapt",
    "meta_gradient",
    "meta_gradient_and_loss",
    "mse_loss",
    "task_loss",
]

#: The algorithms :func:`meta_gradient` knows.
ALGORITHMS = ("maml", "fomaml", "reptile")

Params = dict[str, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]


def mse_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error, the default loss for regression tasks."""
    return F.mse_loss(prediction, target)


# ---------------------------------------------------------------------------
# Argument checks: clear errors instead of deep torch tracebacks.
# ---------------------------------------------------------------------------


def _check_model_and_params(model: nn.Module, params: Params) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(params, dict):
        raise TypeError(
            "params must be a dict {name: tensor} such as parameters_of(model), "
            f"got {type(params).__name__}"
        )
    expected = {name: p.shape for name, p in model.named_parameters()}
    missing = sorted(set(expected) - set(params))
    unexpected = sorted(set(params) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"params must have the model's parameter names; missing {missing}, "
            f"unexpected {unexpected}"
        )
    for name, value in params.items():
        if not isinstance(value, Tensor) or not value.is_floating_point():
            raise TypeError(f"params[{name!r}] must be a floating-point tensor")
        if value.shape != expected[name]:
            raise ValueError(
                f"params[{name!r}] has shape {list(value.shape)}, "
                f"the model expects {list(expected[name])}"
            )
    if len({v.dtype for v in params.values()}) > 1:
        raise TypeError("all params must share one dtype (float32 or float64)")


def _check_steps_and_lr(steps: int, lr: float, steps_name: str, lr_name: str) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"{steps_name} must be an int >= 0, got {type(steps).__name__}")
    if steps < 0:
        raise ValueError(f"{steps_name} must be >= 0, got {steps}")
    if isinstance(lr, bool) or not isinstance(lr, int | float):
        raise TypeError(f"{lr_name} must be a positive number, got {type(lr).__name__}")
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"{lr_name} must be a positive finite number, got {lr}")


def _check_loss_fn(loss_fn: LossFn) -> None:
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable(prediction, target) -> scalar, got {loss_fn!r}")


def _check_data_dtype(params: Params, x: Tensor, name: str) -> None:
    dtype = next(iter(params.values())).dtype if params else None
    if x.is_floating_point() and dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name} is {x.dtype} but params are {dtype}; cast one of them "
            "(e.g. batch.to(torch.float64))"
        )


def _probe(model: nn.Module, params: Params, x: Tensor, y: Tensor, loss_fn: LossFn, what: str):
    """Run the loss once on real data so shape or loss mistakes surface clearly."""
    try:
        with torch.no_grad():
            loss = task_loss(model, params, x, y, loss_fn)
    except Exception as error:  # any failure inside the user's model or loss
        raise ValueError(
            f"could not compute the loss on {what} (x {list(x.shape)}, y {list(y.shape)}): "
            f"{type(error).__name__}: {error}"
        ) from error
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar tensor, got {loss!r}")


# ---------------------------------------------------------------------------
# The maths.
# ---------------------------------------------------------------------------


def task_loss(
    model: nn.Module, params: Params, x: Tensor, y: Tensor, loss_fn: LossFn = mse_loss
) -> Tensor:
    """Loss of ``model`` run with parameters ``params`` on one task's points ``(x, y)``."""
    buffers = dict(model.named_buffers())
    return loss_fn(functional_call(model, (params, buffers), (x,)), y)


def _adapt(
    model: nn.Module,
    params: Params,
    x: Tensor,
    y: Tensor,
    steps: int,
    lr: float,
    first_order: bool,
    loss_fn: LossFn,
) -> Params:
    loss_grad = grad(task_loss, argnums=1)
    for _ in range(steps):
        g = loss_grad(model, params, x, y, loss_fn)
        if first_order:
            # Treat the step as a constant of theta: no second-order terms.
            g = {name: gi.detach() for name, gi in g.items()}
        params = {name: p - lr * g[name] for name, p in params.items()}
    return params


def adapt(
    model: nn.Module,
    params: Params,
    x: Tensor,
    y: Tensor,
    *,
    steps: int,
    lr: float,
    first_order: bool = False,
    loss_fn: LossFn = mse_loss,
) -> Params:
    """Adapt ``params`` to one task by ``steps`` steps of gradient descent.

    This is MAML's inner loop for a single task. It is a pure function: it
    returns a new parameter dict and changes neither ``params`` nor ``model``.

    Parameters
    ----------
    model : nn.Module
        Any module; it is run with ``params`` in place of its own parameters.
    params : dict of str to Tensor
        Starting parameters (theta), e.g. from :func:`~metalearn_lib.models.parameters_of`.
    x, y : Tensor
        The task's support inputs ``[K, ...]`` and targets ``[K, ...]``.
    steps : int
        Number of gradient steps (>= 0; 0 returns ``params`` unchanged).
    lr : float
        Inner learning rate alpha (> 0).
    first_order : bool
        If True, each step's gradient is detached, so the result is treated
        as a constant with respect to ``params`` (what FOMAML and Reptile do).
        If False (default) the result stays differentiable with respect to
        ``params``, second-order terms included.
    loss_fn : callable
        ``loss_fn(prediction, target) -> scalar``; mean squared error by default.

    Returns
    -------
    dict of str to Tensor
        The adapted parameters phi, with the same keys as ``params``.
    """
    _check_model_and_params(model, params)
    _check_steps_and_lr(steps, lr, "steps", "lr")
    _check_loss_fn(loss_fn)
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError("x and y must be torch.Tensors")
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of points (first axis), "
            f"got x {list(x.shape)} and y {list(y.shape)}"
        )
    _check_data_dtype(params, x, "x")
    _probe(model, params, x, y, loss_fn, "the task's points")
    return _adapt(model, params, x, y, steps, lr, first_order, loss_fn)


def _check_batch(model, params, batch, algorithm, inner_steps, inner_lr, loss_fn) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    _check_model_and_params(model, params)
    _check_steps_and_lr(inner_steps, inner_lr, "inner_steps", "inner_lr")
    _check_loss_fn(loss_fn)
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be a TaskBatch, got {type(batch).__name__}")
    _check_data_dtype(params, batch.support_x, "batch.support_x")
    _probe(model, params, batch.support_x[0], batch.support_y[0], loss_fn, "the first support set")
    _probe(model, params, batch.query_x[0], batch.query_y[0], loss_fn, "the first query set")


def meta_gradient_and_loss(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    *,
    algorithm: str,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn = mse_loss,
) -> tuple[Params, Tensor]:
    """Like :func:`meta_gradient`, and also the mean query loss after adaptation.

    Returns
    -------
    (dict of str to Tensor, Tensor)
        The meta-gradient and the scalar mean query loss of the adapted
        parameters (the quantity MAML minimises; reported for all three).
    """
    _check_batch(model, params, batch, algorithm, inner_steps, inner_lr, loss_fn)
    # theta is data here: the result must not hang on to the caller's graph.
    theta = {name: p.detach() for name, p in params.items()}

    def adapted_params(theta: Params, first_order: bool) -> Params:
        def adapt_one(x: Tensor, y: Tensor) -> Params:
            return _adapt(model, theta, x, y, inner_steps, inner_lr, first_order, loss_fn)

        return vmap(adapt_one)(batch.support_x, batch.support_y)

    def query_loss(phi: Params, x: Tensor, y: Tensor) -> Tensor:
        return task_loss(model, phi, x, y, loss_fn)

    if algorithm == "maml":

        def mean_query_loss(theta: Params) -> Tensor:
            phi = adapted_params(theta, first_order=False)
            return vmap(query_loss)(phi, batch.query_x, batch.query_y).mean()

        direction, loss = grad_and_value(mean_query_loss)(theta)
    elif algorithm == "fomaml":
        phi = adapted_params(theta, first_order=True)
        per_task, losses = vmap(grad_and_value(query_loss))(phi, batch.query_x, batch.query_y)
        direction = {name: g.mean(dim=0) for name, g in per_task.items()}
        loss = losses.mean()
    else:  # reptile
        phi = adapted_params(theta, first_order=True)
        direction = {name: theta[name] - phi[name].mean(dim=0) for name in theta}
        loss = vmap(query_loss)(phi, batch.query_x, batch.query_y).mean()
    return {name: g.detach() for name, g in direction.items()}, loss.detach()


def meta_gradient(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    *,
    algorithm: str,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn = mse_loss,
) -> Params:
    """The meta-update direction of MAML, FOMAML or Reptile for a batch of tasks.

    All tasks of the batch are processed at once with ``torch.func.vmap``.
    The outer loop then does ``theta <- theta - meta_lr * direction`` (or hands
    the direction to an optimizer such as Adam as if it were a gradient).

    Parameters
    ----------
    model : nn.Module
        Any module (buffers are read from it; parameters come from ``params``).
    params : dict of str to Tensor
        The meta-parameters theta; they may or may not require grad.
    batch : TaskBatch
        Support and query sets, leading axis = task.
    algorithm : {"maml", "fomaml", "reptile"}
        ``"maml"``: gradient of the mean query loss after adaptation with
        respect to theta, through the inner steps (second order).
        ``"fomaml"``: mean over tasks of the query-loss gradient at the
        adapted parameters (adaptation treated as constant).
        ``"reptile"``: theta minus the mean of the parameters adapted on the
        support set.
    inner_steps : int
        Gradient steps of the inner loop (>= 0).
    inner_lr : float
        Inner learning rate alpha (> 0).
    loss_fn : callable
        ``loss_fn(prediction, target) -> scalar`` for one task; mean squared
        error by default, ``torch.nn.functional.cross_entropy`` for
        classification with integer labels.

    Returns
    -------
    dict of str to Tensor
        Detached tensors with the same keys and shapes as ``params``.
    """
    direction, _ = meta_gradient_and_loss(
        model,
        params,
        batch,
        algorithm=algorithm,
        inner_steps=inner_steps,
        inner_lr=inner_lr,
        loss_fn=loss_fn,
    )
    return direction
