"""MAML's meta-gradient computed three ways, and the cosine between directions."""

import pytest
import torch

from metalearn_lib import MLP, SinusoidTasks, meta_gradient, parameters_of
from metalearn_lib.checks import flatten, unflatten
from metalearn_lib.teaching import gradients


def test_three_ways_agree_on_one_step_maml_gradient():
    model = MLP(hidden=(6, 6), seed=0)
    theta = {n: p.double() for n, p in parameters_of(model).items()}
    batch = (
        SinusoidTasks().sample(2, 5, generator=torch.Generator().manual_seed(1)).to(torch.float64)
    )
    library = meta_gradient(model, theta, batch, algorithm="maml", inner_steps=1, inner_lr=0.05)
    formula, h = gradients.one_step_maml_by_hessian(model, theta, batch, inner_lr=0.05)
    fd = gradients.finite_difference_meta_gradient(
        model, theta, batch, inner_steps=1, inner_lr=0.05
    )
    first_order = meta_gradient(
        model, theta, batch, algorithm="fomaml", inner_steps=1, inner_lr=0.05
    )
    assert h.shape == (61, 61) and torch.allclose(h, h.T)
    v_lib, v_formula, v_fd = (flatten(g) for g in (library, formula, fd))
    assert torch.allclose(v_lib, v_formula, atol=1e-10)
    assert torch.allclose(v_lib, v_fd, atol=1e-6)
    # The check has teeth: the first-order direction is measurably different.
    assert (flatten(first_order) - v_lib).abs().max() > 1e-4


def test_cosine_similarity_and_flatten_round_trip():
    a = {"w": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([0.0])}
    b = {"w": torch.tensor([[0.0, 2.0]]), "b": torch.tensor([0.0])}
    assert gradients.cosine_similarity(a, a) == pytest.approx(1.0)
    assert gradients.cosine_similarity(a, b) == pytest.approx(0.0)
    back = unflatten(flatten(a), a)
    assert all(torch.equal(back[k], a[k]) for k in a)
    with pytest.raises(ValueError, match="keys"):
        gradients.cosine_similarity(a, {"w": a["w"]})
    with pytest.raises(ValueError, match="zero"):
        gradients.cosine_similarity(a, {k: torch.zeros_like(v) for k, v in a.items()})


def test_direction_similarity_compares_every_other_registered_algorithm():
    model = MLP(hidden=(8, 8), seed=0)
    batch = SinusoidTasks().sample(4, 5, generator=torch.Generator().manual_seed(0))
    out = gradients.direction_similarity(model, parameters_of(model), batch, inner_steps=(1, 2))
    assert list(out) == ["fomaml", "reptile"]
    # Meta-SGD at its starting rates is MAML: a cosine of 1 up to rounding.
    assert all(len(v) == 2 and all(abs(c) <= 1 + 1e-12 for c in v) for v in out.values())
    same = gradients.direction_similarity(
        model, parameters_of(model), batch, inner_steps=(1,), algorithms=("maml",)
    )
    assert same["maml"][0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="algorithm"):
        gradients.direction_similarity(
            model, parameters_of(model), batch, algorithms=("protomaml",)
        )
