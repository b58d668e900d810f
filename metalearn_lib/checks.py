"""Shared types and argument checks of the library.

Every public function checks its arguments up front, so a learner sees a
clear ``TypeError``/``ValueError`` that names the argument and what it
accepts, never a deep torch traceback. The checks live here, once:

* :func:`check_int`, :func:`check_positive`, :func:`check_bool`,
  :func:`check_choice`, :func:`check_callable`, :func:`check_loss_fn` for
  plain arguments;
* :func:`check_model_and_params`, :func:`check_tasks` for the library's
  objects;
* :func:`ci95` (the half-width of a 95% confidence interval) and
  :func:`flatten`/:func:`unflatten` (a parameter dict as one vector), the
  small computations every layer repeats.

Algorithm names are checked by :func:`metalearn_lib.algorithms.check_algorithm`,
next to the registry they come from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "META_PREFIX",
    "LossFn",
    "Params",
    "check_bool",
    "check_callable",
    "check_choice",
    "check_int",
    "check_loss_fn",
    "check_model_and_params",
    "check_positive",
    "check_tasks",
    "ci95",
    "flatten",
    "unflatten",
]

#: A parameter dict ``{name: tensor}``, e.g. from ``parameters_of(model)``.
Params = dict[str, Tensor]
#: A per-task loss ``loss_fn(prediction, target) -> scalar tensor``.
LossFn = Callable[[Tensor, Tensor], Tensor]

#: Names in a parameter dict that start with this prefix are meta-parameters
#: of an algorithm (e.g. Meta-SGD's learned inner learning rates), not the
#: model's own parameters; see :mod:`metalearn_lib.algorithms`.
META_PREFIX = "meta."


def check_int(name: str, value: object, minimum: int = 0) -> int:
    """``value`` if it is an int (not a bool) ``>= minimum``; else TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_positive(name: str, value: object) -> float:
    """``value`` as a float if it is a real number > 0 (finite; bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: Sequence) -> object:
    """``value`` if it is one of ``choices``; else a ValueError naming them."""
    try:
        known = value in choices
    except TypeError:  # unhashable value against a set-like
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_callable(name: str, value: object, what: str = "callable") -> Callable:
    """``value`` if it is callable; ``what`` describes the expected call in the error."""
    if not callable(value):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    return value


def check_loss_fn(loss_fn: object) -> LossFn:
    """``loss_fn`` if it is callable as ``loss_fn(prediction, target) -> scalar``."""
    return check_callable("loss_fn", loss_fn, "callable(prediction, target) -> scalar")


def check_model_and_params(model: nn.Module, params: Params) -> None:
    """Check that ``params`` is a dict with exactly ``model``'s parameter names and shapes.

    Entries whose name starts with :data:`META_PREFIX` are an algorithm's own
    meta-parameters and are allowed beside the model's (any floating shape).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(params, dict):
        raise TypeError(
            "params must be a dict {name: tensor} such as parameters_of(model), "
            f"got {type(params).__name__}"
        )
    expected = {name: p.shape for name, p in model.named_parameters()}
    own = {name for name in params if not name.startswith(META_PREFIX)}
    missing = sorted(set(expected) - own)
    unexpected = sorted(own - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"params must have the model's parameter names; missing {missing}, "
            f"unexpected {unexpected}"
        )
    for name, value in params.items():
        if not isinstance(value, Tensor) or not value.is_floating_point():
            raise TypeError(f"params[{name!r}] must be a floating-point tensor")
        if name in expected and value.shape != expected[name]:
            raise ValueError(
                f"params[{name!r}] has shape {list(value.shape)}, "
                f"the model expects {list(expected[name])}"
            )
    if len({v.dtype for v in params.values()}) > 1:
        raise TypeError("all params must share one dtype (float32 or float64)")


def check_tasks(tasks: object) -> None:
    """Check that ``tasks`` is a task distribution (it has a ``sample`` method)."""
    if not callable(getattr(tasks, "sample", None)):
        raise TypeError(
            "tasks must be a task distribution with a .sample(num_tasks, shots, queries, "
            f"generator=..., iteration=...) method, got {type(tasks).__name__}"
        )


def ci95(values: Tensor, dim: int = -1) -> Tensor:
    """Half-width of the 95% confidence interval of the mean along ``dim``.

    1.96 standard errors: ``1.96 * std / sqrt(n)`` with the sample standard
    deviation (n - 1 in the denominator); 0 when there are fewer than 2 values.
    Use ``.item()`` for a single number.
    """
    if not isinstance(values, Tensor):
        raise TypeError(f"values must be a torch.Tensor, got {type(values).__name__}")
    n = values.shape[dim] if values.dim() else 1
    if n < 2:
        shape = values.sum(dim=dim).shape if values.dim() else ()
        return torch.zeros(shape, dtype=values.dtype, device=values.device)
    return 1.96 * values.std(dim=dim) / math.sqrt(n)


def flatten(params: Mapping[str, Tensor]) -> Tensor:
    """All tensors of a parameter dict as one vector (in the dict's order)."""
    if not isinstance(params, Mapping) or not params:
        raise TypeError("params must be a non-empty dict {name: tensor}")
    return torch.cat([p.reshape(-1) for p in params.values()])


def unflatten(vector: Tensor, like: Mapping[str, Tensor]) -> Params:
    """Cut ``vector`` back into a dict shaped like ``like`` (inverse of :func:`flatten`)."""
    total = sum(p.numel() for p in like.values())
    if not isinstance(vector, Tensor) or vector.dim() != 1 or vector.numel() != total:
        raise ValueError(
            f"vector must be 1-D with {total} entries, got {getattr(vector, 'shape', vector)}"
        )
    out, start = {}, 0
    for name, p in like.items():
        out[name] = vector[start : start + p.numel()].reshape(p.shape)
        start += p.numel()
    return out
