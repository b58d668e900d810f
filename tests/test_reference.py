"""metalearn_lib.reference: the loop twins, their registry, and the maths they compute."""

import pytest
import torch
from conftest import make_setup

from metalearn_lib import DIRECTIONS, task_loss
from metalearn_lib.algorithms import register_algorithm, unregister_algorithm
from metalearn_lib.checks import flatten, unflatten
from metalearn_lib.reference import LOOP_DIRECTIONS, loop_meta_gradient, register_loop_direction


def test_every_algorithm_has_a_loop_twin():
    assert set(LOOP_DIRECTIONS) == set(DIRECTIONS)


def test_unknown_or_twinless_algorithm_is_a_value_error():
    model, params, batch = make_setup("mlp")
    kw = dict(inner_steps=1, inner_lr=0.05)
    with pytest.raises(ValueError, match=r"algorithm must be one of \('maml', 'fomaml'"):
        loop_meta_gradient(model, params, batch, algorithm="protomaml", **kw)
    register_algorithm("twinless", DIRECTIONS["fomaml"])
    try:
        with pytest.raises(ValueError, match="has no loop twin"):
            loop_meta_gradient(model, params, batch, algorithm="twinless", **kw)
        with pytest.raises(ValueError, match="already registered"):
            register_loop_direction("maml", LOOP_DIRECTIONS["maml"])
    finally:
        unregister_algorithm("twinless")


def test_loop_maml_one_step_is_the_hessian_formula():
    """The loop twin computes (I - alpha H_support) grad L_query(phi), independently of vmap."""
    model, params, batch = make_setup("tanh_with_buffer")
    one, alpha = batch[0], 0.1
    flat = flatten(params).detach()

    def support_loss(vector):
        return task_loss(model, unflatten(vector, params), one.support_x[0], one.support_y[0])

    def query_loss(vector):
        return task_loss(model, unflatten(vector, params), one.query_x[0], one.query_y[0])

    hessian = torch.autograd.functional.hessian(support_loss, flat)
    phi = flat - alpha * torch.autograd.functional.jacobian(support_loss, flat)
    expected = (torch.eye(flat.numel(), dtype=flat.dtype) - alpha * hessian) @ (
        torch.autograd.functional.jacobian(query_loss, phi)
    )
    g = loop_meta_gradient(model, params, one, algorithm="maml", inner_steps=1, inner_lr=alpha)
    assert torch.allclose(flatten(g), expected, atol=1e-12)
    fo = loop_meta_gradient(model, params, one, algorithm="fomaml", inner_steps=1, inner_lr=alpha)
    assert torch.allclose(flatten(fo), torch.autograd.functional.jacobian(query_loss, phi))
    rep = loop_meta_gradient(model, params, one, algorithm="reptile", inner_steps=1, inner_lr=alpha)
    assert torch.allclose(flatten(rep), flat - phi, atol=1e-14)
    assert all(v.grad_fn is None for v in g.values())
