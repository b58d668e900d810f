"""metalearn_lib.variants: iMAML, ANIL, Meta-SGD and MAML++ against independent references.

Everything in float64 on tiny nets. The loop twins (per-task torch.autograd)
are compared for every algorithm in test_algorithms; here each variant meets
the reference the maths gives it: an explicit Hessian, MAML with zeroed body
gradients, finite differences, and MAML itself.
"""

import pytest
import torch
import torch.nn.functional as F
from conftest import make_setup, max_difference

from metalearn_lib import (
    MLP,
    ConvNet,
    SinusoidTasks,
    TaskBatch,
    evaluate,
    meta_gradient,
    meta_gradient_and_loss,
    meta_train,
    parameters_of,
    task_loss,
)
from metalearn_lib.algorithms import with_meta_params
from metalearn_lib.reference import exact_imaml_direction, loop_meta_gradient
from metalearn_lib.variants import (
    AnnealedStepWeights,
    head_names,
    proximal_inner_loop,
    rate_name,
    step_rate_name,
)


def _random_like(params, seed, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    return {
        n: scale * torch.randn(p.shape, generator=gen, dtype=p.dtype) for n, p in params.items()
    }


def _dot(a, b):
    return sum((a[k] * b[k]).sum() for k in a).item()


def _central_difference(f, params, v, eps=1e-6):
    plus = f({k: params[k].detach() + eps * v[k] for k in params})
    minus = f({k: params[k].detach() - eps * v[k] for k in params})
    return ((plus - minus) / (2 * eps)).item()


# -- iMAML ----------------------------------------------------------------------


IMAML = dict(inner_steps=60, inner_lr=0.05, lam=10.0)


def test_imaml_equals_the_explicit_hessian_solve_once_converged():
    model, params, batch = make_setup("tanh_with_buffer")
    solved = meta_gradient(model, params, batch, algorithm="imaml", cg_steps=60, **IMAML)
    exact = exact_imaml_direction(model, params, batch, **IMAML)
    assert max_difference(solved, exact) < 1e-6
    # A few CG iterations are an approximation of that same vector, not another one.
    rough = meta_gradient(model, params, batch, algorithm="imaml", cg_steps=2, **IMAML)
    cosine = _dot(rough, exact) / (_dot(rough, rough) * _dot(exact, exact)) ** 0.5
    assert 0.9 < cosine < 1 - 1e-9


def test_imaml_is_the_derivative_of_the_implicit_solution():
    """d/dtheta L_Q(phi*(theta)) by finite differences, phi* the converged proximal solution."""
    model, params, batch = make_setup("tanh_with_buffer")
    direction = meta_gradient(model, params, batch, algorithm="imaml", cg_steps=60, **IMAML)

    def meta_loss(theta):
        total = 0.0
        for i in range(batch.num_tasks):
            phi = proximal_inner_loop(
                model, theta, batch.support_x[i], batch.support_y[i], 60, 0.05, 10.0, F.mse_loss
            )
            total = total + task_loss(model, phi, batch.query_x[i], batch.query_y[i])
        return total / batch.num_tasks

    for seed in (1, 2):
        v = _random_like(params, seed)
        assert _central_difference(meta_loss, params, v) == pytest.approx(
            _dot(direction, v), rel=1e-5, abs=1e-9
        )


def test_imaml_options_are_checked():
    model, params, batch = make_setup("mlp")
    kw = dict(algorithm="imaml", inner_steps=1, inner_lr=0.05)
    for lam in (0, -1.0):
        with pytest.raises(ValueError, match="lam .* must be a number > 0"):
            meta_gradient(model, params, batch, lam=lam, **kw)
    with pytest.raises(ValueError, match=r"cg_steps .* must be an int >= 1, got 0"):
        meta_gradient(model, params, batch, cg_steps=0, **kw)


# -- ANIL -----------------------------------------------------------------------


def _digit_batch(dtype=torch.float64):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 10, 1, 8, 8, generator=gen, dtype=dtype)
    y = torch.arange(5).repeat(2).expand(3, 10)
    return TaskBatch(x, y, x.flip(1) + 0.1, y.flip(1))


@pytest.mark.parametrize("architecture", ["mlp", "convnet"])
def test_anil_is_maml_with_the_body_inner_gradients_zeroed(architecture):
    if architecture == "mlp":
        model, params, batch = make_setup("mlp")
        kw = dict(inner_steps=3, inner_lr=0.1)
        assert head_names(model) == ["net.4.weight", "net.4.bias"]
    else:
        model = ConvNet(out_features=5, image_size=8, hidden=4, seed=0).double()
        params, batch = parameters_of(model), _digit_batch()
        kw = dict(inner_steps=2, inner_lr=0.4, loss_fn=F.cross_entropy)
        assert head_names(model) == ["head.weight", "head.bias"]
    anil = meta_gradient(model, params, batch, algorithm="anil", **kw)
    # reference.loop_anil: MAML's per-task loop with the body's inner gradients set to zero.
    assert (
        max_difference(anil, loop_meta_gradient(model, params, batch, algorithm="anil", **kw))
        < 1e-10
    )
    maml = meta_gradient(model, params, batch, algorithm="maml", **kw)
    assert max_difference(anil, maml) > 1e-4  # the body's adaptation matters in MAML
    # A "head" that is the whole network is MAML again.
    everything = "net" if architecture == "mlp" else ""
    if everything:
        whole = meta_gradient(model, params, batch, algorithm="anil", head=everything, **kw)
        assert max_difference(whole, maml) < 1e-12


def test_anil_head_is_checked():
    model, params, batch = make_setup("mlp")
    with pytest.raises(ValueError, match=r"head='classifier' names no parameter of the model"):
        meta_gradient(
            model, params, batch, algorithm="anil", inner_steps=1, inner_lr=0.1, head="classifier"
        )
    with pytest.raises(TypeError, match="head must be a module name"):
        head_names(model, 3)


# -- Meta-SGD -------------------------------------------------------------------


def test_metasgd_matches_finite_differences_in_theta_and_rates():
    model, params, batch = make_setup("tanh_with_buffer")
    start = with_meta_params("metasgd", model, params, init_lr=0.05)
    assert set(start) == set(params) | {rate_name(n) for n in params}
    # Rates that differ entry by entry, so a mix-up of entries would show.
    rates = _random_like(params, 5, scale=0.02)
    start = start | {rate_name(n): 0.05 + rates[n] for n in params}
    kw = dict(algorithm="metasgd", inner_steps=2, inner_lr=0.01)
    g, _ = meta_gradient_and_loss(model, start, batch, **kw)
    assert g.keys() == start.keys()

    def meta_loss(theta):
        return meta_gradient_and_loss(model, theta, batch, **kw)[1]

    for seed in (1, 2):
        v = _random_like(start, seed)
        assert _central_difference(meta_loss, start, v) == pytest.approx(
            _dot(g, v), rel=1e-6, abs=1e-10
        )
    only_rates = {
        n: v if n.startswith("meta.") else 0 * v for n, v in _random_like(start, 3).items()
    }
    assert abs(_dot(g, only_rates)) > 1e-6  # the rates really get a gradient


def test_metasgd_without_rates_is_maml_at_inner_lr():
    model, params, batch = make_setup("mlp")
    kw = dict(inner_steps=2, inner_lr=0.05)
    sgd = meta_gradient(model, params, batch, algorithm="metasgd", **kw)
    assert max_difference(sgd, meta_gradient(model, params, batch, algorithm="maml", **kw)) < 1e-12


# -- MAML++ ---------------------------------------------------------------------


def test_mamlpp_with_only_the_last_step_and_fixed_rates_is_maml():
    model, params, batch = make_setup("tanh_with_buffer")
    kw = dict(inner_steps=3, inner_lr=0.1)
    plus = meta_gradient_and_loss(
        model,
        params,
        batch,
        algorithm="mamlpp",
        step_weights=(0, 0, 1),
        learn_rates=False,
        **kw,
    )
    maml = meta_gradient_and_loss(model, params, batch, algorithm="maml", **kw)
    assert max_difference(plus[0], maml[0]) == 0 and plus[1] == maml[1]


def test_mamlpp_matches_finite_differences_with_learned_rates():
    model, params, batch = make_setup("tanh_with_buffer")
    start = with_meta_params("mamlpp", model, params, init_lr=0.1, rate_steps=2)
    assert start[step_rate_name("out.bias")].shape == (2,)
    start[step_rate_name("out.bias")] = torch.tensor([0.1, 0.3], dtype=torch.float64)
    kw = dict(algorithm="mamlpp", inner_steps=3, inner_lr=0.01, step_weights=(0.2, 0.3, 0.5))
    g, _ = meta_gradient_and_loss(model, start, batch, **kw)
    assert g.keys() == start.keys()

    def multi_step_loss(theta):
        # The weighted query losses after each step; step 3 reuses the last rate.
        total = 0.0
        for i in range(batch.num_tasks):
            phi = {n: theta[n] for n in params}
            for j, w in enumerate((0.2, 0.3, 0.5)):
                grads = torch.autograd.grad(
                    task_loss(model, phi, batch.support_x[i], batch.support_y[i]),
                    list(phi.values()),
                )
                rate = {n: theta[step_rate_name(n)][min(j, 1)] for n in phi}
                phi = {n: p - rate[n] * gp for (n, p), gp in zip(phi.items(), grads)}
                total = total + w * task_loss(model, phi, batch.query_x[i], batch.query_y[i])
        return total / batch.num_tasks

    for seed in (1, 2):
        v = _random_like(start, seed)
        with torch.enable_grad():
            theta = {n: p.requires_grad_(True) for n, p in start.items()}
            numeric = _central_difference(
                lambda t: multi_step_loss({n: x.requires_grad_(True) for n, x in t.items()}),
                theta,
                v,
            )
        assert numeric == pytest.approx(_dot(g, v), rel=1e-6, abs=1e-10)


def test_annealed_step_weights_move_to_the_last_step():
    weights = AnnealedStepWeights(iterations=4)
    seen = [weights(4) for _ in range(6)]
    assert seen[0] == [0.25] * 4 and seen[4] == [0, 0, 0, 1] == seen[5]
    assert all(sum(w) == pytest.approx(1) for w in seen)
    assert seen[2] == pytest.approx([0.125, 0.125, 0.125, 0.625])
    model, params, batch = make_setup("mlp")
    with pytest.raises(ValueError, match="step_weights must give 2 non-negative weights"):
        meta_gradient(
            model, params, batch, algorithm="mamlpp", inner_steps=2, inner_lr=0.1, step_weights=(1,)
        )


# -- learned rates where there are none, training and test-time adaptation --------


def test_learned_rates_given_to_an_algorithm_without_them_are_a_value_error():
    model, params, batch = make_setup("mlp")
    with_rates = with_meta_params("metasgd", model, params)
    kw = dict(inner_steps=1, inner_lr=0.05)
    for algorithm, options in [("imaml", {}), ("anil", {}), ("mamlpp", {"learn_rates": False})]:
        with pytest.raises(ValueError, match="has no meta-parameters such as"):
            meta_gradient(model, with_rates, batch, algorithm=algorithm, **kw, **options)
    with pytest.raises(ValueError, match="has no meta-parameters such as"):
        meta_gradient(model, with_rates, batch, algorithm="mamlpp", **kw)  # Meta-SGD's, not its own


@pytest.mark.parametrize("algorithm", ["imaml", "anil", "metasgd", "mamlpp"])
def test_variant_trains_and_evaluates_through_the_registry(algorithm):
    model = MLP(hidden=(8, 8), seed=0)
    options = {"mamlpp": {"step_weights": AnnealedStepWeights(2)}}.get(algorithm, {})
    params, history = meta_train(
        model,
        SinusoidTasks(),
        algorithm=algorithm,
        options=options,
        inner_steps=2,
        iterations=3,
        meta_batch_size=4,
        progress=False,
    )
    assert len(history.loss) == 3 and all(map(torch.isfinite, map(torch.tensor, history.loss)))
    learned = {"metasgd": rate_name("net.0.weight"), "mamlpp": step_rate_name("net.0.weight")}
    if algorithm in learned:
        assert learned[algorithm] in params  # meta_train added and trained the rates
        assert not torch.all(params[learned[algorithm]] == 0.01)
    else:
        assert not any(n.startswith("meta.") for n in params)
    kw = dict(num_tasks=6, steps=(0, 1, 3), chunk_size=3)
    own = evaluate(model, params, SinusoidTasks(), algorithm=algorithm, **kw)
    plain = evaluate(
        model, {n: p for n, p in params.items() if "meta." not in n}, SinusoidTasks(), **kw
    )
    assert torch.isfinite(own.losses).all()
    assert torch.equal(own.losses[0], plain.losses[0])  # 0 steps: the same start
    assert not torch.equal(own.losses[2], plain.losses[2])  # its own way of adapting
