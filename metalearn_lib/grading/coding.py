"""Coding checks of the nbgrader assignments: friendly checks, records, references.

Three parts, one set of case builders:

* **friendly checks** (``check_sgd_step``, ``check_adapt``,
  ``check_meta_gradient``) run in the student's kernel for the *visible*
  tests: they compare the student's function with the library's reference
  (:func:`metalearn_lib.reference.loop_meta_gradient`, the per-task loop that
  the library's own tests check the batched ``torch.func`` code against) and
  return ``True`` or ``False``, printing nothing;
* :func:`record_checks` runs in the student's kernel for the *graded* test:
  it only gathers the student's outputs on every case (tensors as plain
  numbers) and records them (:mod:`metalearn_lib.grading.records`); the
  visible cases are not run twice: their outputs, encoded when the friendly
  check ran the same function on them, are recorded as they were;
* :func:`expected_outputs` and :func:`outputs_match` run in the **grader's
  process** (:class:`metalearn_lib.grading.verdicts.DecideVerdicts`): the
  reference outputs are recomputed there from the same seeds, so nothing a
  student rebinds inside the kernel can change a verdict.

A *case* is a dict of plain numbers, e.g. ``{"seed": 577, "hidden": [16, 8],
"steps": 5, "lr": 0.03, "shots": 7}``; the same case builds the same network
and tasks in the kernel and in the grader. Results are compared in float64
with tight tolerances; only plain tensors in plain dicts with the right keys
count (an object that claims to equal anything does not).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from ..models import MLP, parameters_of
from ..reference import loop_meta_gradient
from ..tasks import SinusoidTasks, TaskBatch
from .records import emit_record

__all__ = [
    "CHECKS",
    "case_id",
    "check_adapt",
    "check_meta_gradient",
    "check_sgd_step",
    "expected_outputs",
    "outputs_match",
    "params_match",
    "record_checks",
]

_RTOL = 1e-6
_ATOL = 1e-8
#: The kinds of coding check, and the case keywords each one accepts.
CHECKS = {
    "sgd_step": ("seed", "shapes"),
    "adapt": ("seed", "hidden", "steps", "lr", "shots"),
    "meta_gradient": (
        "algorithm",
        "seed",
        "hidden",
        "tasks",
        "shots",
        "inner_steps",
        "inner_lr",
    ),
}
_DEFAULTS = {
    "adapt": {"hidden": (40, 40), "steps": 1, "lr": 0.01, "shots": 10},
    "meta_gradient": {
        "hidden": (40, 40),
        "tasks": 4,
        "shots": 10,
        "inner_steps": 1,
        "inner_lr": 0.01,
    },
}


# ---------------------------------------------------------------------------
# Cases: the same inputs in the kernel and in the grader
# ---------------------------------------------------------------------------


def _full_case(check: str, case: dict) -> dict:
    if check not in CHECKS:
        raise ValueError(f"check must be one of {tuple(CHECKS)}, got {check!r}")
    if not isinstance(case, dict) or not set(case) <= set(CHECKS[check]):
        raise ValueError(f"a {check} case takes the keys {CHECKS[check]}, got {case!r}")
    full = {**_DEFAULTS.get(check, {}), **case}
    return json.loads(json.dumps(full))  # tuples -> lists: one canonical form


def case_id(check: str, case: dict) -> str:
    """The canonical text of a case (what a record names it by)."""
    return json.dumps({"check": check, **_full_case(check, case)}, sort_keys=True)


def _model_and_params(seed: int, hidden) -> tuple[MLP, dict[str, Tensor]]:
    model = MLP(1, 1, tuple(hidden), seed=seed).double()
    return model, parameters_of(model)


def _batch(seed: int, tasks: int, shots: int) -> TaskBatch:
    generator = torch.Generator().manual_seed(10_000 + seed)
    return SinusoidTasks().sample(tasks, shots, generator=generator, dtype=torch.float64)


def _copy(params: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}


def _sgd_inputs(seed: int, shapes) -> tuple[dict, dict, float]:
    generator = torch.Generator().manual_seed(seed)
    params = {
        f"p{i}": torch.randn(tuple(s), generator=generator, dtype=torch.float64)
        for i, s in enumerate(shapes)
    }
    grads = {
        k: torch.randn(v.shape, generator=generator, dtype=torch.float64) for k, v in params.items()
    }
    lr = 0.01 + 0.5 * torch.rand(1, generator=generator).item()
    return params, grads, lr


def _quietly(fn: Callable, *args, **kwargs) -> tuple[bool, object]:
    """Call ``fn``; return (ok, result) with all output and warnings swallowed."""
    sink = io.StringIO()
    try:
        with (
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            return True, fn(*args, **kwargs)
    except Exception:  # the learner's bug: a failed check, not a crash of the grader
        return False, None


# ---------------------------------------------------------------------------
# Running the student's function on a case (kernel side)
# ---------------------------------------------------------------------------


def _run_sgd_step(fn: Callable, case: dict) -> dict[str, object]:
    params, grads, lr = _sgd_inputs(case["seed"], case["shapes"])
    before = {k: v.clone() for k, v in params.items()}
    ok, got = _quietly(fn, params, grads, lr)
    unchanged = all(torch.equal(params[k], before[k]) for k in params)
    return {"result": got if ok else None, "inputs_unchanged": unchanged}


def _run_adapt(fn: Callable, case: dict) -> dict[str, object]:
    model, params = _model_and_params(case["seed"], case["hidden"])
    task = _batch(case["seed"], 1, case["shots"])
    mine = _copy(params)
    x, y = task.support_x[0], task.support_y[0]
    ok, got = _quietly(fn, model, mine, x, y, steps=case["steps"], lr=case["lr"])
    if not ok or not _is_param_dict(got, params):
        return {"adapted": got if ok else None, "gradient": None}

    def query_grad() -> dict[str, Tensor]:
        # The gradient through the student's steps: second order only if their graph is kept.
        out = torch.func.functional_call(model, got, (task.query_x[0],))
        loss = torch.nn.functional.mse_loss(out, task.query_y[0])
        grads = torch.autograd.grad(loss, list(mine.values()), allow_unused=True)
        return {n: torch.zeros_like(mine[n]) if g is None else g for n, g in zip(mine, grads)}

    ok, gradient = _quietly(query_grad)
    return {"adapted": got, "gradient": gradient if ok else None}


def _run_meta_gradient(fn: Callable, case: dict) -> dict[str, object]:
    model, params = _model_and_params(case["seed"], case["hidden"])
    batch = _batch(case["seed"], case["tasks"], case["shots"])
    kwargs = {"inner_steps": case["inner_steps"], "inner_lr": case["inner_lr"]}
    ok, got = _quietly(fn, model, _copy(params), batch, **kwargs)
    return {"result": got if ok else None}


_RUNNERS = {"sgd_step": _run_sgd_step, "adapt": _run_adapt, "meta_gradient": _run_meta_gradient}

#: Encoded outputs of the cases a friendly check ran in this kernel, by (id of the function,
#: case id), with the function itself (so its id cannot be reused). The graded test that
#: follows a visible one records these instead of running the same cases again. They are
#: encoded (plain numbers) when the check runs, so changing a returned tensor afterwards
#: changes nothing; a record is the student's data either way, judged by the grader.
_CHECKED: dict[tuple[int, str], tuple[Callable, dict[str, object]]] = {}


def _encoded_outputs(fn: Callable, check: str, full: dict) -> dict[str, object]:
    """The encoded outputs of ``fn`` on one case: from a friendly check if one ran it."""
    seen = _CHECKED.get((id(fn), case_id(check, full)))
    if seen is not None and seen[0] is fn:
        return seen[1]
    return {k: _encode(v) for k, v in _RUNNERS[check](fn, full).items()}


# ---------------------------------------------------------------------------
# References (grader side; also behind the friendly checks)
# ---------------------------------------------------------------------------


def expected_outputs(check: str, case: dict) -> dict[str, object]:
    """The reference outputs of one case, computed with the library's reference loop."""
    case = _full_case(check, case)
    if check == "sgd_step":
        params, grads, lr = _sgd_inputs(case["seed"], case["shapes"])
        return {"result": {k: params[k] - lr * grads[k] for k in params}, "inputs_unchanged": True}
    model, params = _model_and_params(case["seed"], case["hidden"])
    if check == "adapt":
        task = _batch(case["seed"], 1, case["shots"])
        kwargs = {"inner_steps": case["steps"], "inner_lr": case["lr"]}
        reptile = loop_meta_gradient(model, _copy(params), task, algorithm="reptile", **kwargs)
        adapted = {n: params[n].detach() - reptile[n] for n in params}
        gradient = loop_meta_gradient(model, _copy(params), task, algorithm="maml", **kwargs)
        return {"adapted": adapted, "gradient": gradient}
    batch = _batch(case["seed"], case["tasks"], case["shots"])
    kwargs = {"inner_steps": case["inner_steps"], "inner_lr": case["inner_lr"]}
    return {
        "result": loop_meta_gradient(
            model, _copy(params), batch, algorithm=case["algorithm"], **kwargs
        )
    }


def _is_param_dict(got: object, like: dict) -> bool:
    return (
        type(got) is dict
        and set(got) == set(like)
        and all(type(v) in (Tensor, torch.nn.Parameter) for v in got.values())
    )


def params_match(got: object, expected: dict[str, Tensor]) -> bool:
    """True if ``got`` is a dict of plain tensors equal to ``expected`` (float64 tolerances)."""
    if type(got) is not dict or set(got) != set(expected) or not all(type(k) is str for k in got):
        return False
    for name, want in expected.items():
        value = got[name]
        if type(value) not in (Tensor, torch.nn.Parameter) or value.shape != want.shape:
            return False
        value = value.detach().to(torch.float64)
        if not torch.allclose(value, want.detach().to(torch.float64), rtol=_RTOL, atol=_ATOL):
            return False
    return True


# ---------------------------------------------------------------------------
# Encoding (kernel -> record) and comparison (grader)
# ---------------------------------------------------------------------------


def _encode(value: object) -> object:
    """Plain JSON data: tensors in dicts become {"shape", "values"}; anything else None."""
    if type(value) is bool:
        return value
    if type(value) is not dict or not all(type(k) is str for k in value):
        return None
    out = {}
    for name, tensor in value.items():
        if type(tensor) not in (Tensor, torch.nn.Parameter):
            return None
        flat = tensor.detach().to(torch.float64).flatten().tolist()
        out[name] = {
            "shape": list(tensor.shape),
            "values": [v if math.isfinite(v) else None for v in flat],
        }
    return out


def _decoded_matches(got: object, want: object) -> bool:
    if isinstance(want, bool):
        return got is want
    if type(got) is not dict or set(got) != set(want):
        return False
    for name, tensor in want.items():
        item = got[name]
        if type(item) is not dict or set(item) != {"shape", "values"}:
            return False
        shape, values = item["shape"], item["values"]
        if type(shape) is not list or shape != list(tensor.shape) or type(values) is not list:
            return False
        if len(values) != tensor.numel() or not all(type(v) in (int, float) for v in values):
            return False
        mine = torch.tensor(values, dtype=torch.float64).reshape(tensor.shape)
        if not torch.allclose(mine, tensor.detach().to(torch.float64), rtol=_RTOL, atol=_ATOL):
            return False
    return True


def outputs_match(got: object, want: dict[str, object]) -> bool:
    """Grader side: do the recorded outputs of one case equal the reference outputs?"""
    if type(got) is not dict or set(got) != set(want):
        return False
    return all(_decoded_matches(got[k], want[k]) for k in want)


def record_checks(cell: str, fn: Callable, check: str, cases: list[dict]) -> None:
    """Graded test cell: run ``fn`` on every case and record its outputs for the grader.

    Parameters
    ----------
    cell : str
        The grade id of this test cell.
    fn : callable
        The student's function.
    check : {"sgd_step", "adapt", "meta_gradient"}
        What ``fn`` computes.
    cases : list of dict
        The cases (visible and hidden), e.g. ``[{"seed": 0, "shapes": [[3, 2]]}]``.

    Prints nothing and never raises for the student's bugs: a case whose call
    fails or returns something else than a dict of tensors is recorded as
    ``None`` and fails in the grader.
    """
    data = []
    for case in cases:
        full = _full_case(check, case)
        data.append({"case": case_id(check, case), "outputs": _encoded_outputs(fn, check, full)})
    emit_record(cell, "coding", data)


# ---------------------------------------------------------------------------
# Friendly checks (visible tests, in the student's kernel)
# ---------------------------------------------------------------------------


def _check(check: str, fn: Callable, case: dict) -> bool:
    full = _full_case(check, case)
    got = _RUNNERS[check](fn, full)
    _CHECKED[id(fn), case_id(check, full)] = (fn, {k: _encode(v) for k, v in got.items()})
    want = expected_outputs(check, full)
    for key, value in want.items():
        if isinstance(value, bool):
            if got[key] is not value:
                return False
        elif not params_match(got[key], value):
            return False
    return True


def check_sgd_step(sgd_step: Callable, *, seed: int, shapes: tuple[tuple[int, ...], ...]) -> bool:
    """Check ``sgd_step(params, grads, lr)`` on random tensors of the given shapes.

    It must return ``{name: params[name] - lr * grads[name]}`` and leave its
    inputs unchanged.
    """
    return _check("sgd_step", sgd_step, {"seed": seed, "shapes": shapes})


def check_adapt(
    adapt_fn: Callable,
    *,
    seed: int,
    hidden: tuple[int, ...] = (40, 40),
    steps: int = 1,
    lr: float = 0.01,
    shots: int = 10,
) -> bool:
    """Check ``adapt_fn(model, params, x, y, steps=, lr=)``, k steps of MAML's inner loop.

    The adapted values must equal the reference's (for one task, Reptile's
    direction is ``theta - phi``), and the result must stay differentiable with
    respect to ``params`` (second order): the gradient of the query loss at
    the adapted parameters with respect to ``params`` must equal the
    reference MAML meta-gradient of that one task.
    """
    case = {"seed": seed, "hidden": hidden, "steps": steps, "lr": lr, "shots": shots}
    return _check("adapt", adapt_fn, case)


def check_meta_gradient(
    fn: Callable,
    algorithm: str,
    *,
    seed: int,
    hidden: tuple[int, ...] = (40, 40),
    tasks: int = 4,
    shots: int = 10,
    inner_steps: int = 1,
    inner_lr: float = 0.01,
) -> bool:
    """Check ``fn(model, params, batch, inner_steps=, inner_lr=)`` against the library's
    ``meta_gradient(..., algorithm=algorithm)`` (through its reference loop)."""
    case = {
        "algorithm": algorithm,
        "seed": seed,
        "hidden": hidden,
        "tasks": tasks,
        "shots": shots,
        "inner_steps": inner_steps,
        "inner_lr": inner_lr,
    }
    return _check("meta_gradient", fn, case)
