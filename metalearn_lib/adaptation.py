r"""Adapting to one task: the inner loop, its checked form and its step-by-step record.

The inner loop takes ``k`` gradient steps on a task's support loss from the
meta-parameters :math:`\theta` (a ``{name: tensor}`` dict) with learning rate
:math:`\alpha`:

.. math::

    \phi^{(0)} = \theta, \qquad
    \phi^{(j+1)} = \phi^{(j)} - \alpha \nabla L_S(\phi^{(j)}).

* :func:`adapt` is that loop for one task, with its argument checks;
* :func:`inner_loop` is the same without checks, for use inside ``vmap`` and
  in the algorithms' direction functions (:mod:`metalearn_lib.algorithms`);
* :func:`adaptation_trajectory` adapts at test time and records the losses
  after every step: what ``evaluate``, the widgets and the experiments run;
* :func:`task_loss` and :func:`model_params` are the small pieces all of them
  share, and :func:`probe_loss`/:func:`check_data_dtype` the checks that
  need a forward pass or the data.

Everything is a pure function of the parameter dict: ``torch.func.functional_call``
runs the module with given parameters (its buffers come from the module).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, grad_and_value

from .checks import (
    META_PREFIX,
    LossFn,
    Params,
    check_int,
    check_loss_fn,
    check_model_and_params,
    check_positive,
)

__all__ = [
    "Trajectory",
    "adapt",
    "adaptation_trajectory",
    "check_data_dtype",
    "inner_loop",
    "model_params",
    "mse_loss",
    "probe_loss",
    "task_loss",
]


def mse_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error, the default loss for regression tasks."""
    return F.mse_loss(prediction, target)


def model_params(params: Params) -> Params:
    """The model's own entries of ``params`` (without an algorithm's ``meta.`` entries)."""
    return {n: p for n, p in params.items() if not n.startswith(META_PREFIX)}


def task_loss(
    model: nn.Module, params: Params, x: Tensor, y: Tensor, loss_fn: LossFn = mse_loss
) -> Tensor:
    """Loss of ``model`` run with parameters ``params`` on one task's points ``(x, y)``."""
    buffers = dict(model.named_buffers())
    return loss_fn(functional_call(model, (params, buffers), (x,)), y)


def inner_loop(
    model: nn.Module,
    params: Params,
    x: Tensor,
    y: Tensor,
    steps: int,
    lr: float,
    first_order: bool,
    loss_fn: LossFn,
) -> Params:
    """:func:`adapt` without its argument checks, for use inside ``vmap`` and directions."""
    loss_grad = grad(task_loss, argnums=1)
    for _ in range(steps):
        g = loss_grad(model, params, x, y, loss_fn)
        if first_order:
            # Treat the step as a constant of theta: no second-order terms.
            g = {name: gi.detach() for name, gi in g.items()}
        params = {name: p - lr * g[name] for name, p in params.items()}
    return params


def probe_loss(
    model: nn.Module, params: Params, x: Tensor, y: Tensor, loss_fn: LossFn, what: str
) -> None:
    """Run the loss once on real data (``what`` names it) so shape or loss mistakes surface.

    A ValueError naming the data's shapes if the model or ``loss_fn`` fails on
    them, or if the loss is not a scalar tensor.
    """
    try:
        with torch.no_grad():
            loss = task_loss(model, model_params(params), x, y, loss_fn)
    except Exception as error:  # any failure inside the user's model or loss
        raise ValueError(
            f"could not compute the loss on {what} (x {list(x.shape)}, y {list(y.shape)}): "
            f"{type(error).__name__}: {error}"
        ) from error
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar tensor, got {loss!r}")


def check_data_dtype(params: Params, x: Tensor, name: str) -> None:
    """A TypeError if floating-point data ``x`` (called ``name``) and ``params`` differ in dtype."""
    dtype = next(iter(params.values())).dtype if params else None
    if x.is_floating_point() and dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name} is {x.dtype} but params are {dtype}; cast one of them "
            "(e.g. batch.to(torch.float64))"
        )


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
    check_model_and_params(model, params)
    check_int("steps", steps, 0)
    check_positive("lr", lr)
    check_loss_fn(loss_fn)
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError("x and y must be torch.Tensors")
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of points (first axis), "
            f"got x {list(x.shape)} and y {list(y.shape)}"
        )
    check_data_dtype(params, x, "x")
    probe_loss(model, params, x, y, loss_fn, "the task's points")
    return inner_loop(model, params, x, y, steps, lr, first_order, loss_fn)


class Trajectory(NamedTuple):
    """One task's adaptation, step by step (see :func:`adaptation_trajectory`).

    Attributes
    ----------
    query_losses, support_losses : Tensor
        ``[steps + 1]``: the losses after 0, 1, ..., ``steps`` inner steps.
    query_metrics : Tensor
        ``[steps + 1]`` values of ``metric_fn`` on the query set, or ``[0]`` without one.
    params : dict of str to Tensor
        The parameters after ``steps`` steps.
    """

    query_losses: Tensor
    support_losses: Tensor
    query_metrics: Tensor
    params: Params


def adaptation_trajectory(
    model: nn.Module,
    params: Params,
    support_x: Tensor,
    support_y: Tensor,
    query_x: Tensor,
    query_y: Tensor,
    *,
    steps: int,
    inner_lr: float,
    loss_fn: LossFn = mse_loss,
    metric_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> Trajectory:
    """Adapt to one task by plain gradient descent and record every step.

    The test-time inner loop: what :func:`~metalearn_lib.training.evaluate`,
    the widgets and the experiments run. It is pure and unchecked (wrap it in
    ``torch.func.vmap`` for many tasks), and it does not differentiate through
    the steps (each gradient is detached): it is for measuring, not training.

    Returns
    -------
    Trajectory
        Query and support losses (and ``metric_fn`` values) after 0..``steps``
        steps, and the adapted parameters.
    """
    buffers = dict(model.named_buffers())
    loss_and_grad = grad_and_value(task_loss, argnums=1)
    phi = model_params(params)
    query_losses, support_losses, metrics = [], [], []
    for k in range(steps + 1):
        prediction = functional_call(model, (phi, buffers), (query_x,))
        query_losses.append(loss_fn(prediction, query_y))
        if metric_fn is not None:
            value = torch.as_tensor(metric_fn(prediction, query_y))
            metrics.append(value.to(query_losses[-1].dtype))
        if k < steps:
            g, support_loss = loss_and_grad(model, phi, support_x, support_y, loss_fn)
            phi = {n: p - inner_lr * g[n].detach() for n, p in phi.items()}
        else:
            support_loss = task_loss(model, phi, support_x, support_y, loss_fn)
        support_losses.append(support_loss.detach())
    stacked_metrics = torch.stack(metrics) if metrics else query_losses[0].new_zeros(0)
    return Trajectory(
        torch.stack(query_losses).detach(),
        torch.stack(support_losses),
        stacked_metrics.detach(),
        {n: p.detach() for n, p in phi.items()},
    )
