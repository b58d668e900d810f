"""The toy problem of chapter 3: its directions are the library's and follow the closed forms."""

from __future__ import annotations

import pytest
import torch

from metalearn_lib.algorithms import task_loss
from metalearn_lib.teaching.experiments.toy_directions import (
    TOY_ALGORITHMS,
    toy_cosines,
    toy_directions,
    toy_problem,
)


@pytest.fixture(scope="module")
def toy():
    return toy_problem(num_tasks=3, seed=0)


def test_each_task_is_a_bowl_with_the_stated_hessian_and_optimum(toy):
    for i in range(3):
        x, y = toy.batch.support_x[i], toy.batch.support_y[i]

        def loss(w, x=x, y=y):
            return task_loss(toy.model, {"weight": w}, x, y)

        hessian = torch.func.hessian(loss)(toy.theta["weight"]).reshape(2, 2)
        assert torch.allclose(hessian, toy.hessians[i], atol=1e-12)
        assert loss(toy.optima[i : i + 1]).item() == pytest.approx(0.0, abs=1e-20)
        assert torch.linalg.eigvalsh(hessian).tolist() == pytest.approx([0.5, 4.0])
    assert toy.max_curvature == pytest.approx(4.0)


@pytest.mark.parametrize("steps, lr", [(1, 0.01), (1, 0.2), (4, 0.1)])
def test_directions_follow_the_closed_forms(toy, steps, lr):
    """MAML (I - aH)^k H (phi - c), FOMAML H (phi - c), Reptile theta - phi; mean over tasks."""
    directions = toy_directions(toy, inner_steps=steps, inner_lr=lr)
    assert set(directions) == set(TOY_ALGORITHMS)
    expected = {name: torch.zeros(2, dtype=torch.float64) for name in TOY_ALGORITHMS}
    for c, h in zip(toy.optima, toy.hessians):
        shrink = torch.linalg.matrix_power(torch.eye(2, dtype=torch.float64) - lr * h, steps)
        phi = c + shrink @ (toy.point - c)
        expected["maml"] += shrink @ h @ (phi - c) / 3
        expected["fomaml"] += h @ (phi - c) / 3
        expected["reptile"] += (toy.point - phi) / 3
    for name in TOY_ALGORITHMS:
        assert torch.allclose(directions[name], expected[name], atol=1e-10), name


def test_directions_agree_for_small_alpha_and_part_for_large(toy):
    cosines = toy_cosines(toy, inner_steps=1, inner_lrs=[0.001, 0.2])
    assert set(cosines) == {"fomaml", "reptile"}
    assert min(values[0] for values in cosines.values()) > 0.999
    assert cosines["fomaml"][1] < 0.8 and cosines["reptile"][1] < 0


def test_same_seed_same_problem_and_bad_input():
    a, b = toy_problem(seed=3), toy_problem(seed=3)
    assert torch.equal(a.optima, b.optima) and torch.equal(a.hessians, b.hessians)
    assert not torch.equal(a.optima, toy_problem(seed=4).optima)
    with pytest.raises(ValueError, match="num_tasks"):
        toy_problem(num_tasks=0)
    with pytest.raises(ValueError, match="curvature must be a number > 0"):
        toy_problem(curvature=0.0)
    with pytest.raises(ValueError, match="ratio must be a number >= 1"):
        toy_problem(ratio=0.5)
    with pytest.raises(TypeError, match="curvature"):
        toy_problem(curvature="big")
    with pytest.raises(ValueError, match="theta"):
        toy_problem(theta=(0.0, 1.0, 2.0))
    with pytest.raises(TypeError, match="problem must be a ToyProblem"):
        toy_directions("toy", inner_steps=1, inner_lr=0.1)
    with pytest.raises(ValueError, match="inner_lrs"):
        toy_cosines(a, inner_steps=1, inner_lrs=[])
