"""Tests of metalearn_lib.cost: time and peak memory of one meta-step."""

import dataclasses
import math

import pytest
import torch

from metalearn_lib import MLP, SinusoidTasks
from metalearn_lib.cost import StepCost, cost_sweep, measure_step_cost, peak_memory


@pytest.fixture(scope="module")
def setup():
    batch = SinusoidTasks().sample(10, 10, generator=torch.Generator().manual_seed(0))
    return MLP(seed=0), batch


def test_peak_memory_sees_torch_allocations_and_frees():
    n = 1_000_000  # 4 MB of float32

    def one_then_another():
        a = torch.ones(n)
        del a
        b = torch.ones(n)
        return b.sum()

    def two_at_once():
        a, b = torch.ones(n), torch.ones(n)
        return (a + b).sum()

    one = peak_memory(one_then_another)
    both = peak_memory(two_at_once)
    # The first frees its tensor before the second allocation: peak ~ 4 MB, not 8 MB.
    assert 4 * n <= one < 1.5 * 4 * n
    # The second holds a, b and a + b at once: ~ 12 MB.
    assert 3 * 4 * n <= both < 3.5 * 4 * n
    assert peak_memory(lambda: None) == 0


def test_maml_memory_grows_linearly_first_order_stays_flat(setup):
    model, batch = setup
    algorithms = ("maml", "fomaml", "reptile", "imaml")
    costs = cost_sweep(
        model, batch, algorithms=algorithms, inner_steps=(1, 5, 10), repeats=1, progress=False
    )
    peak = {(c.algorithm, c.inner_steps): c.peak_bytes for c in costs}
    assert all(isinstance(c, StepCost) for c in costs)
    assert [(c.algorithm, c.inner_steps) for c in costs] == [
        (a, k) for a in algorithms for k in (1, 5, 10)
    ]
    # MAML keeps every inner step's graph: 10 steps need several times 1 step ...
    assert peak["maml", 10] > 4 * peak["maml", 1]
    # ... and each extra step costs about the same (linear growth).
    first, second = peak["maml", 5] - peak["maml", 1], peak["maml", 10] - peak["maml", 5]
    assert first > 0
    assert 0.8 < (second / 5) / (first / 4) < 1.25
    # First-order methods drop the graph: flat in the number of steps.
    for algorithm in ("fomaml", "reptile"):
        assert 0 < peak[algorithm, 10] < 2 * peak[algorithm, 1]
        assert peak[algorithm, 10] < peak["maml", 10] / 3
    # So does iMAML (an implicit gradient; its conjugate gradient costs a fixed amount).
    assert 0 < peak["imaml", 10] < 1.5 * peak["imaml", 1] and peak["imaml", 10] < peak["maml", 10]
    for c in costs:
        assert c.milliseconds > 0 and math.isfinite(c.milliseconds)


def test_measure_step_cost_fields_and_memory_off(setup, capfd):
    model, batch = setup
    cost = measure_step_cost(model, batch, algorithm="fomaml", inner_steps=2, repeats=2)
    assert cost.algorithm == "fomaml" and cost.inner_steps == 2
    assert cost.milliseconds > 0 and cost.peak_bytes > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cost.milliseconds = 1.0  # type: ignore[misc]
    off = measure_step_cost(model, batch, algorithm="maml", inner_steps=1, memory=False)
    assert off.peak_bytes == -1 and off.milliseconds > 0
    quiet = cost_sweep(model, batch, algorithms="reptile", inner_steps=1, progress=False)
    assert len(quiet) == 1
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""  # the profiler's chatter is filtered


def test_progress_bar_is_shown(setup, capfd):
    model, batch = setup
    cost_sweep(model, batch, algorithms=("reptile",), inner_steps=(1,), memory=False, repeats=1)
    assert "cost sweep" in capfd.readouterr().err


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(algorithm="reptil"), ValueError, "algorithm"),
        (dict(inner_steps=-1), ValueError, "inner_steps"),
        (dict(inner_steps=1.5), TypeError, "inner_steps"),
        (dict(inner_lr=0.0), ValueError, "inner_lr"),
        (dict(repeats=0), ValueError, "repeats"),
        (dict(repeats=2.0), TypeError, "repeats"),
        (dict(memory="yes"), TypeError, "memory"),
    ],
)
def test_measure_step_cost_bad_arguments(setup, kwargs, error, words):
    model, batch = setup
    arguments = dict(algorithm="maml", inner_steps=1) | kwargs
    with pytest.raises(error, match=words):
        measure_step_cost(model, batch, **arguments)


def test_bad_model_batch_and_sweep_arguments(setup):
    model, batch = setup
    with pytest.raises(TypeError, match="model"):
        measure_step_cost("mlp", batch, algorithm="maml", inner_steps=1)
    with pytest.raises(TypeError, match="batch"):
        measure_step_cost(model, (1, 2), algorithm="maml", inner_steps=1)
    with pytest.raises(ValueError, match="algorithms"):
        cost_sweep(model, batch, algorithms=("maml", "sgd"), progress=False)
    with pytest.raises(ValueError, match="algorithms"):
        cost_sweep(model, batch, algorithms=(), progress=False)
    with pytest.raises(ValueError, match="inner_steps"):
        cost_sweep(model, batch, inner_steps=(), progress=False)
    with pytest.raises(ValueError, match="inner_steps"):
        cost_sweep(model, batch, inner_steps=(1, -2), progress=False)
    with pytest.raises(TypeError, match="progress"):
        cost_sweep(model, batch, progress=None)
    with pytest.raises(TypeError, match="fn"):
        peak_memory(3)
