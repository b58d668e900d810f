"""Meta-training, the pretrain-on-all-tasks baseline, and evaluation.

* :func:`meta_train` runs the outer loop of MAML, FOMAML or Reptile.
* :func:`pretrain` is the baseline of the MAML paper: one network trained on
  points from all tasks at once, then fine-tuned at test time like the others.
* :func:`evaluate` measures what matters for few-shot learning: the query
  loss on *fresh* tasks after 0, 1, 5, ... steps of adaptation on K points,
  as a mean with a 95% confidence interval.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from tqdm.auto import tqdm

from .algorithms import (
    ALGORITHMS,
    LossFn,
    _check_model_and_params,
    _check_steps_and_lr,
    meta_gradient_and_loss,
    mse_loss,
    task_loss,
)
from .models import parameters_of
from .tasks import TaskBatch

__all__ = ["Evaluation", "History", "TrainResult", "evaluate", "meta_train", "pretrain"]

Params = dict[str, Tensor]
META_OPTIMIZERS = ("adam", "sgd")


class TaskSource(Protocol):
    """Anything that samples task batches, e.g. :class:`~metalearn_lib.tasks.SinusoidTasks`."""

    def sample(
        self, num_tasks: int, shots: int, queries: int | None = None, *, generator, iteration: int
    ) -> TaskBatch: ...


@dataclass
class History:
    """What happened during training.

    Attributes
    ----------
    loss : list of float
        Per iteration: the mean query loss after adaptation (meta-training),
        or the plain regression loss (pretraining).
    elapsed : list of float
        Seconds since the start, after each iteration.
    settings : dict
        The arguments of the run, for labels and reports.
    """

    loss: list[float] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def smoothed(self, window: int = 50) -> list[float]:
        """Running mean of :attr:`loss` over ``window`` iterations, for plots."""
        out, total = [], 0.0
        for i, value in enumerate(self.loss):
            total += value
            if i >= window:
                total -= self.loss[i - window]
            out.append(total / min(i + 1, window))
        return out


class TrainResult(NamedTuple):
    """``params, history = meta_train(...)``."""

    params: Params
    history: History


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_tasks(tasks) -> None:
    if not callable(getattr(tasks, "sample", None)):
        raise TypeError(
            "tasks must be a task distribution with a .sample(num_tasks, shots, queries, "
            f"generator=..., iteration=...) method, got {type(tasks).__name__}"
        )


def _start_params(model: nn.Module, params: Params | None) -> Params:
    if params is None:
        return parameters_of(model)
    _check_model_and_params(model, params)
    return {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}


def _make_optimizer(name: str, params: Params, lr: float) -> torch.optim.Optimizer:
    if name not in META_OPTIMIZERS:
        raise ValueError(f"meta_optimizer must be one of {META_OPTIMIZERS}, got {name!r}")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"meta_lr must be a positive finite number, got {lr!r}")
    optimizer = torch.optim.Adam if name == "adam" else torch.optim.SGD
    return optimizer(list(params.values()), lr=lr)


def _sample(tasks, n, shots, queries, generator, iteration, dtype) -> TaskBatch:
    batch = tasks.sample(n, shots, queries, generator=generator, iteration=iteration)
    return batch.to(dtype)


def meta_train(
    model: nn.Module,
    tasks: TaskSource,
    *,
    algorithm: str = "maml",
    inner_steps: int = 1,
    inner_lr: float = 0.01,
    meta_optimizer: str = "adam",
    meta_lr: float = 1e-3,
    meta_batch_size: int = 25,
    shots: int = 10,
    queries: int = 10,
    iterations: int = 1000,
    seed: int = 0,
    params: Params | None = None,
    loss_fn: LossFn = mse_loss,
    progress: bool = True,
    callback: Callable[[int, Params], object] | None = None,
) -> TrainResult:
    """Meta-train ``model``'s initialization with MAML, FOMAML or Reptile.

    Each iteration samples ``meta_batch_size`` tasks, computes the
    algorithm's direction with
    :func:`~metalearn_lib.algorithms.meta_gradient_and_loss`, and hands it to
    the meta-optimizer as the gradient of theta.

    Parameters
    ----------
    model : nn.Module
        The network; its own parameters are not modified.
    tasks : task distribution
        E.g. ``SinusoidTasks()``; sampled with ``iteration`` = the current
        iteration, so non-stationary distributions drift.
    algorithm : {"maml", "fomaml", "reptile"}
    inner_steps, inner_lr :
        Inner loop: number of steps (>= 0) and learning rate (> 0).
    meta_optimizer : {"adam", "sgd"}
        Outer optimizer; with ``"sgd"`` and Reptile, ``meta_lr`` is Reptile's
        interpolation step epsilon.
    meta_lr : float
        Outer learning rate.
    meta_batch_size : int
        Tasks per iteration.
    shots, queries : int
        Support and query points per task.
    iterations : int
        Number of outer updates.
    seed : int
        Seeds the task sampling: the same seed (and start) gives the same run.
    params : dict, optional
        Starting theta; defaults to the model's own parameters.
    loss_fn : callable
        Per-task loss, MSE by default.
    progress : bool
        Show a progress bar (``tqdm.auto``); ``False`` prints nothing.
    callback : callable, optional
        Called as ``callback(done, params)`` after every meta-update, with
        ``done`` the number of updates so far and ``params`` a detached copy
        of the current theta: a place to evaluate or record mid-run without
        restarting the optimizer. Returning ``True`` stops training there.
        Its time counts in ``history.elapsed``.

    Returns
    -------
    TrainResult
        ``(params, history)``: the learned theta (detached) and a :class:`History`.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    _check_steps_and_lr(inner_steps, inner_lr, "inner_steps", "inner_lr")
    for name, value in [
        ("meta_batch_size", meta_batch_size),
        ("shots", shots),
        ("queries", queries),
        ("iterations", iterations),
    ]:
        _check_positive_int(name, value)
    _check_tasks(tasks)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    theta = _start_params(model, params)
    optimizer = _make_optimizer(meta_optimizer, theta, meta_lr)
    dtype = next(iter(theta.values())).dtype
    generator = torch.Generator().manual_seed(seed)
    history = History(
        settings=dict(
            algorithm=algorithm,
            inner_steps=inner_steps,
            inner_lr=inner_lr,
            meta_optimizer=meta_optimizer,
            meta_lr=meta_lr,
            meta_batch_size=meta_batch_size,
            shots=shots,
            queries=queries,
            iterations=iterations,
            seed=seed,
        )
    )
    start = time.perf_counter()
    bar = tqdm(range(iterations), desc=algorithm.upper(), disable=not progress, leave=False)
    for iteration in bar:
        batch = _sample(tasks, meta_batch_size, shots, queries, generator, iteration, dtype)
        direction, loss = meta_gradient_and_loss(
            model,
            theta,
            batch,
            algorithm=algorithm,
            inner_steps=inner_steps,
            inner_lr=inner_lr,
            loss_fn=loss_fn,
        )
        optimizer.zero_grad(set_to_none=False)
        for name, p in theta.items():
            p.grad = direction[name]
        optimizer.step()
        history.loss.append(loss.item())
        history.elapsed.append(time.perf_counter() - start)
        if progress and iteration % 50 == 0:
            bar.set_postfix(query_loss=f"{history.smoothed()[-1]:.3f}")
        if callback is not None and callback(iteration + 1, _detached(theta)) is True:
            break
    bar.close()
    return TrainResult(_detached(theta), history)


def _detached(params: Params) -> Params:
    return {n: p.detach().clone() for n, p in params.items()}


def pretrain(
    model: nn.Module,
    tasks: TaskSource,
    *,
    iterations: int = 1000,
    batch_size: int = 25,
    shots: int = 10,
    lr: float = 1e-3,
    seed: int = 0,
    params: Params | None = None,
    loss_fn: LossFn = mse_loss,
    progress: bool = True,
) -> TrainResult:
    """The baseline: ordinary training on points pooled from all tasks.

    Each iteration samples ``batch_size`` tasks with ``shots`` points each and
    takes one Adam step on the mean loss over all of them. At test time the
    result is fine-tuned on a new task exactly like a meta-learned
    initialization (see :func:`evaluate`). On the paper's sinusoids this
    network learns the *average* task, about ``-1.62 cos(x)`` (the mean
    amplitude 2.55 times the phase average ``-2 cos(x) / pi``): one curve,
    far from most tasks, and not a start from which a few steps reach them.

    Returns
    -------
    TrainResult
        ``(params, history)``.
    """
    for name, value in [("iterations", iterations), ("batch_size", batch_size), ("shots", shots)]:
        _check_positive_int(name, value)
    _check_tasks(tasks)
    theta = _start_params(model, params)
    optimizer = _make_optimizer("adam", theta, lr)
    dtype = next(iter(theta.values())).dtype
    generator = torch.Generator().manual_seed(seed)
    history = History(settings=dict(algorithm="pretrain", iterations=iterations, lr=lr, seed=seed))
    start = time.perf_counter()
    bar = tqdm(range(iterations), desc="PRETRAIN", disable=not progress, leave=False)
    for iteration in bar:
        batch = _sample(tasks, batch_size, shots, 1, generator, iteration, dtype)
        loss = vmap(task_loss, in_dims=(None, None, 0, 0, None))(
            model, theta, batch.support_x, batch.support_y, loss_fn
        ).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.loss.append(loss.item())
        history.elapsed.append(time.perf_counter() - start)
    bar.close()
    return TrainResult(_detached(theta), history)


@dataclass
class Evaluation:
    """Post-adaptation performance on fresh tasks.

    Attributes
    ----------
    steps : tuple of int
        Numbers of adaptation steps evaluated.
    losses : Tensor
        ``[len(steps), num_tasks]`` query loss of every task after each step count.
    metrics : Tensor or None
        The same for ``metric_fn`` (e.g. accuracy), if one was given.
    """

    steps: tuple[int, ...]
    losses: Tensor
    metrics: Tensor | None = None

    @staticmethod
    def _ci95(values: Tensor) -> Tensor:
        n = values.shape[-1]
        if n < 2:
            return torch.zeros(values.shape[:-1], dtype=values.dtype)
        return 1.96 * values.std(dim=-1) / math.sqrt(n)

    @property
    def mean(self) -> list[float]:
        """Mean query loss for each entry of :attr:`steps`."""
        return self.losses.mean(dim=-1).tolist()

    @property
    def ci95(self) -> list[float]:
        """Half-width of the 95% confidence interval of :attr:`mean` (1.96 standard errors)."""
        return self._ci95(self.losses).tolist()

    @property
    def metric_mean(self) -> list[float] | None:
        return None if self.metrics is None else self.metrics.mean(dim=-1).tolist()

    @property
    def metric_ci95(self) -> list[float] | None:
        return None if self.metrics is None else self._ci95(self.metrics).tolist()

    def at(self, steps: int) -> tuple[float, float]:
        """``(mean, ci95)`` of the loss after ``steps`` adaptation steps."""
        if steps not in self.steps:
            raise ValueError(f"steps={steps} was not evaluated; evaluated: {self.steps}")
        i = self.steps.index(steps)
        return self.mean[i], self.ci95[i]

    def __str__(self) -> str:
        rows = [f"{'steps':>5}  {'loss':>8}  {'95% CI':>7}"]
        for s, m, c in zip(self.steps, self.mean, self.ci95, strict=True):
            rows.append(f"{s:>5}  {m:>8.3f}  ±{c:>6.3f}")
        return "\n".join(rows)


def evaluate(
    model: nn.Module,
    params: Params,
    tasks: TaskSource,
    *,
    num_tasks: int = 600,
    shots: int = 10,
    queries: int = 100,
    steps: Sequence[int] = (0, 1, 5, 10),
    inner_lr: float = 0.01,
    seed: int = 12345,
    iteration: int = 0,
    loss_fn: LossFn = mse_loss,
    metric_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    chunk_size: int = 200,
) -> Evaluation:
    """Query loss on fresh tasks after adapting ``params`` for each number of ``steps``.

    Every task is adapted on its ``shots`` support points by plain gradient
    descent (learning rate ``inner_lr``) and judged on ``queries`` new points.

    Parameters
    ----------
    num_tasks : int
        Number of fresh tasks (the MAML paper uses 600).
    steps : sequence of int
        Step counts to report, e.g. ``(0, 1, 5, 10)``; 0 is the unadapted model.
    seed : int
        Seeds the test tasks: with the same seed every model sees the same tasks.
    iteration : int
        Passed to ``tasks.sample``: for a drifting distribution, *when* in
        meta-training the test tasks come from.
    metric_fn : callable, optional
        ``metric_fn(prediction, target) -> scalar`` recorded beside the loss
        (e.g. accuracy for classification).
    chunk_size : int
        Tasks processed at once (bounds memory).

    Returns
    -------
    Evaluation
        Per-task losses with ``.mean`` and ``.ci95`` for each step count.
    """
    _check_model_and_params(model, params)
    _check_tasks(tasks)
    for name, value in [
        ("num_tasks", num_tasks),
        ("shots", shots),
        ("queries", queries),
        ("chunk_size", chunk_size),
    ]:
        _check_positive_int(name, value)
    steps = tuple(steps)
    if not steps or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in steps):
        raise ValueError(f"steps must be a non-empty sequence of ints >= 0, got {steps}")
    _check_steps_and_lr(max(steps), inner_lr, "steps", "inner_lr")
    theta = {n: p.detach() for n, p in params.items()}
    dtype = next(iter(theta.values())).dtype
    generator = torch.Generator().manual_seed(seed)
    buffers = dict(model.named_buffers())

    def trajectory(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Tensor, Tensor]:
        phi, losses, metrics = theta, [], []
        loss_grad = grad(task_loss, argnums=1)
        for k in range(max(steps) + 1):
            if k in steps:
                prediction = functional_call(model, (phi, buffers), (qx,))
                losses.append(loss_fn(prediction, qy))
                if metric_fn is not None:
                    metrics.append(torch.as_tensor(metric_fn(prediction, qy)).to(dtype))
            if k < max(steps):
                g = loss_grad(model, phi, sx, sy, loss_fn)
                phi = {n: p - inner_lr * g[n].detach() for n, p in phi.items()}
        stacked_metrics = torch.stack(metrics) if metrics else torch.zeros(len(steps))
        return torch.stack(losses), stacked_metrics

    all_losses, all_metrics = [], []
    done = 0
    while done < num_tasks:
        n = min(chunk_size, num_tasks - done)
        batch = _sample(tasks, n, shots, queries, generator, iteration, dtype)
        losses, metrics = vmap(trajectory)(
            batch.support_x, batch.support_y, batch.query_x, batch.query_y
        )
        all_losses.append(losses.detach())
        all_metrics.append(metrics.detach())
        done += n
    losses = torch.cat(all_losses).T.contiguous()
    metrics = torch.cat(all_metrics).T.contiguous() if metric_fn is not None else None
    return Evaluation(steps, losses, metrics)
