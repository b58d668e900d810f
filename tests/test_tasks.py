import math

import pytest
import torch

from metalearn_lib import (
    DriftingSinusoidTasks,
    FunctionFamilyTasks,
    SinusoidTasks,
    TaskBatch,
)


def test_sinusoid_batch_shapes_and_dtype(generator):
    batch = SinusoidTasks().sample(7, 5, 11, generator=generator)
    assert batch.support_x.shape == (7, 5, 1) and batch.support_y.shape == (7, 5, 1)
    assert batch.query_x.shape == (7, 11, 1) and batch.query_y.shape == (7, 11, 1)
    assert batch.support_x.dtype == torch.float32
    assert batch.num_tasks == 7
    assert SinusoidTasks().sample(2, 3, generator=generator, dtype=torch.float64).query_x.dtype == (
        torch.float64
    )


def test_targets_follow_the_true_function(generator):
    batch = SinusoidTasks().sample(4, 10, generator=generator, dtype=torch.float64)
    assert torch.allclose(batch.functions(batch.support_x), batch.support_y)
    a, phase = batch.functions.coeffs[:, 0], batch.functions.coeffs[:, 1]
    expected = a.view(-1, 1, 1) * torch.sin(batch.query_x - phase.view(-1, 1, 1))
    assert torch.allclose(batch.query_y, expected)


def test_paper_ranges_by_default():
    functions = SinusoidTasks().sample_functions(5000, generator=torch.Generator().manual_seed(1))
    amplitude, phase, frequency = functions.coeffs.T
    assert 0.1 <= amplitude.min() and amplitude.max() <= 5.0
    assert amplitude.min() < 0.2 and amplitude.max() > 4.9
    assert 0 <= phase.min() and phase.max() <= math.pi
    assert torch.all(frequency == 1)
    x = SinusoidTasks().sample(200, 10, generator=torch.Generator().manual_seed(2)).support_x
    assert -5 <= x.min() and x.max() <= 5


def test_same_seed_same_tasks_other_seed_other_tasks():
    def draw(seed):
        return SinusoidTasks().sample(3, 4, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(0).support_y, draw(0).support_y)
    assert not torch.equal(draw(0).support_y, draw(1).support_y)


def test_diversity_knob_scales_the_ranges():
    zero = SinusoidTasks(diversity=0).sample_functions(50, generator=torch.Generator())
    assert torch.all(zero.coeffs == zero.coeffs[0])
    assert SinusoidTasks(diversity=1).amplitude == (0.1, 5.0)
    half = SinusoidTasks(diversity=0.5)
    assert half.amplitude[1] - half.amplitude[0] == pytest.approx(2.45)
    wide = SinusoidTasks(diversity=2)
    assert wide.phase[1] - wide.phase[0] == pytest.approx(2 * math.pi)
    assert wide.frequency == (1.0, 2.0)
    assert SinusoidTasks(diversity=2, frequency=(1, 1)).frequency == (1.0, 1.0)


def test_function_families_mixture(generator):
    tasks = FunctionFamilyTasks()
    functions = tasks.sample_functions(600, generator=generator)
    names = functions.names()
    assert set(names) == {"sine", "line", "quadratic"}
    assert 150 < names.count("line") < 250
    batch = tasks.sample(30, 8, generator=generator, dtype=torch.float64)
    assert torch.allclose(batch.functions(batch.query_x), batch.query_y)
    lines = FunctionFamilyTasks(["line"]).sample(3, 4, generator=generator, dtype=torch.float64)
    slope, intercept = lines.functions.coeffs[:, 0], lines.functions.coeffs[:, 1]
    expected = slope.view(-1, 1, 1) * lines.support_x + intercept.view(-1, 1, 1)
    assert torch.allclose(lines.support_y, expected)


def test_drifting_distribution_moves_with_iteration():
    tasks = DriftingSinusoidTasks(horizon=100)
    assert tasks.phase_at(0) == (0.0, math.pi)
    assert tasks.phase_at(50) == pytest.approx((math.pi / 2, 3 * math.pi / 2))
    assert tasks.phase_at(1000) == pytest.approx((math.pi, 2 * math.pi))
    late = tasks.sample_functions(500, generator=torch.Generator(), iteration=100)
    assert late.coeffs[:, 1].min() >= math.pi


def test_task_batch_indexing_keeps_the_task_axis(generator):
    batch = SinusoidTasks().sample(5, 3, generator=generator)
    one = batch[2]
    assert one.support_x.shape == (1, 3, 1)
    assert torch.equal(one.query_y[0], batch.query_y[2])
    assert one.functions.coeffs.shape == (1, 3)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(diversity=-1), ValueError, "diversity"),
        (dict(diversity="wide"), TypeError, "diversity"),
        (dict(amplitude=(5, 1)), ValueError, "amplitude"),
        (dict(phase=3), TypeError, "phase"),
        (dict(noise_std=-0.1), ValueError, "noise_std"),
    ],
)
def test_bad_distribution_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        SinusoidTasks(**kwargs)


def test_bad_sample_arguments(generator):
    tasks = SinusoidTasks()
    with pytest.raises(ValueError, match="num_tasks"):
        tasks.sample(0, 5, generator=generator)
    with pytest.raises(ValueError, match="shots"):
        tasks.sample(2, 0, generator=generator)
    with pytest.raises(TypeError, match="shots"):
        tasks.sample(2, 2.5, generator=generator)
    with pytest.raises(ValueError, match="families"):
        FunctionFamilyTasks(["sine", "cosine"])
    with pytest.raises(ValueError, match="horizon"):
        DriftingSinusoidTasks(horizon=0)


def test_task_batch_rejects_inconsistent_shapes():
    x = torch.zeros(2, 5, 1)
    with pytest.raises(ValueError, match="number of tasks"):
        TaskBatch(x, x, torch.zeros(3, 5, 1), torch.zeros(3, 5, 1))
    with pytest.raises(ValueError, match="support_x .* support_y"):
        TaskBatch(x, torch.zeros(2, 4, 1), x, x)
    with pytest.raises(ValueError, match="per-point shape"):
        TaskBatch(x, x, torch.zeros(2, 5, 2), torch.zeros(2, 5, 1))
    with pytest.raises(ValueError, match="at least one task"):
        TaskBatch(*(torch.zeros(0, 5, 1),) * 4)
    with pytest.raises(TypeError, match="torch.Tensor"):
        TaskBatch([[0.0]], x, x, x)
