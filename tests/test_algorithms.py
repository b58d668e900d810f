"""The batched torch.func algorithms against a per-task loop, finite differences and the maths."""

import pytest
import torch
import torch.nn.functional as F
from conftest import make_setup as make
from conftest import max_difference

from metalearn_lib import (
    ALGORITHMS,
    MLP,
    TaskBatch,
    adapt,
    adaptation_trajectory,
    meta_gradient,
    meta_gradient_and_loss,
    parameters_of,
    task_loss,
)
from metalearn_lib.checks import flatten
from metalearn_lib.checks import unflatten as unflatten_like
from metalearn_lib.reference import loop_meta_gradient


@pytest.mark.parametrize("architecture", ["mlp", "tanh_with_buffer"])
@pytest.mark.parametrize("algorithm", tuple(ALGORITHMS))
@pytest.mark.parametrize("steps", [0, 1, 3])
def test_batched_equals_per_task_loop(architecture, algorithm, steps):
    model, params, batch = make(architecture)
    kwargs = dict(algorithm=algorithm, inner_steps=steps, inner_lr=0.05)
    batched = meta_gradient(model, params, batch, **kwargs)
    looped = loop_meta_gradient(model, params, batch, **kwargs)
    assert batched.keys() == params.keys()
    assert max_difference(batched, looped) < 1e-10


def test_buffer_is_used():
    model, params, batch = make("tanh_with_buffer")
    before = meta_gradient(model, params, batch, algorithm="maml", inner_steps=1, inner_lr=0.05)
    model.input_scale.fill_(0.7)
    after = meta_gradient(model, params, batch, algorithm="maml", inner_steps=1, inner_lr=0.05)
    assert max_difference(before, after) > 1e-3


@pytest.mark.parametrize("steps", [1, 3])
def test_maml_matches_central_finite_differences(steps):
    model, params, batch = make("tanh_with_buffer")
    kwargs = dict(inner_steps=steps, inner_lr=0.1)
    g, _ = meta_gradient_and_loss(model, params, batch, algorithm="maml", **kwargs)

    def meta_loss(theta):
        return meta_gradient_and_loss(model, theta, batch, algorithm="maml", **kwargs)[1]

    direction_gen = torch.Generator().manual_seed(7)
    eps = 1e-6
    for _ in range(3):
        v = {
            k: torch.randn(p.shape, generator=direction_gen, dtype=p.dtype)
            for k, p in params.items()
        }
        plus = meta_loss({k: params[k].detach() + eps * v[k] for k in params})
        minus = meta_loss({k: params[k].detach() - eps * v[k] for k in params})
        numeric = (plus - minus) / (2 * eps)
        analytic = sum((g[k] * v[k]).sum() for k in g)
        assert numeric.item() == pytest.approx(analytic.item(), rel=1e-6, abs=1e-9)


def test_one_step_maml_is_the_hessian_formula():
    """g = (I - alpha H_support(theta)) grad L_query(phi) for one task and one step."""
    model, params, batch = make("tanh_with_buffer")
    one = batch[0]
    alpha = 0.1
    flat = flatten(params).detach()

    def unflatten(vector):
        return unflatten_like(vector, params)

    def support_loss(vector):
        return task_loss(model, unflatten(vector), one.support_x[0], one.support_y[0])

    def query_loss(vector):
        return task_loss(model, unflatten(vector), one.query_x[0], one.query_y[0])

    hessian = torch.autograd.functional.hessian(support_loss, flat)
    phi = flat - alpha * torch.autograd.functional.jacobian(support_loss, flat)
    query_grad = torch.autograd.functional.jacobian(query_loss, phi)
    expected = (torch.eye(flat.numel(), dtype=flat.dtype) - alpha * hessian) @ query_grad
    g = meta_gradient(model, params, one, algorithm="maml", inner_steps=1, inner_lr=alpha)
    got = flatten(g)
    assert torch.allclose(got, expected, atol=1e-12)


def test_fomaml_differs_from_maml_for_a_non_quadratic_loss():
    model, params, batch = make("mlp")
    kw = dict(inner_steps=1, inner_lr=0.05)
    maml = meta_gradient(model, params, batch, algorithm="maml", **kw)
    fomaml = meta_gradient(model, params, batch, algorithm="fomaml", **kw)
    assert max_difference(maml, fomaml) > 1e-4


def test_zero_inner_steps_maml_equals_fomaml_and_reptile_is_zero():
    model, params, batch = make("mlp")
    kw = dict(inner_steps=0, inner_lr=0.05)
    maml = meta_gradient(model, params, batch, algorithm="maml", **kw)
    fomaml = meta_gradient(model, params, batch, algorithm="fomaml", **kw)
    reptile = meta_gradient(model, params, batch, algorithm="reptile", **kw)
    assert max_difference(maml, fomaml) < 1e-14
    assert all(torch.count_nonzero(t) == 0 for t in reptile.values())


def test_one_step_reptile_is_lr_times_support_gradient():
    model, params, batch = make("mlp")
    lr = 0.03
    reptile = meta_gradient(model, params, batch, algorithm="reptile", inner_steps=1, inner_lr=lr)
    per_task = []
    for i in range(batch.num_tasks):
        loss = task_loss(model, params, batch.support_x[i], batch.support_y[i])
        per_task.append(torch.autograd.grad(loss, list(params.values())))
    for j, name in enumerate(params):
        expected = lr * torch.stack([g[j] for g in per_task]).mean(0)
        assert torch.allclose(reptile[name], expected, atol=1e-14)


def test_cross_entropy_with_integer_labels():
    torch.manual_seed(0)
    model = MLP(in_features=2, out_features=3, hidden=(8,), seed=1).double()
    params = parameters_of(model)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, 2, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (4, 6), generator=gen)
    batch = TaskBatch(x, y, x.flip(1), y.flip(1))
    for algorithm in ALGORITHMS:
        kw = dict(algorithm=algorithm, inner_steps=2, inner_lr=0.5, loss_fn=F.cross_entropy)
        assert (
            max_difference(
                meta_gradient(model, params, batch, **kw),
                loop_meta_gradient(model, params, batch, **kw),
            )
            < 1e-10
        )


def test_float32_and_params_without_grad():
    model, params, batch = make("mlp", dtype=torch.float32)
    plain = {k: v.detach() for k, v in params.items()}
    kw = dict(algorithm="maml", inner_steps=2, inner_lr=0.05)
    g1 = meta_gradient(model, params, batch, **kw)
    g2 = meta_gradient(model, plain, batch, **kw)
    assert all(v.dtype == torch.float32 and v.grad_fn is None for v in g1.values())
    assert max_difference(g1, g2) == 0
    assert max_difference(g1, loop_meta_gradient(model, params, batch, **kw)) < 1e-5


def test_adapt_is_pure_and_differentiable():
    model, params, batch = make("mlp")
    before = {k: v.clone() for k, v in params.items()}
    x, y = batch.support_x[0], batch.support_y[0]
    phi = adapt(model, params, x, y, steps=3, lr=0.05)
    assert max_difference(params, before) == 0
    assert max_difference(adapt(model, params, x, y, steps=0, lr=0.05), params) == 0
    assert task_loss(model, phi, x, y) < task_loss(model, params, x, y)
    # Second order: the adapted parameters are differentiable functions of theta ...
    query = task_loss(model, phi, batch.query_x[0], batch.query_y[0])
    through = torch.autograd.grad(query, list(params.values()))
    expected = meta_gradient(
        model, params, batch[0], algorithm="maml", inner_steps=3, inner_lr=0.05
    )
    assert all(torch.allclose(a, b) for a, b in zip(through, expected.values()))
    # ... first order: d phi / d theta is the identity.
    phi_fo = adapt(model, params, x, y, steps=3, lr=0.05, first_order=True)
    (jac,) = torch.autograd.grad(phi_fo["net.0.bias"].sum(), [params["net.0.bias"]])
    assert torch.equal(jac, torch.ones_like(jac))


BAD_CALLS = [
    (dict(algorithm="mamll"), ValueError, "algorithm must be one of"),
    (dict(inner_steps=-1), ValueError, "inner_steps must be >= 0"),
    (dict(inner_steps=1.5), TypeError, "inner_steps must be an int"),
    (dict(inner_steps=True), TypeError, "inner_steps must be an int"),
    (dict(inner_lr=0.0), ValueError, "inner_lr must be a positive"),
    (dict(inner_lr=-0.1), ValueError, "inner_lr must be a positive"),
    (dict(inner_lr=float("nan")), ValueError, "inner_lr must be a positive"),
    (dict(inner_lr="0.1"), TypeError, "inner_lr must be a positive"),
    (dict(loss_fn="mse"), TypeError, "loss_fn must be callable"),
]


@pytest.mark.parametrize("override, error, message", BAD_CALLS)
def test_bad_hyperparameters(override, error, message):
    model, params, batch = make("mlp")
    kwargs = dict(algorithm="maml", inner_steps=1, inner_lr=0.01) | override
    with pytest.raises(error, match=message):
        meta_gradient(model, params, batch, **kwargs)


def test_bad_params_batch_and_model():
    model, params, batch = make("mlp")
    kw = dict(algorithm="maml", inner_steps=1, inner_lr=0.01)
    with pytest.raises(ValueError, match="missing \\['net.0.bias'\\]"):
        meta_gradient(model, {k: v for k, v in params.items() if k != "net.0.bias"}, batch, **kw)
    with pytest.raises(ValueError, match="has shape"):
        meta_gradient(model, params | {"net.0.bias": torch.zeros(3)}, batch, **kw)
    with pytest.raises(TypeError, match="must be a dict"):
        meta_gradient(model, list(params.values()), batch, **kw)
    with pytest.raises(TypeError, match="TaskBatch"):
        meta_gradient(model, params, (batch.support_x, batch.support_y), **kw)
    with pytest.raises(TypeError, match="float32 but params are torch.float64"):
        meta_gradient(model, params, batch.to(torch.float32), **kw)
    with pytest.raises(TypeError, match="nn.Module"):
        meta_gradient(lambda x: x, params, batch, **kw)
    wide = TaskBatch(*(torch.zeros(2, 3, 4, dtype=torch.float64),) * 4)
    with pytest.raises(ValueError, match="could not compute the loss on the first support set"):
        meta_gradient(model, params, wide, **kw)
    with pytest.raises(ValueError, match="scalar"):
        meta_gradient(model, params, batch, loss_fn=lambda p, t: (p - t) ** 2, **kw)


def test_bad_adapt_arguments():
    model, params, batch = make("mlp")
    x, y = batch.support_x[0], batch.support_y[0]
    with pytest.raises(ValueError, match="steps must be >= 0"):
        adapt(model, params, x, y, steps=-2, lr=0.1)
    with pytest.raises(ValueError, match="lr must be a positive"):
        adapt(model, params, x, y, steps=1, lr=0)
    with pytest.raises(ValueError, match="same number of points"):
        adapt(model, params, x, y[:-1], steps=1, lr=0.1)


def test_adaptation_trajectory_records_every_step():
    model, params, batch = make("tanh_with_buffer")
    sx, sy, qx, qy = batch.support_x[0], batch.support_y[0], batch.query_x[0], batch.query_y[0]
    path = adaptation_trajectory(model, params, sx, sy, qx, qy, steps=4, inner_lr=0.1)
    assert path.query_losses.shape == path.support_losses.shape == (5,)
    assert path.query_metrics.numel() == 0
    for k in range(5):
        phi = adapt(model, params, sx, sy, steps=k, lr=0.1, first_order=True)
        assert path.query_losses[k].item() == pytest.approx(task_loss(model, phi, qx, qy).item())
        assert path.support_losses[k].item() == pytest.approx(task_loss(model, phi, sx, sy).item())
    assert max_difference(path.params, {n: p.detach() for n, p in phi.items()}) < 1e-14
    assert (path.support_losses.diff() < 0).all()  # a small step lowers the support loss
    assert all(v.grad_fn is None for v in path.params.values())
    with_metric = adaptation_trajectory(
        model, params, sx, sy, qx, qy, steps=2, inner_lr=0.1, metric_fn=lambda p, t: p.sum()
    )
    assert with_metric.query_metrics.shape == (3,)
