"""Meta-training, the pretrain-on-all-tasks baseline, and evaluation.

* :func:`meta_train` runs the outer loop of MAML, FOMAML or Reptile.
* :func:`pretrain` is the baseline of the MAML paper: one network trained on
  points from all tasks at once, then fine-tuned at test time like the others.
* :func:`evaluate` measures what matters for few-shot learning: the query
  loss on *fresh* tasks after 0, 1, 5, ... steps of adaptation on K points,
  as a mean with a 95% confidence interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import torch
from torch import Tensor, nn
from torch.func import vmap
from tqdm.auto import tqdm

from .algorithms import (
    check_algorithm,
    check_meta_arguments,
    check_options,
    mse_loss,
    task_loss,
    trajectory_of,
    with_meta_params,
)
from .checks import (
    LossFn,
    Params,
    check_bool,
    check_callable,
    check_choice,
    check_int,
    check_model_and_params,
    check_positive,
    check_tasks,
    ci95,
)
from .compiled import MetaStep, check_compile, tell_once
from .models import parameters_of
from .tasks import TaskBatch

__all__ = [
    "META_OPTIMIZERS",
    "Evaluation",
    "History",
    "TrainResult",
    "evaluate",
    "linear_decay",
    "meta_train",
    "pretrain",
]

#: The outer optimizers ``meta_train`` knows by name (it also takes a factory).
META_OPTIMIZERS = ("adam", "sgd")
OptimizerFactory = Callable[..., torch.optim.Optimizer]


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
    compile_seconds : float
        Time spent compiling the meta-step in this run (0 when it ran eagerly).
    """

    loss: list[float] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    compile_seconds: float = 0.0

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


def _start_params(model: nn.Module, params: Params | None) -> Params:
    if params is None:
        return parameters_of(model)
    check_model_and_params(model, params)
    return {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}


def _make_optimizer(
    choice: str | OptimizerFactory, params: Params, lr: float
) -> torch.optim.Optimizer:
    """``"adam"``, ``"sgd"``, or ``factory(tensors, lr=lr)`` such as ``torch.optim.RMSprop``."""
    check_positive("meta_lr", lr)
    if callable(choice):
        optimizer = choice(list(params.values()), lr=lr)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                "meta_optimizer must return a torch.optim.Optimizer when called as "
                f"meta_optimizer(params, lr=meta_lr), got {type(optimizer).__name__}"
            )
        return optimizer
    check_choice("meta_optimizer", choice, META_OPTIMIZERS)
    optimizer_class = torch.optim.Adam if choice == "adam" else torch.optim.SGD
    return optimizer_class(list(params.values()), lr=lr)


def _fused_twin(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The same Adam or SGD, state and all, as one fused kernel per step.

    Next to a compiled meta-step the optimizer's per-tensor Python loop is a
    fifth of an iteration; the fused kernel does the same arithmetic in one
    call (it rounds differently, about 1e-7 relative, so eager runs keep the
    plain one and their numbers).
    """
    state = optimizer.state_dict()
    for group in state["param_groups"]:
        group.update(fused=True, foreach=None)
    twin = type(optimizer)(optimizer.param_groups[0]["params"], fused=True)
    twin.load_state_dict(state)
    return twin


def linear_decay(iterations: int) -> Callable[[int], float]:
    """Schedule for ``meta_train(schedule=...)``: factor ``1 - iteration / iterations``.

    Reptile's outer step size in Nichol et al. (2018): epsilon falls linearly
    from ``meta_lr`` to 0 over the run.
    """
    check_int("iterations", iterations, 1)

    def factor(iteration: int) -> float:
        return 1 - iteration / iterations

    return factor


def _sample(tasks, n, shots, queries, generator, iteration, like: Tensor) -> TaskBatch:
    """Sample on the CPU generator, then follow the parameters' dtype and device."""
    batch = tasks.sample(n, shots, queries, generator=generator, iteration=iteration)
    return batch.to(like.dtype, like.device)


def meta_train(
    model: nn.Module,
    tasks: TaskSource,
    *,
    algorithm: str = "maml",
    inner_steps: int = 1,
    inner_lr: float = 0.01,
    meta_optimizer: str | OptimizerFactory = "adam",
    meta_lr: float = 1e-3,
    schedule: Callable[[int], float] | None = None,
    meta_batch_size: int = 25,
    shots: int = 10,
    queries: int = 10,
    iterations: int = 1000,
    seed: int = 0,
    params: Params | None = None,
    loss_fn: LossFn = mse_loss,
    options: Mapping[str, object] | None = None,
    progress: bool = True,
    callback: Callable[[int, Params], object] | None = None,
    compile: bool | None = None,
) -> TrainResult:
    """Meta-train ``model``'s initialization with a registered algorithm.

    Each iteration samples ``meta_batch_size`` tasks, computes the
    algorithm's direction (its entry in
    :data:`~metalearn_lib.algorithms.DIRECTIONS`), and hands it to the
    meta-optimizer as the gradient of theta. Arguments are checked, and the
    model probed on real data, once per run: on the first batch.

    Parameters
    ----------
    model : nn.Module
        The network; its own parameters are not modified.
    tasks : task distribution
        E.g. ``SinusoidTasks()``; sampled with ``iteration`` = the current
        iteration, so non-stationary distributions drift.
    algorithm : str
        A name from :data:`~metalearn_lib.algorithms.ALGORITHMS`
        (``"maml"``, ``"fomaml"``, ``"reptile"``, or one registered at run time).
    inner_steps, inner_lr :
        Inner loop: number of steps (>= 0) and learning rate (> 0).
    meta_optimizer : {"adam", "sgd"} or callable
        Outer optimizer, or a factory called as ``meta_optimizer(list_of_tensors,
        lr=meta_lr)`` (e.g. ``torch.optim.RMSprop``). With ``"sgd"`` and
        Reptile, ``meta_lr`` is Reptile's interpolation step epsilon.
    meta_lr : float
        Outer learning rate.
    schedule : callable, optional
        ``schedule(iteration) -> factor``: the outer learning rate of that
        iteration is ``meta_lr * factor``, e.g. :func:`linear_decay` (Reptile's
        epsilon annealed to 0). ``None`` keeps ``meta_lr`` constant.
    meta_batch_size : int
        Tasks per iteration.
    shots, queries : int
        Support and query points per task.
    iterations : int
        Number of outer updates.
    seed : int
        Seeds the task sampling: the same seed (and start) gives the same run.
    params : dict, optional
        Starting theta; defaults to the model's own parameters (plus the
        algorithm's own meta-parameters, if it has any).
    loss_fn : callable
        Per-task loss, MSE by default.
    options : dict, optional
        The algorithm's own keyword options (none for the built-ins).
    progress : bool
        Show a progress bar (``tqdm.auto``); ``False`` prints nothing.
    callback : callable, optional
        Called as ``callback(done, params)`` after every meta-update, with
        ``done`` the number of updates so far and ``params`` a detached copy
        of the current theta: a place to evaluate or record mid-run without
        restarting the optimizer (or to stop at a deadline). Returning
        ``True`` stops training there. Its time counts in ``history.elapsed``.
    compile : bool or None
        Run the meta-step under ``torch.compile`` (see
        :mod:`metalearn_lib.compiled`). ``None`` (default): automatically,
        only when the run is long enough to pay for compiling (or a step
        compiled earlier for the same configuration can be reused);
        ``True``: always; ``False``: never. Results agree with eager to
        rounding. If compiling is impossible here the run continues eagerly
        and says so once (on stdout with ``progress=True``; always in
        ``history.settings["compile_note"]``).

    Returns
    -------
    TrainResult
        ``(params, history)``: the learned theta (detached) and a :class:`History`.
        ``history.settings["compile"]`` says how the run ended (``"eager"`` or
        ``"compiled"``) and ``history.compile_seconds`` what compiling cost.
    """
    check_algorithm(algorithm)
    options = check_options(algorithm, dict(options or {}))
    check_int("inner_steps", inner_steps, 0)
    check_positive("inner_lr", inner_lr)
    for name, value in [
        ("meta_batch_size", meta_batch_size),
        ("shots", shots),
        ("queries", queries),
        ("iterations", iterations),
    ]:
        check_int(name, value, 1)
    check_tasks(tasks)
    check_bool("progress", progress)
    check_compile(compile)
    if callback is not None:
        check_callable("callback", callback)
    if schedule is not None:
        check_callable("schedule", schedule, "callable(iteration) -> learning-rate factor")
    start_params = parameters_of(model) if params is None else params
    start_params = with_meta_params(algorithm, model, start_params, inner_lr=inner_lr, **options)
    theta = _start_params(model, start_params)
    optimizer = _make_optimizer(meta_optimizer, theta, meta_lr)
    first = next(iter(theta.values()))
    generator = torch.Generator().manual_seed(seed)
    history = History(
        settings=dict(
            algorithm=algorithm,
            inner_steps=inner_steps,
            inner_lr=inner_lr,
            meta_optimizer=meta_optimizer if isinstance(meta_optimizer, str) else "custom",
            meta_lr=meta_lr,
            meta_batch_size=meta_batch_size,
            shots=shots,
            queries=queries,
            iterations=iterations,
            seed=seed,
        )
    )
    step = MetaStep(
        model,
        algorithm,
        inner_steps,
        inner_lr,
        loss_fn,
        options,
        compile=compile,
        iterations=iterations,
        device=first.device,
        notify=tell_once if progress else (lambda message: None),
    )
    fused = False  # switched to the fused optimizer (once the step runs compiled)
    start = time.perf_counter()
    bar = tqdm(range(iterations), desc=algorithm.upper(), disable=not progress, leave=False)
    for iteration in bar:
        batch = _sample(tasks, meta_batch_size, shots, queries, generator, iteration, first)
        if iteration == 0:
            check_meta_arguments(
                model, theta, batch, algorithm, inner_steps, inner_lr, loss_fn, options
            )
        direction, loss = step(theta, batch, iteration)
        if step.mode == "compiled" and not fused and not callable(meta_optimizer):
            optimizer, fused = _fused_twin(optimizer), True
        if schedule is not None:
            factor = schedule(iteration)
            for group in optimizer.param_groups:
                group["lr"] = meta_lr * factor
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
    history.settings["compile"] = step.mode
    history.compile_seconds = step.compile_seconds
    if step.message is not None:
        history.settings["compile_note"] = step.message
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
        check_int(name, value, 1)
    check_tasks(tasks)
    theta = _start_params(model, params)
    optimizer = _make_optimizer("adam", theta, lr)
    first = next(iter(theta.values()))
    generator = torch.Generator().manual_seed(seed)
    history = History(settings=dict(algorithm="pretrain", iterations=iterations, lr=lr, seed=seed))
    start = time.perf_counter()
    bar = tqdm(range(iterations), desc="PRETRAIN", disable=not progress, leave=False)
    for iteration in bar:
        batch = _sample(tasks, batch_size, shots, 1, generator, iteration, first)
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

    @property
    def mean(self) -> list[float]:
        """Mean query loss for each entry of :attr:`steps`."""
        return self.losses.mean(dim=-1).tolist()

    @property
    def ci95(self) -> list[float]:
        """Half-width of the 95% confidence interval of :attr:`mean` (1.96 standard errors)."""
        return ci95(self.losses).tolist()

    @property
    def metric_mean(self) -> list[float] | None:
        return None if self.metrics is None else self.metrics.mean(dim=-1).tolist()

    @property
    def metric_ci95(self) -> list[float] | None:
        return None if self.metrics is None else ci95(self.metrics).tolist()

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
    algorithm: str | None = None,
    options: Mapping[str, object] | None = None,
) -> Evaluation:
    """Query loss on fresh tasks after adapting ``params`` for each number of ``steps``.

    Every task is adapted on its ``shots`` support points by plain gradient
    descent (learning rate ``inner_lr``; one
    :func:`~metalearn_lib.algorithms.adaptation_trajectory` per task) and
    judged on ``queries`` new points.

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
    algorithm : str, optional
        Adapt the way this registered algorithm does at test time (its
        ``adapt_trajectory``); ``None`` or a built-in: plain gradient descent.
    options : dict, optional
        That algorithm's keyword options.

    Returns
    -------
    Evaluation
        Per-task losses with ``.mean`` and ``.ci95`` for each step count.
    """
    check_model_and_params(model, params)
    check_tasks(tasks)
    for name, value in [
        ("num_tasks", num_tasks),
        ("shots", shots),
        ("queries", queries),
        ("chunk_size", chunk_size),
    ]:
        check_int(name, value, 1)
    steps = tuple(steps)
    if not steps or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in steps):
        raise ValueError(f"steps must be a non-empty sequence of ints >= 0, got {steps}")
    check_positive("inner_lr", inner_lr)
    options = {} if options is None else check_options(algorithm, dict(options))
    adapt_and_record = trajectory_of(algorithm)
    theta = {n: p.detach() for n, p in params.items()}
    first = next(iter(theta.values()))
    generator = torch.Generator().manual_seed(seed)
    chosen = list(steps)

    def trajectory(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Tensor, Tensor]:
        path = adapt_and_record(
            model,
            theta,
            sx,
            sy,
            qx,
            qy,
            steps=max(steps),
            inner_lr=inner_lr,
            loss_fn=loss_fn,
            metric_fn=metric_fn,
            **options,
        )
        return path.query_losses, path.query_metrics

    all_losses, all_metrics = [], []
    done = 0
    while done < num_tasks:
        n = min(chunk_size, num_tasks - done)
        batch = _sample(tasks, n, shots, queries, generator, iteration, first)
        losses, metrics = vmap(trajectory)(
            batch.support_x, batch.support_y, batch.query_x, batch.query_y
        )
        all_losses.append(losses.detach()[:, chosen])
        if metric_fn is not None:
            all_metrics.append(metrics.detach()[:, chosen])
        done += n
    losses = torch.cat(all_losses).T.contiguous()
    metrics = torch.cat(all_metrics).T.contiguous() if metric_fn is not None else None
    return Evaluation(steps, losses, metrics)
