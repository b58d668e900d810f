r"""iMAML, ANIL, Meta-SGD and MAML++: the variants built to answer MAML's limits.

Each is one direction function in the registry of :mod:`metalearn_lib.algorithms`
(registered when that module is imported), with its own test-time adaptation,
and a loop twin in :mod:`metalearn_lib.reference`. Notation as there:
:math:`\theta` the meta-parameters, :math:`S, Q` a task's support and query
sets, :math:`k` inner steps, :math:`\alpha` the inner learning rate.

* **iMAML** (Rajeswaran et al. 2019, ``"imaml"``; options ``lam``,
  ``cg_steps``). The inner loop solves the *proximal* problem
  :math:`\phi = \arg\min L_S(\phi) + \frac\lambda2 \|\phi - \theta\|^2`
  (approximately, by ``k`` steps of gradient descent from :math:`\theta`), and
  the meta-gradient comes from the implicit function theorem,
  :math:`g = (I + H_S(\phi)/\lambda)^{-1} \nabla L_Q(\phi)`, solved by
  ``cg_steps`` iterations of conjugate gradient on Hessian-vector products.
  No graph is kept through the inner loop: memory does not grow with ``k``.
* **ANIL** (Raghu et al. 2020, ``"anil"``; option ``head``). MAML whose inner
  loop adapts only the head (by default the module owning the model's last
  parameter: ``net.4`` of the MLP, ``head`` of the ConvNet); the body is fixed
  inside the loop and meta-learned outside it.
* **Meta-SGD** (Li et al. 2017, ``"metasgd"``; option ``init_lr``, where the
  rates start: by default the run's ``inner_lr``). One learned
  inner rate per parameter entry, ``params["meta.lr.<name>"]`` (shaped like
  the parameter), meta-learned beside :math:`\theta`:
  :math:`\phi \leftarrow \phi - \alpha_{\text{learned}} \odot \nabla L_S(\phi)`.
* **MAML++** (Antoniou et al. 2019, ``"mamlpp"``; options ``step_weights``,
  ``learn_rates``, ``init_lr``, ``rate_steps``). The multi-step loss
  :math:`\sum_j w_j L_Q(\phi^{(j)})` over the inner steps, with weights that
  :class:`AnnealedStepWeights` moves from uniform to the last step, and
  learned per-layer per-step inner rates ``params["meta.step_lr.<name>"]``
  (shape ``[rate_steps]``; step ``j`` uses entry ``min(j, rate_steps - 1)``).
  Its other tricks (per-step batch norm, cosine annealing of the outer rate,
  derivative-order annealing) are left out.

Learned rates live in the params dict (see ``with_meta_params``), so
``meta_train`` adds them at the start and updates them like :math:`\theta`.
Where a learned-rate algorithm finds no rates in ``params`` (a plain
``parameters_of(model)``), it uses ``inner_lr`` for every rate and returns
directions only for the entries ``params`` has. Otherwise the learned rates
replace ``inner_lr``, in training and in ``evaluate(..., algorithm=...)``.
Rates given to an algorithm that has none are a ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, grad_and_value, vmap

from .adaptation import Trajectory, model_params, task_loss
from .algorithms import register_algorithm
from .checks import (
    META_PREFIX,
    LossFn,
    Params,
    check_bool,
    check_int,
    check_positive,
    flatten,
    unflatten,
)
from .tasks import TaskBatch

__all__ = [
    "AnnealedStepWeights",
    "anil_direction",
    "conjugate_gradient",
    "head_names",
    "imaml_direction",
    "mamlpp_direction",
    "metasgd_direction",
    "proximal_inner_loop",
    "rate_name",
    "step_rate_name",
]

SGD_RATE_PREFIX = META_PREFIX + "lr."
STEP_RATE_PREFIX = META_PREFIX + "step_lr."


def rate_name(name: str) -> str:
    """Where Meta-SGD keeps the learned rates of parameter ``name``: ``"meta.lr.<name>"``."""
    return SGD_RATE_PREFIX + name


def step_rate_name(name: str) -> str:
    """Where MAML++ keeps the per-step rates of parameter ``name``: ``"meta.step_lr.<name>"``."""
    return STEP_RATE_PREFIX + name


# ---------------------------------------------------------------------------
# Option checks (plain Python, run on every call: they cost nothing).
# ---------------------------------------------------------------------------


def _reject_meta_entries(algorithm: str, params: Params, allowed: Sequence[str] = ()) -> None:
    """A ValueError if ``params`` holds meta-parameters (e.g. learned rates) ``algorithm`` lacks."""
    extra = [n for n in params if n.startswith(META_PREFIX) and n not in allowed]
    if extra:
        raise ValueError(
            f"{algorithm} has no meta-parameters such as {extra[:3]} (learned rates belong to "
            "metasgd or mamlpp); pass the model's parameters only, e.g. model_params(params)"
        )


def _check_rates(algorithm: str, params: Params, wanted: dict[str, tuple]) -> bool:
    """True if ``params`` holds all learned rates ``wanted`` (name -> shape), False if none."""
    present = [n for n in wanted if n in params]
    _reject_meta_entries(algorithm, params, allowed=list(wanted))
    if present and len(present) != len(wanted):
        missing = sorted(set(wanted) - set(present))
        raise ValueError(f"{algorithm}: params has some learned rates but not {missing[:3]}")
    for n in present:
        if tuple(params[n].shape) != wanted[n]:
            raise ValueError(
                f"{algorithm}: params[{n!r}] has shape {list(params[n].shape)}, "
                f"expected {list(wanted[n])}"
            )
    return bool(present)


def head_names(model: nn.Module, head: str | None = None) -> list[str]:
    """The parameter names of ANIL's head: ``head`` itself or those under ``head + "."``.

    Parameters
    ----------
    model : nn.Module
        The network.
    head : str, optional
        A module (or parameter) name such as ``"head"`` (ConvNet) or
        ``"net.4"`` (the last layer of the default MLP). ``None``: the module
        that owns the model's last parameter.

    Returns
    -------
    list of str
        The head's parameter names in the model's order; a ValueError if none.
    """
    names = [n for n, _ in model.named_parameters()]
    if not names:
        raise ValueError("the model has no parameters, so ANIL has no head to adapt")
    if head is None:
        head = names[-1].rsplit(".", 1)[0] if "." in names[-1] else names[-1]
    if not isinstance(head, str):
        raise TypeError(f"head must be a module name (str) or None, got {head!r}")
    chosen = [n for n in names if n == head or n.startswith(head + ".")]
    if not chosen:
        raise ValueError(f"head={head!r} names no parameter of the model; its parameters: {names}")
    return chosen


def _check_imaml(lam: object, cg_steps: object) -> float:
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not lam > 0:
        raise ValueError(f"lam (iMAML's regularization strength) must be a number > 0, got {lam!r}")
    if isinstance(cg_steps, bool) or not isinstance(cg_steps, int) or cg_steps < 1:
        raise ValueError(
            f"cg_steps (conjugate-gradient iterations) must be an int >= 1, got {cg_steps!r}"
        )
    return float(lam)


# ---------------------------------------------------------------------------
# iMAML.
# ---------------------------------------------------------------------------


def proximal_inner_loop(
    model: nn.Module,
    theta: Params,
    x: Tensor,
    y: Tensor,
    steps: int,
    lr: float,
    lam: float,
    loss_fn: LossFn,
) -> Params:
    """``steps`` gradient steps on ``L(phi) + lam/2 |phi - theta|^2`` from theta, detached."""
    loss_grad = grad(task_loss, argnums=1)
    phi = {n: p.detach() for n, p in theta.items()}
    for _ in range(steps):
        g = loss_grad(model, phi, x, y, loss_fn)
        # No graph through the loop: iMAML differentiates the solution implicitly.
        phi = {n: p - lr * (g[n].detach() + lam * (p - theta[n].detach())) for n, p in phi.items()}
    return phi


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, iterations: int) -> Tensor:
    """Approximately solve ``A x = b`` for symmetric positive-definite ``A`` given as ``matvec``.

    A fixed number of iterations (so it runs under ``vmap``); an exactly
    converged residual stops the updates instead of dividing by zero.
    """
    x = torch.zeros_like(b)
    r, p = b, b
    rs = r @ r
    for _ in range(iterations):
        ap = matvec(p)
        curvature = p @ ap
        alpha = torch.where(curvature > 0, rs / torch.where(curvature > 0, curvature, 1.0), 0.0)
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = r @ r
        beta = torch.where(rs > 0, rs_new / torch.where(rs > 0, rs, 1.0), 0.0)
        p = r + beta * p
        rs = rs_new
    return x


def imaml_direction(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    *,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn,
    lam: float = 1.0,
    cg_steps: int = 5,
) -> tuple[Params, Tensor]:
    """iMAML: ``(I + H_S(phi)/lam)^-1 grad L_Q(phi)`` by conjugate gradient, averaged over tasks."""
    lam = _check_imaml(lam, cg_steps)
    _reject_meta_entries("imaml", params)
    theta = {n: p.detach() for n, p in params.items()}
    support_grad = grad(task_loss, argnums=1)

    def one_task(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Tensor, Tensor]:
        phi = proximal_inner_loop(model, theta, sx, sy, inner_steps, inner_lr, lam, loss_fn)
        query_grad, query_loss = grad_and_value(task_loss, argnums=1)(model, phi, qx, qy, loss_fn)

        def matvec(v: Tensor) -> Tensor:
            tangent = unflatten(v, phi)

            def directional_slope(p: Params) -> Tensor:
                g = support_grad(model, p, sx, sy, loss_fn)
                return sum((g[n] * tangent[n]).sum() for n in g)

            # Hessian-vector product: the gradient of (gradient . v).
            return v + flatten(grad(directional_slope)(phi)) / lam

        solution = conjugate_gradient(matvec, flatten(query_grad), cg_steps)
        return solution.detach(), query_loss.detach()

    data = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
    solutions, losses = vmap(one_task)(*data)
    return unflatten(solutions.mean(dim=0), theta), losses.mean()


# ---------------------------------------------------------------------------
# ANIL.
# ---------------------------------------------------------------------------


def anil_direction(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    *,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn,
    head: str | None = None,
) -> tuple[Params, Tensor]:
    """ANIL: MAML whose inner loop adapts only the head; the body is learned in the outer loop."""
    _reject_meta_entries("anil", params)
    head_keys = head_names(model, head)

    def mean_query_loss(theta: Params) -> Tensor:
        body = {n: p for n, p in theta.items() if n not in head_keys}

        def support_loss(fast: Params, x: Tensor, y: Tensor) -> Tensor:
            return task_loss(model, body | fast, x, y, loss_fn)

        def one_task(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
            fast = {n: theta[n] for n in head_keys}
            for _ in range(inner_steps):
                g = grad(support_loss)(fast, sx, sy)
                fast = {n: w - inner_lr * g[n] for n, w in fast.items()}
            return support_loss(fast, qx, qy)

        data = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
        return vmap(one_task)(*data).mean()

    return grad_and_value(mean_query_loss)(params)


# ---------------------------------------------------------------------------
# Meta-SGD and MAML++: learned inner rates.
# ---------------------------------------------------------------------------


def _sgd_rates(model: nn.Module, params: Params, inner_lr: float) -> tuple[Params, bool]:
    """Meta-SGD's rates from ``params``, or ``inner_lr`` everywhere if params has none."""
    weights = model_params(params)
    wanted = {rate_name(n): tuple(p.shape) for n, p in weights.items()}
    if _check_rates("metasgd", params, wanted):
        return {n: params[rate_name(n)] for n in weights}, True
    return {n: torch.full_like(p.detach(), inner_lr) for n, p in weights.items()}, False


def _start_rate(init_lr: float | None, inner_lr: float) -> float:
    """Where learned rates start: ``init_lr`` if given, else the run's ``inner_lr``."""
    if init_lr is None:
        return check_positive("inner_lr", inner_lr)
    return check_positive("init_lr", init_lr)


def init_sgd_rates(
    model: nn.Module, params: Params, *, init_lr: float | None = None, inner_lr: float = 0.01
) -> Params:
    """Meta-SGD's starting rates: ``init_lr`` (default: the run's ``inner_lr``) everywhere."""
    rate = _start_rate(init_lr, inner_lr)
    return {rate_name(n): torch.full_like(p.detach(), rate) for n, p in params.items()}


def metasgd_direction(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    *,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn,
    init_lr: float | None = None,
) -> tuple[Params, Tensor]:
    """Meta-SGD: MAML with a learned rate per parameter entry; differentiates theta and rates."""
    rates, _ = _sgd_rates(model, params, inner_lr)
    weights = model_params(params)
    step_grad = grad(task_loss, argnums=1)

    def mean_query_loss(theta: Params, lr: Params) -> Tensor:
        def one_task(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
            phi = theta
            for _ in range(inner_steps):
                g = step_grad(model, phi, sx, sy, loss_fn)
                phi = {n: p - lr[n] * g[n] for n, p in phi.items()}
            return task_loss(model, phi, qx, qy, loss_fn)

        data = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
        return vmap(one_task)(*data).mean()

    (g_theta, g_rates), loss = grad_and_value(mean_query_loss, argnums=(0, 1))(weights, rates)
    every = g_theta | {rate_name(n): g for n, g in g_rates.items()}
    return {n: every[n] for n in params}, loss


class AnnealedStepWeights:
    """MAML++'s multi-step loss weights, annealed from uniform to the last step only.

    Pass one fresh instance per training run as ``options={"step_weights": ...}``.
    Each call (one per meta-update) returns the weights of steps ``1..k`` and
    moves on: after ``iterations`` calls all weight is on the last step.

    Parameters
    ----------
    iterations : int
        Meta-updates over which the weights move (>= 1).
    """

    def __init__(self, iterations: int) -> None:
        self.iterations = check_int("iterations", iterations, 1)
        self.calls = 0

    def __call__(self, inner_steps: int) -> list[float]:
        done = min(self.calls / self.iterations, 1.0)
        self.calls += 1
        uniform = [1.0 / inner_steps] * inner_steps
        last = [0.0] * (inner_steps - 1) + [1.0]
        return [(1 - done) * u + done * v for u, v in zip(uniform, last)]

    def for_call(self, inner_steps: int) -> list[float]:
        """This meta-update's weights (moving on): how ``meta_train`` asks, once per update.

        ``meta_train`` turns them into a tensor, so that a compiled meta-step
        takes them as an input instead of freezing the first ones.
        """
        return self(inner_steps)

    def __repr__(self) -> str:
        return f"AnnealedStepWeights(iterations={self.iterations}, calls={self.calls})"


def _step_weights(step_weights: object, inner_steps: int) -> list[float] | Tensor:
    """The multi-step loss weights of steps 1..k (``None``: uniform).

    A tensor (what ``meta_train`` makes of :class:`AnnealedStepWeights` each
    update) is only checked for its length: its values may be traced.
    """
    if inner_steps == 0:
        return []
    if step_weights is None:
        return [1.0 / inner_steps] * inner_steps
    if isinstance(step_weights, Tensor):
        if step_weights.shape != (inner_steps,):
            raise ValueError(
                f"step_weights must give {inner_steps} weights (one per inner step), "
                f"got a tensor of shape {list(step_weights.shape)}"
            )
        return step_weights
    weights = step_weights(inner_steps) if callable(step_weights) else step_weights
    try:
        weights = [float(w) for w in weights]
    except (TypeError, ValueError):
        raise TypeError(
            f"step_weights must be None, a sequence of {inner_steps} numbers, or "
            f"AnnealedStepWeights(...), got {step_weights!r}"
        ) from None
    if len(weights) != inner_steps or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(
            f"step_weights must give {inner_steps} non-negative weights (one per inner step, "
            f"not all zero), got {weights}"
        )
    return weights


def init_step_rates(
    model: nn.Module,
    params: Params,
    *,
    step_weights: object = None,
    learn_rates: bool = True,
    init_lr: float | None = None,
    rate_steps: int = 5,
    inner_lr: float = 0.01,
) -> Params:
    """MAML++'s starting per-layer per-step rates: ``init_lr`` (default: the run's
    ``inner_lr``) for each of ``rate_steps`` steps."""
    if not check_bool("learn_rates", learn_rates):
        return {}
    rate = _start_rate(init_lr, inner_lr)
    check_int("rate_steps", rate_steps, 1)
    dtype = next(iter(params.values())).dtype
    return {step_rate_name(n): torch.full((rate_steps,), rate, dtype=dtype) for n in params}


def _step_rates(params: Params, inner_lr: float, learn_rates: bool, rate_steps: int):
    """MAML++'s rates ``{name: [R]}`` from ``params``, or ``inner_lr`` if none are there."""
    weights = model_params(params)
    if not check_bool("learn_rates", learn_rates):
        _reject_meta_entries("mamlpp with learn_rates=False", params)
        return {n: None for n in weights}
    check_int("rate_steps", rate_steps, 1)
    found = [n for n in params if n.startswith(STEP_RATE_PREFIX)]
    size = params[found[0]].shape[0] if found and params[found[0]].dim() == 1 else rate_steps
    wanted = {step_rate_name(n): (size,) for n in weights}
    if _check_rates("mamlpp", params, wanted):
        return {n: params[step_rate_name(n)] for n in weights}
    return {n: None for n in weights}


def _rate_at(rates: Tensor | None, step: int, inner_lr: float):
    return inner_lr if rates is None else rates[min(step, rates.shape[0] - 1)]


def mamlpp_direction(
    model: nn.Module,
    params: Params,
    batch: TaskBatch,
    *,
    inner_steps: int,
    inner_lr: float,
    loss_fn: LossFn,
    step_weights: object = None,
    learn_rates: bool = True,
    init_lr: float | None = None,
    rate_steps: int = 5,
) -> tuple[Params, Tensor]:
    """MAML++: the gradient of the weighted query losses after every inner step.

    Returns the direction and the mean query loss after the *last* step (as
    every algorithm reports), not the weighted multi-step loss.
    """
    weights = _step_weights(step_weights, inner_steps)
    rates = _step_rates(params, inner_lr, learn_rates, rate_steps)
    learned = {n: r for n, r in rates.items() if r is not None}
    step_grad = grad(task_loss, argnums=1)

    def objective(theta: Params, lr: Params) -> tuple[Tensor, Tensor]:
        def one_task(sx, sy, qx, qy):
            phi, total = theta, 0.0
            for j in range(inner_steps):
                g = step_grad(model, phi, sx, sy, loss_fn)
                phi = {n: p - _rate_at(lr.get(n), j, inner_lr) * g[n] for n, p in phi.items()}
                # Known zero weights skip their query loss; a tensor's may change.
                if isinstance(weights, Tensor) or weights[j] > 0:
                    total = total + weights[j] * task_loss(model, phi, qx, qy, loss_fn)
            last = task_loss(model, phi, qx, qy, loss_fn)
            return (last if inner_steps == 0 else total), last.detach()

        data = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
        total, last = vmap(one_task)(*data)
        return total.mean(), last.mean()

    (g_theta, g_rates), loss = grad(objective, argnums=(0, 1), has_aux=True)(
        model_params(params), learned
    )
    every = g_theta | {step_rate_name(n): g for n, g in g_rates.items()}
    return {n: every[n] for n in params}, loss


# ---------------------------------------------------------------------------
# Test-time adaptation: the hooks ``evaluate(..., algorithm=...)`` uses.
# ---------------------------------------------------------------------------


def _record(
    model, start, support_x, support_y, query_x, query_y, steps, update, loss_fn, metric_fn
):
    """Adapt by ``update(step, phi, grad)`` and record losses after 0..steps steps (detached)."""
    buffers = dict(model.named_buffers())
    loss_and_grad = grad_and_value(task_loss, argnums=1)
    phi = start
    query_losses, support_losses, metrics = [], [], []
    for k in range(steps + 1):
        prediction = functional_call(model, (phi, buffers), (query_x,))
        query_losses.append(loss_fn(prediction, query_y).detach())
        if metric_fn is not None:
            value = torch.as_tensor(metric_fn(prediction, query_y))
            metrics.append(value.to(query_losses[-1].dtype).detach())
        g, support_loss = loss_and_grad(model, phi, support_x, support_y, loss_fn)
        support_losses.append(support_loss.detach())
        if k < steps:
            phi = update(k, phi, {n: gi.detach() for n, gi in g.items()})
    stacked_metrics = torch.stack(metrics) if metrics else query_losses[0].new_zeros(0)
    return Trajectory(
        torch.stack(query_losses),
        torch.stack(support_losses),
        stacked_metrics,
        {n: p.detach() for n, p in phi.items()},
    )


def _trajectory_hook(make_update: Callable[..., Callable]) -> Callable[..., Trajectory]:
    """Wrap ``make_update(model, params, inner_lr, **options)`` as an ``adapt_trajectory`` hook."""

    def hook(
        model,
        params,
        support_x,
        support_y,
        query_x,
        query_y,
        *,
        steps,
        inner_lr,
        loss_fn,
        metric_fn=None,
        **options,
    ) -> Trajectory:
        start = {n: p.detach() for n, p in model_params(params).items()}
        update = make_update(model, params, inner_lr, **options)
        return _record(
            model, start, support_x, support_y, query_x, query_y, steps, update, loss_fn, metric_fn
        )

    return hook


def _imaml_update(model, params, inner_lr, *, lam=1.0, cg_steps=5):
    lam = _check_imaml(lam, cg_steps)
    _reject_meta_entries("imaml", params)
    theta = {n: p.detach() for n, p in params.items()}
    return lambda k, phi, g: {
        n: p - inner_lr * (g[n] + lam * (p - theta[n])) for n, p in phi.items()
    }


def _anil_update(model, params, inner_lr, *, head=None):
    _reject_meta_entries("anil", params)
    keys = set(head_names(model, head))
    return lambda k, phi, g: {n: p - inner_lr * g[n] if n in keys else p for n, p in phi.items()}


def _metasgd_update(model, params, inner_lr, *, init_lr=None):
    rates, _ = _sgd_rates(model, params, inner_lr)
    rates = {n: r.detach() for n, r in rates.items()}
    return lambda k, phi, g: {n: p - rates[n] * g[n] for n, p in phi.items()}


def _mamlpp_update(
    model, params, inner_lr, *, step_weights=None, learn_rates=True, init_lr=None, rate_steps=5
):
    rates = _step_rates(params, inner_lr, learn_rates, rate_steps)
    rates = {n: None if r is None else r.detach() for n, r in rates.items()}
    return lambda k, phi, g: {n: p - _rate_at(rates[n], k, inner_lr) * g[n] for n, p in phi.items()}


register_algorithm(
    "imaml", imaml_direction, label="iMAML", adapt_trajectory=_trajectory_hook(_imaml_update)
)
register_algorithm(
    "anil", anil_direction, label="ANIL", adapt_trajectory=_trajectory_hook(_anil_update)
)
register_algorithm(
    "metasgd",
    metasgd_direction,
    label="Meta-SGD",
    init_meta_params=init_sgd_rates,
    adapt_trajectory=_trajectory_hook(_metasgd_update),
)
register_algorithm(
    "mamlpp",
    mamlpp_direction,
    label="MAML++",
    init_meta_params=init_step_rates,
    adapt_trajectory=_trajectory_hook(_mamlpp_update),
)
