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

The inner loop itself (:func:`adapt`, :func:`inner_loop`,
:func:`adaptation_trajectory`, :func:`task_loss`) lives in
:mod:`metalearn_lib.adaptation` and is re-exported here.

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
  entries (a hook with an ``inner_lr`` keyword also gets the run's inner
  rate). An algorithm without such a hook refuses ``meta.`` entries with a
  ``ValueError``. :func:`model_params` strips them again before ``functional_call``.
* **Its own adaptation at test time** (ANIL adapts only the head, Meta-SGD
  uses its learned rates): ``adapt_trajectory=f`` with the signature of
  :func:`adaptation_trajectory`; ``evaluate(..., algorithm=name)`` then uses it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from types import MappingProxyType

from torch import Tensor, nn
from torch.func import grad_and_value, vmap

# The inner loop lives in its own module; its public names are re-exported
# here, where the chapters, tests and benchmarks have always imported them.
from .adaptation import (
    Trajectory,
    adapt,
    adaptation_trajectory,
    check_data_dtype,
    inner_loop,
    model_params,
    mse_loss,
    probe_loss,
    task_loss,
)
from .checks import (
    META_PREFIX,
    LossFn,
    Params,
    check_callable,
    check_int,
    check_loss_fn,
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
    "has_meta_params",
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


def has_meta_params(algorithm: str) -> bool:
    """Whether ``algorithm`` has meta-parameters of its own (an ``init_meta_params`` hook)."""
    return check_algorithm(algorithm) in _META_INIT


def with_meta_params(
    algorithm: str,
    model: nn.Module,
    params: Params,
    *,
    inner_lr: float | None = None,
    **options,
) -> Params:
    """``params`` plus the algorithm's own meta-parameters if it has any not yet there.

    Parameters
    ----------
    algorithm : str
        A registered name; without an ``init_meta_params`` hook, ``params`` comes back as is.
    model : nn.Module
        The network (the hook may read its structure).
    params : dict of str to Tensor
        The starting point; if it already holds ``meta.`` entries, it comes back as is.
    inner_lr : float, optional
        The run's inner learning rate. A hook with an ``inner_lr`` keyword gets
        it, so learned rates start where plain gradient descent would
        (Meta-SGD's and MAML++'s do, unless ``init_lr`` is among the options).
    **options
        The algorithm's options, passed on to the hook.
    """
    init = _META_INIT.get(check_algorithm(algorithm))
    if init is None or any(n.startswith(META_PREFIX) for n in params):
        return params
    if inner_lr is not None and "inner_lr" in inspect.signature(init).parameters:
        options = options | {"inner_lr": check_positive("inner_lr", inner_lr)}
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
    extra = sorted(n for n in params if n.startswith(META_PREFIX))
    if extra and not has_meta_params(algorithm):
        raise ValueError(
            f"{algorithm} has no meta-parameters such as {extra[:3]} (params holds "
            f"{len(extra)} 'meta.' entries; learned rates belong to metasgd or mamlpp); "
            "pass the model's parameters only, e.g. model_params(params)"
        )
    check_int("inner_steps", inner_steps, 0)
    check_positive("inner_lr", inner_lr)
    check_loss_fn(loss_fn)
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be a TaskBatch, got {type(batch).__name__}")
    check_data_dtype(params, batch.support_x, "batch.support_x")
    first = (batch.support_x[0], batch.support_y[0], batch.query_x[0], batch.query_y[0])
    probe_loss(model, params, first[0], first[1], loss_fn, "the first support set")
    probe_loss(model, params, first[2], first[3], loss_fn, "the first query set")


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


# The variants (iMAML, ANIL, Meta-SGD, MAML++) register themselves on import,
# so the registry always holds them; they live in their own module.
from . import variants as _variants  # noqa: E402, F401
