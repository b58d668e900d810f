"""metalearn_lib.checks: the shared argument checks, the 95% interval and parameter vectors."""

import math

import pytest
import torch

from metalearn_lib import MLP, parameters_of
from metalearn_lib.checks import (
    check_bool,
    check_callable,
    check_choice,
    check_int,
    check_model_and_params,
    check_positive,
    check_tasks,
    ci95,
    flatten,
    unflatten,
)


def test_check_int():
    assert check_int("n", 3, 1) == 3 and check_int("n", 0) == 0
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        check_int("n", 0, 1)
    for bad in (True, 2.0, "2", None):
        with pytest.raises(TypeError, match="n must be an int >= 0"):
            check_int("n", bad)


def test_check_positive():
    assert check_positive("lr", 1) == 1.0 and check_positive("lr", 0.5) == 0.5
    for bad in (0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="lr must be a positive finite number"):
            check_positive("lr", bad)
    for bad in (True, "0.1", None, torch.tensor(0.1)):
        with pytest.raises(TypeError, match="lr must be a positive number"):
            check_positive("lr", bad)


def test_check_choice_bool_and_callable():
    assert check_choice("norm", "batch", (None, "batch")) == "batch"
    with pytest.raises(ValueError, match=r"norm must be one of \(None, 'batch'\), got 'x'"):
        check_choice("norm", "x", (None, "batch"))
    with pytest.raises(ValueError, match="must be one of"):
        check_choice("norm", ["unhashable"], {"a"})
    assert check_bool("flag", False) is False
    with pytest.raises(TypeError, match="flag must be True or False"):
        check_bool("flag", 1)
    assert check_callable("f", len) is len
    with pytest.raises(TypeError, match="f must be callable"):
        check_callable("f", 3)
    with pytest.raises(TypeError, match="tasks must be a task distribution"):
        check_tasks([1, 2])


def test_check_model_and_params_allows_meta_entries_only():
    model = MLP(hidden=(4,), seed=0)
    params = parameters_of(model)
    check_model_and_params(model, params | {"meta.inner_lr": torch.tensor(0.1)})
    with pytest.raises(ValueError, match=r"unexpected \['inner_lr'\]"):
        check_model_and_params(model, params | {"inner_lr": torch.tensor(0.1)})
    with pytest.raises(TypeError, match="share one dtype"):
        check_model_and_params(model, params | {"meta.lr": torch.tensor(0.1, dtype=torch.float64)})


def test_ci95_is_1_96_standard_errors():
    values = torch.tensor([[1.0, 2.0, 4.0, 7.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    expected = 1.96 * values[0].std().item() / 2.0
    assert ci95(values).tolist() == pytest.approx([expected, 0.0])
    assert ci95(values[0]).item() == pytest.approx(expected)
    assert ci95(values, dim=0).shape == (4,)
    assert ci95(torch.tensor([3.0])).item() == 0.0  # one value: no spread to estimate
    with pytest.raises(TypeError, match="torch.Tensor"):
        ci95([1.0, 2.0])


def test_flatten_and_unflatten_round_trip():
    params = parameters_of(MLP(hidden=(3,), seed=0))
    vector = flatten(params)
    assert vector.shape == (sum(p.numel() for p in params.values()),)
    back = unflatten(vector, params)
    assert all(torch.equal(back[n], params[n]) for n in params)
    with pytest.raises(ValueError, match="1-D with"):
        unflatten(vector[:-1], params)
    with pytest.raises(TypeError, match="non-empty dict"):
        flatten({})
