"""The same three meta-gradients as a plain per-task Python loop.

This is how most tutorials (and learn2learn) write MAML: one task at a time,
``torch.autograd.grad`` with ``create_graph=True`` so the outer gradient can
flow back through the inner steps. It is deliberately independent of
:mod:`metalearn_lib.algorithms`: the tests check the batched ``torch.func``
version against it, and the benchmarks time the two side by side.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .algorithms import ALGORITHMS, LossFn, mse_loss
from .tasks import TaskBatch

__all__ = ["loop_meta_gradient"]


def loop_meta_gradient(
    model: nn.Module,
    params: dict[str, Tensor],
    batch: TaskBatch,
    *,
    algorithm: str,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn = mse_loss,
) -> dict[str, Tensor]:
    """Per-task loop version of :func:`metalearn_lib.algorithms.meta_gradient`."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    buffers = dict(model.named_buffers())
    names = list(params)
    theta = [params[n].detach().requires_grad_(True) for n in names]
    second_order = algorithm == "maml"

    def loss_at(weights: list[Tensor], x: Tensor, y: Tensor) -> Tensor:
        return loss_fn(functional_call(model, (dict(zip(names, weights)), buffers), (x,)), y)

    total = [torch.zeros_like(t) for t in theta]
    for i in range(batch.num_tasks):
        fast = theta
        for _ in range(inner_steps):
            inner = loss_at(fast, batch.support_x[i], batch.support_y[i])
            grads = torch.autograd.grad(inner, fast, create_graph=second_order)
            # Without create_graph the gradients are constants: first order.
            fast = [w - inner_lr * g for w, g in zip(fast, grads)]
        if algorithm == "reptile":
            contribution = [(t - w).detach() for t, w in zip(theta, fast)]
        else:
            outer = loss_at(fast, batch.query_x[i], batch.query_y[i])
            contribution = torch.autograd.grad(outer, theta)
        total = [s + c for s, c in zip(total, contribution)]
    return {n: s / batch.num_tasks for n, s in zip(names, total)}
