r"""Prototypical Networks (Snell et al. 2017): the metric-learning baseline.

No inner loop at all. A network's *body* embeds every image; each class of a
task is represented by the mean embedding of its support images (its
*prototype*), and a query image gets the logits
:math:`-\|f(x) - c_k\|^2` (closest prototype wins). The body is trained
episodically, exactly like MAML's outer loop: sample tasks, classify their
query sets by distance, take a gradient step on the cross-entropy.

With the :class:`~metalearn_lib.models.ConvNet` the body is its ``features``
module (the head is not used), so ProtoNets and MAML compare the same
network body.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap
from tqdm.auto import tqdm

from .checks import Params, check_bool, check_int, check_positive, check_tasks
from .datasets import accuracy
from .training import Evaluation, History, TrainResult

__all__ = [
    "body_params",
    "evaluate_protonet",
    "prototype_logits",
    "prototypes",
    "train_protonet",
]


def body_params(model: nn.Module, params: Params | None = None, body: str = "features") -> Params:
    """The body's entries of ``params`` (default: the model's own), names without the prefix."""
    source = dict(model.named_parameters()) if params is None else params
    if not isinstance(getattr(model, body, None), nn.Module):
        raise ValueError(f"body={body!r} is not a submodule of {type(model).__name__}")
    prefix = body + "."
    chosen = {n[len(prefix) :]: p for n, p in source.items() if n.startswith(prefix)}
    if not chosen:
        raise ValueError(f"body={body!r} names no parameters of {type(model).__name__}")
    return chosen


def prototypes(embeddings: Tensor, labels: Tensor, ways: int) -> Tensor:
    """Mean embedding of each class ``0..ways-1``: ``[ways, dim]`` from ``[n, dim]`` and ``[n]``."""
    # A one-hot matrix by comparison (F.one_hot reads the labels' values: not under vmap).
    one_hot = (labels.unsqueeze(1) == torch.arange(ways)).to(embeddings.dtype)  # [n, ways]
    return (one_hot.T @ embeddings) / one_hot.sum(dim=0).unsqueeze(1)


def prototype_logits(
    module: nn.Module,
    params: Params,
    support_x: Tensor,
    support_y: Tensor,
    query_x: Tensor,
    ways: int,
) -> Tensor:
    """Logits ``-squared distance`` of each query embedding to each class prototype.

    ``module`` is the body (e.g. ``model.features``) run with ``params``. The
    support and query sets are embedded in separate calls (batch statistics
    of each, as MAML's ConvNet sees them).
    """
    buffers = dict(module.named_buffers())
    support = functional_call(module, (params, buffers), (support_x,)).flatten(1)
    query = functional_call(module, (params, buffers), (query_x,)).flatten(1)
    centres = prototypes(support, support_y, ways)
    return -(query.unsqueeze(1) - centres.unsqueeze(0)).pow(2).sum(dim=-1)


def _episode_loss(module, params, sx, sy, qx, qy, ways):
    return F.cross_entropy(prototype_logits(module, params, sx, sy, qx, ways), qy)


def train_protonet(
    model: nn.Module,
    tasks,
    *,
    ways: int = 5,
    shots: int = 1,
    queries: int = 3,
    iterations: int = 800,
    meta_batch_size: int = 8,
    lr: float = 3e-3,
    seed: int = 0,
    body: str = "features",
    progress: bool = True,
) -> TrainResult:
    """Train the body of ``model`` episodically as a Prototypical Network (Adam).

    Returns
    -------
    TrainResult
        ``(params, history)``: the model's full parameter dict with the
        trained body (the head left as it was) and the per-iteration loss.
    """
    for name, value in [
        ("ways", ways),
        ("shots", shots),
        ("queries", queries),
        ("iterations", iterations),
        ("meta_batch_size", meta_batch_size),
    ]:
        check_int(name, value, 1)
    check_positive("lr", lr)
    check_tasks(tasks)
    check_bool("progress", progress)
    module = getattr(model, body, None)
    theta = {
        n: p.detach().clone().requires_grad_(True)
        for n, p in body_params(model, None, body).items()
    }
    optimizer = torch.optim.Adam(list(theta.values()), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    dtype = next(iter(theta.values())).dtype
    history = History(settings=dict(algorithm="protonet", ways=ways, shots=shots, lr=lr, seed=seed))
    loss_and_grad = grad_and_value(
        lambda p, sx, sy, qx, qy: _episode_loss(module, p, sx, sy, qx, qy, ways)
    )
    start = time.perf_counter()
    for iteration in tqdm(range(iterations), desc="PROTONET", disable=not progress, leave=False):
        batch = tasks.sample(
            meta_batch_size, shots, queries, generator=generator, iteration=iteration
        ).to(dtype)
        grads, losses = vmap(loss_and_grad, in_dims=(None, 0, 0, 0, 0))(
            theta, batch.support_x, batch.support_y, batch.query_x, batch.query_y
        )
        optimizer.zero_grad(set_to_none=False)
        for name, p in theta.items():
            p.grad = grads[name].mean(dim=0)
        optimizer.step()
        history.loss.append(losses.mean().item())
        history.elapsed.append(time.perf_counter() - start)
    full = {n: p.detach().clone() for n, p in model.named_parameters()}
    full.update({f"{body}.{n}": p.detach().clone() for n, p in theta.items()})
    return TrainResult(full, history)


def evaluate_protonet(
    model: nn.Module,
    params: Params,
    tasks,
    *,
    ways: int = 5,
    num_tasks: int = 600,
    shots: int = 1,
    queries: int = 5,
    seed: int = 12345,
    body: str = "features",
    chunk_size: int = 200,
) -> Evaluation:
    """Query loss and accuracy on fresh episodes (no adaptation steps: ``steps == (0,)``).

    The episodes are sampled ``chunk_size`` at a time, as
    :func:`~metalearn_lib.training.evaluate` samples them.
    """
    for name, value in [
        ("ways", ways),
        ("num_tasks", num_tasks),
        ("shots", shots),
        ("queries", queries),
        ("chunk_size", chunk_size),
    ]:
        check_int(name, value, 1)
    check_tasks(tasks)
    module = getattr(model, body, None)
    theta = {n: p.detach() for n, p in body_params(model, params, body).items()}
    dtype = next(iter(theta.values())).dtype
    generator = torch.Generator().manual_seed(seed)

    def judge(sx, sy, qx, qy):
        logits = prototype_logits(module, theta, sx, sy, qx, ways)
        return F.cross_entropy(logits, qy), accuracy(logits, qy)

    losses, accuracies, done = [], [], 0
    with torch.no_grad():
        while done < num_tasks:
            n = min(chunk_size, num_tasks - done)
            batch = tasks.sample(n, shots, queries, generator=generator).to(dtype)
            loss, acc = vmap(judge)(batch.support_x, batch.support_y, batch.query_x, batch.query_y)
            losses.append(loss)
            accuracies.append(acc.to(loss.dtype))
            done += n
    return Evaluation((0,), torch.cat(losses).unsqueeze(0), torch.cat(accuracies).unsqueeze(0))
