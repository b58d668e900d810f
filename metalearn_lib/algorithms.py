r"""MAML, first-order MAML and Reptile, written close to the maths, and their registry.

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

The registry
------------
:data:`DIRECTIONS` maps each algorithm's name to its *direction function*::

    direction(model, params, batch, *, inner_steps, inner_lr, loss_fn, **options)
        -> (direction, mean_query_loss)

a pure function with no argument checks (they run once, in
:func:`meta_gradient_and_loss` or once per :func:`~metalearn_lib.training.meta_train`
run). :data:`ALGORITHMS` is the live sequence of its names, and
:func:`algorithm_label` gives the name to print ("MAML"). Everything else
(training, evaluation, ``reference``, benchmarks, figures, chapters) reads the
registry, and an unknown name is a ``ValueError`` naming the known ones.

Adding an algorithm is one direction function, its per-task loop twin in
:data:`metalearn_lib.reference.LOOP_DIRECTIONS`, and a test.
:func:`register_algorithm` adds one at run time (a notebook can do it, too).
Room for what comes next:

* **Options of its own** (iMAML's regularization strength, MAML++'s per-step
  loss weights): keyword-only parameters of the direction function. They
  travel as ``meta_gradient(..., lam=2.0)`` or ``meta_train(...,
  options={"lam": 2.0})`` and are checked against its signature once.
* **Meta-parameters beyond the model's** (Meta-SGD's learned inner rates):
  they live in the same params dict under names that start with
  :data:`~metalearn_lib.checks.META_PREFIX` (``"meta."``), so the outer
  optimizer updates them like any other entry. Registering an algorithm with
  ``init_meta_params=f`` makes :func:`with_meta_params` (called by
  ``meta_train`` on its starting point) add ``f(model, params, **options)``'s
  entries. :func:`model_params` strips them again before ``functional_call``.
* **Its own adaptation at test time** (ANIL adapts only the head, Meta-SGD
  uses its learned rates): ``adapt_trajectory=f`` with the signature of
  :func:`adaptation_trajectory`; ``evaluate(..., algorithm=name)`` then uses it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from types import MappingProxyType
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, grad_and_value, vmap

from .checks import (
    META_PREFIX,
    LossFn,
    Params,
    check_callable,
    check_int,
    check_model_and_params,
    check_positive,
)
from .tasks import TaskBatch

__all__ = [
    "ALGORITHMS",
    "DIRECTIONS",
    "Trajectory",
    "adapt",
    "adaptation_trajectory",
    "algorithm_label",
    "check_algorithm",
    "check_meta_arguments",
    "check_options",
    "directions_unchecked",
    "fomaml_direction",
    "inner_loop",
    "maml_direction",
    "meta_gradient",
    "meta_gradient_and_loss",
    "model_params",
    "mse_loss",
    "register_algorithm",
    "reptile_direction",
    "task_loss",
    "trajectory_of",
    "unregister_algorithm",
    "with_meta_params",
]

DirectionFn = Callable[..., tuple[Params, Tensor]]


def mse_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error, the default loss for regression tasks."""
    return F.mse_loss(prediction, target)


# ---------------------------------------------------------------------------
# The inner loop.
# ---------------------------------------------------------------------------


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


def _probe(model: nn.Module, params: Params, x: Tensor, y: Tensor, loss_fn: LossFn, what: str):
    """Run the loss once on real data so shape or loss mistakes surface clearly."""
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


def _check_data_dtype(params: Params, x: Tensor, name: str) -> None:
    dtype = next(iter(params.values())).dtype if params else None
    if x.is_floating_point() and dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name} is {x.dtype} but params are {dtype}; cast one of them "
            "(e.g. batch.to(torch.float64))"
        )


def _check_loss_fn(loss_fn: LossFn) -> None:
    check_callable("loss_fn", loss_fn, "callable(prediction, target) -> scalar")


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


# ---------------------------------------------------------------------------
# The direction functions: one per algorithm, no checks, pure.
# ---------------------------------------------------------------------------


def _adapted_batch(model, theta, batch, inner_steps, inner_lr, first_order, loss_fn) -> Params:
    """Adapt ``theta`` to every task of ``batch`` at once (leading axis of the result: task)."""

    def adapt_one(x: Tensor, y: Tensor) -> Params:
        return inner_loop(model, theta, x, y, inner_steps, inner_lr, first_order, loss_fn)

    return vmap(adapt_one)(batch.support_x, batch.support_y)


def _mean_query_loss(model, phi: Params, batch: TaskBatch, loss_fn: LossFn) -> Tensor:
    def query_loss(p: Params, x: Tensor, y: Tensor) -> Tensor:
        return task_loss(model, p, x, y, loss_fn)

    return vmap(query_loss)(phi, batch.query_x, batch.query_y).mean()


def maml_direction(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    *,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn,
) -> tuple[Params, Tensor]:
    """MAML: the gradient of the mean query loss after adaptation, through the inner steps."""

    def mean_query_loss(theta: Params) -> Tensor:
        phi = _adapted_batch(model, theta, batch, inner_steps, inner_lr, False, loss_fn)
        return _mean_query_loss(model, phi, batch, loss_fn)

    return grad_and_value(mean_query_loss)(params)


def fomaml_direction(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    *,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn,
) -> tuple[Params, Tensor]:
    """FOMAML: the mean query-loss gradient at the adapted parameters (adaptation constant)."""
    phi = _adapted_batch(model, params, batch, inner_steps, inner_lr, True, loss_fn)

    def query_loss(p: Params, x: Tensor, y: Tensor) -> Tensor:
        return task_loss(model, p, x, y, loss_fn)

    per_task, losses = vmap(grad_and_value(query_loss))(phi, batch.query_x, batch.query_y)
    return {name: g.mean(dim=0) for name, g in per_task.items()}, losses.mean()


def reptile_direction(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    *,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn,
) -> tuple[Params, Tensor]:
    """Reptile: theta minus the mean of the parameters adapted on the support sets."""
    phi = _adapted_batch(model, params, batch, inner_steps, inner_lr, True, loss_fn)
    direction = {name: params[name] - phi[name].mean(dim=0) for name in params}
    return direction, _mean_query_loss(model, phi, batch, loss_fn)


# ---------------------------------------------------------------------------
# The registry.
# ---------------------------------------------------------------------------

_DIRECTIONS: dict[str, DirectionFn] = {
    "maml": maml_direction,
    "fomaml": fomaml_direction,
    "reptile": reptile_direction,
}
_LABELS: dict[str, str] = {"maml": "MAML", "fomaml": "FOMAML", "reptile": "Reptile"}
_META_INIT: dict[str, Callable[..., Params]] = {}
_TRAJECTORIES: dict[str, Callable[..., Trajectory]] = {}
_BUILT_IN = frozenset(_DIRECTIONS)

#: The registry: algorithm name -> direction function (read-only view, always current).
DIRECTIONS = MappingProxyType(_DIRECTIONS)


class AlgorithmNames(Sequence):
    """The registered names in registration order: a live, tuple-like view of the registry."""

    def __getitem__(self, index):
        return tuple(_DIRECTIONS)[index]

    def __len__(self) -> int:
        return len(_DIRECTIONS)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_DIRECTIONS))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in _DIRECTIONS

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    __hash__ = None  # mutable view: not hashable

    def __repr__(self) -> str:
        return repr(tuple(self))


#: The algorithms :func:`meta_gradient` knows, e.g. ``("maml", "fomaml", "reptile")``.
ALGORITHMS = AlgorithmNames()


def check_algorithm(name: object) -> str:
    """``name`` if it is a registered algorithm; else a ValueError naming the known ones."""
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {name!r}")
    return name


def algorithm_label(name: str) -> str:
    """How plots and tables print an algorithm: ``"maml"`` -> ``"MAML"``."""
    return _LABELS[check_algorithm(name)]


def register_algorithm(
    name: str,
    direction: DirectionFn,
    *,
    label: str | None = None,
    init_meta_params: Callable[..., Params] | None = None,
    adapt_trajectory: Callable[..., Trajectory] | None = None,
) -> None:
    """Add an algorithm to the registry (see the module docstring for the contract).

    Parameters
    ----------
    name : str
        Lower-case name, e.g. ``"anil"``; must not be registered yet.
    direction : callable
        ``direction(model, params, batch, *, inner_steps, inner_lr, loss_fn, **options)
        -> (direction dict, mean query loss)``, pure and differentiable-free on return.
    label : str, optional
        What plots print; defaults to ``name.upper()``.
    init_meta_params : callable, optional
        ``f(model, params, **options) -> {"meta.<...>": tensor}``: extra
        meta-parameters that :func:`with_meta_params` adds to a starting point.
    adapt_trajectory : callable, optional
        Test-time adaptation with :func:`adaptation_trajectory`'s signature
        (plus the algorithm's options); defaults to plain gradient descent.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if name in _DIRECTIONS:
        raise ValueError(f"algorithm {name!r} is already registered; known: {ALGORITHMS}")
    check_callable("direction", direction, "a direction function")
    for hook_name, hook in [
        ("init_meta_params", init_meta_params),
        ("adapt_trajectory", adapt_trajectory),
    ]:
        if hook is not None:
            check_callable(hook_name, hook)
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a str or None, got {label!r}")
    _DIRECTIONS[name] = direction
    _LABELS[name] = name.upper() if label is None else label
    if init_meta_params is not None:
        _META_INIT[name] = init_meta_params
    if adapt_trajectory is not None:
        _TRAJECTORIES[name] = adapt_trajectory


def unregister_algorithm(name: str) -> None:
    """Remove an algorithm added by :func:`register_algorithm` (built-ins stay)."""
    check_algorithm(name)
    if name in _BUILT_IN:
        raise ValueError(f"{name!r} is built in and cannot be removed")
    for table in (_DIRECTIONS, _LABELS, _META_INIT, _TRAJECTORIES):
        table.pop(name, None)


def check_options(algorithm: str, options: dict) -> dict:
    """Check ``options`` against the keyword-only parameters of the algorithm's direction."""
    direction = DIRECTIONS[check_algorithm(algorithm)]
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    parameters = inspect.signature(direction).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return options
    standard = {"inner_steps", "inner_lr", "loss_fn"}
    accepted = sorted(
        p.name
        for p in parameters
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in standard
    )
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"{algorithm} takes the options {accepted or 'none'}; got unknown {unknown}"
        )
    return options


def with_meta_params(algorithm: str, model: nn.Module, params: Params, **options) -> Params:
    """``params`` plus the algorithm's own meta-parameters if it has any not yet there."""
    init = _META_INIT.get(check_algorithm(algorithm))
    if init is None or any(n.startswith(META_PREFIX) for n in params):
        return params
    extra = init(model, model_params(params), **options)
    bad = [n for n in extra if not n.startswith(META_PREFIX)]
    if bad:
        raise ValueError(
            f"init_meta_params of {algorithm} must name entries {META_PREFIX}*, got {bad}"
        )
    return params | extra


def trajectory_of(algorithm: str | None) -> Callable[..., Trajectory]:
    """The test-time adaptation of ``algorithm`` (plain gradient descent unless it has its own)."""
    if algorithm is None:
        return adaptation_trajectory
    return _TRAJECTORIES.get(check_algorithm(algorithm), adaptation_trajectory)


# ---------------------------------------------------------------------------
# The checked entry points.
# ---------------------------------------------------------------------------


def check_meta_arguments(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    algorithm: str,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn,
    options: dict | None = None,
) -> None:
    """Every check of :func:`meta_gradient`, with probe forward passes on the first task.

    ``meta_train`` calls it once per run (on the first batch), not every iteration.
    """
    check_algorithm(algorithm)
    check_options(algorithm, {} if options is None else options)
    check_model_and_params(model, params)
    check_int("inner_steps", inner_steps, 0)
    check_positive("inner_lr", inner_lr)
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
    compile: bool | None = None,
    **options,
) -> tuple[Params, Tensor]:
    """Like :func:`meta_gradient`, and also the mean query loss after adaptation.

    Returns
    -------
    (dict of str to Tensor, Tensor)
        The meta-gradient and the scalar mean query loss of the adapted
        parameters (the quantity MAML minimises; reported for all algorithms).
    """
    # compiled sits above this module (it compiles these functions): imported on use.
    from .compiled import check_compile, fast_directions

    check_compile(compile)
    check_meta_arguments(model, params, batch, algorithm, inner_steps, inner_lr, loss_fn, options)
    if compile is False:
        return directions_unchecked(
            model, params, batch, algorithm, inner_steps, inner_lr, loss_fn, options
        )
    return fast_directions(
        model, params, batch, algorithm, inner_steps, inner_lr, loss_fn, options, compile
    )


def directions_unchecked(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    algorithm: str,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn,
    options: dict,
) -> tuple[Params, Tensor]:
    """Registry dispatch of :func:`meta_gradient_and_loss` without its checks (trusted callers)."""
    # theta is data here: the result must not hang on to the caller's graph.
    theta = {name: p.detach() for name, p in params.items()}
    direction, loss = DIRECTIONS[algorithm](
        model, theta, batch, inner_steps=inner_steps, inner_lr=inner_lr, loss_fn=loss_fn, **options
    )
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
    compile: bool | None = None,
    **options,
) -> Params:
    """The meta-update direction of a registered algorithm for a batch of tasks.

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
    algorithm : str
        A name from :data:`ALGORITHMS`. Built in:
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
    compile : bool or None
        ``None`` (default): reuse a compiled step of the same configuration
        if one exists (e.g. built by ``meta_train``), else run eagerly: one
        call never pays for compiling. ``True``: compile (once per
        configuration; later calls reuse it; worth it for thousands of
        calls). ``False``: always eager. See :mod:`metalearn_lib.compiled`.
    **options
        The algorithm's own keyword options (none for the built-ins).

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
        compile=compile,
        **options,
    )
    return direction


# Old private names, kept until the teaching layer has moved to the public ones.
_adapt = inner_loop
_check_model_and_params = check_model_and_params

# The variants (iMAML, ANIL, Meta-SGD, MAML++) register themselves on import,
# so the registry always holds them; they live in their own module.
from . import variants as _variants  # noqa: E402, F401
