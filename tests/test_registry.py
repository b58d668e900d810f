"""The algorithm registry: names, labels, run-time registration, options, meta-parameters."""

import pytest
import torch
from conftest import make_setup, max_difference
from torch.func import grad, grad_and_value, vmap

from metalearn_lib import (
    ALGORITHMS,
    DIRECTIONS,
    MLP,
    SinusoidTasks,
    algorithm_label,
    check_algorithm,
    evaluate,
    meta_gradient,
    meta_train,
    parameters_of,
    register_algorithm,
    task_loss,
    unregister_algorithm,
)
from metalearn_lib.algorithms import model_params, with_meta_params
from metalearn_lib.cost import cost_sweep, measure_step_cost
from metalearn_lib.reference import loop_meta_gradient


def test_built_ins_in_order_with_labels():
    # The built-ins first; the variants (metalearn_lib.variants) register after them. Only
    # the built-ins are spelt out, so a new algorithm needs no edit here.
    assert tuple(ALGORITHMS)[:3] == ("maml", "fomaml", "reptile")
    assert tuple(DIRECTIONS) == tuple(ALGORITHMS) and list(ALGORITHMS) == list(DIRECTIONS)
    assert [algorithm_label(a) for a in ALGORITHMS[:3]] == ["MAML", "FOMAML", "Reptile"]
    assert all(isinstance(algorithm_label(a), str) and algorithm_label(a) for a in ALGORITHMS)
    assert repr(ALGORITHMS) == repr(tuple(DIRECTIONS)) and ALGORITHMS == tuple(DIRECTIONS)
    assert ALGORITHMS.index("reptile") == 2 and "maml" in ALGORITHMS and 3 not in ALGORITHMS
    with pytest.raises(TypeError):
        DIRECTIONS["x"] = DIRECTIONS["maml"]  # read-only view: register_algorithm adds


def test_unknown_name_is_a_value_error_everywhere():
    model, params, batch = make_setup("mlp")
    kw = dict(algorithm="mamll", inner_steps=1, inner_lr=0.01)
    message = r"algorithm must be one of \('maml', 'fomaml', 'reptile', .*\), got 'mamll'"
    calls = [
        lambda: check_algorithm("mamll"),
        lambda: algorithm_label("mamll"),
        lambda: meta_gradient(model, params, batch, **kw),
        lambda: loop_meta_gradient(model, params, batch, **kw),
        lambda: meta_train(model, SinusoidTasks(), iterations=1, progress=False, **kw),
        lambda: evaluate(model, params, SinusoidTasks(), num_tasks=2, algorithm="mamll"),
        lambda: measure_step_cost(model, batch, **kw),
        lambda: unregister_algorithm("mamll"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(ValueError, match="algorithms must be chosen from"):
        cost_sweep(model, batch, algorithms=("maml", "mamll"), progress=False)


def test_registration_errors():
    with pytest.raises(ValueError, match="already registered"):
        register_algorithm("maml", DIRECTIONS["fomaml"])
    with pytest.raises(TypeError, match="direction must be a direction function"):
        register_algorithm("new", "not a function")
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        register_algorithm("", DIRECTIONS["fomaml"])
    with pytest.raises(ValueError, match="built in"):
        unregister_algorithm("reptile")
    assert "new" not in ALGORITHMS


def test_toy_algorithm_trains_through_meta_train_unchanged(signed_fomaml):
    """A direction registered at run time is live everywhere, with its own option."""
    assert signed_fomaml in ALGORITHMS and ALGORITHMS[-1] == signed_fomaml
    assert algorithm_label(signed_fomaml) == "signSGD-FOMAML"
    model, params, batch = make_setup("mlp")
    kw = dict(algorithm=signed_fomaml, inner_steps=2, inner_lr=0.05)
    direction = meta_gradient(model, params, batch, scale=0.5, **kw)
    fomaml = meta_gradient(model, params, batch, **(kw | dict(algorithm="fomaml")))
    assert max_difference(direction, {n: 0.5 * g.sign() for n, g in fomaml.items()}) == 0
    assert max_difference(direction, loop_meta_gradient(model, params, batch, scale=0.5, **kw)) == 0
    with pytest.raises(TypeError, match=r"takes the options \['scale'\]; got unknown \['sacle'\]"):
        meta_gradient(model, params, batch, sacle=0.5, **kw)

    mlp = MLP(hidden=(8,), seed=0)
    start = parameters_of(mlp)
    # With plain SGD, every entry moves by exactly meta_lr * scale per iteration.
    trained, history = meta_train(
        mlp,
        SinusoidTasks(),
        algorithm=signed_fomaml,
        options={"scale": 0.5},
        meta_optimizer="sgd",
        meta_lr=0.01,
        iterations=3,
        meta_batch_size=4,
        progress=False,
    )
    assert len(history.loss) == 3 and history.settings["algorithm"] == signed_fomaml
    for name in start:
        moved = (trained[name] - start[name]).abs() / 0.005
        assert torch.allclose(moved.round(), moved, atol=1e-4) and moved.max() <= 3 + 1e-4
    with pytest.raises(TypeError, match="got unknown"):
        meta_train(mlp, SinusoidTasks(), algorithm="maml", options={"scale": 1.0}, progress=False)


def test_algorithm_with_its_own_meta_parameters():
    """Room for Meta-SGD and friends: a learned inner rate lives in params as "meta.inner_lr"."""

    def learned_rate_maml(model, params, batch, *, inner_steps, inner_lr, loss_fn, start_lr=0.01):
        def mean_query_loss(theta):
            rate, weights = theta["meta.inner_lr"], model_params(theta)

            def one_task(sx, sy, qx, qy):
                phi = weights
                for _ in range(inner_steps):
                    g = grad(task_loss, argnums=1)(model, phi, sx, sy, loss_fn)
                    phi = {n: p - rate * g[n] for n, p in phi.items()}
                return task_loss(model, phi, qx, qy, loss_fn)

            data = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
            return vmap(one_task)(*data).mean()

        return grad_and_value(mean_query_loss)(params)

    def start_rate(model, params, *, start_lr=0.01):
        dtype = next(iter(params.values())).dtype
        return {"meta.inner_lr": torch.tensor(start_lr, dtype=dtype)}

    register_algorithm("learned_rate", learned_rate_maml, init_meta_params=start_rate)
    try:
        model = MLP(hidden=(8,), seed=0)
        assert "meta.inner_lr" in with_meta_params("learned_rate", model, parameters_of(model))
        params, _ = meta_train(
            model,
            SinusoidTasks(),
            algorithm="learned_rate",
            options={"start_lr": 0.02},
            meta_lr=0.01,
            iterations=3,
            meta_batch_size=4,
            progress=False,
        )
        assert params["meta.inner_lr"].shape == () and params["meta.inner_lr"].item() != 0.02
        result = evaluate(model, params, SinusoidTasks(), num_tasks=4, steps=(0, 1))
        assert torch.isfinite(result.losses).all()
    finally:
        unregister_algorithm("learned_rate")
    assert "learned_rate" not in ALGORITHMS


@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "reptile"])
def test_built_ins_refuse_meta_entries_with_a_clear_value_error(algorithm):
    model, params, batch = make_setup("mlp")
    with_rates = with_meta_params("metasgd", model, params)
    assert any(n.startswith("meta.") for n in with_rates)
    kw = dict(algorithm=algorithm, inner_steps=1, inner_lr=0.05)
    with pytest.raises(ValueError, match=rf"^{algorithm} has no meta-parameters such as \['meta\."):
        meta_gradient(model, with_rates, batch, **kw)
    with pytest.raises(ValueError, match=rf"^{algorithm} has no meta-parameters"):
        meta_train(
            model,
            SinusoidTasks(),
            params=with_rates,
            iterations=1,
            progress=False,
            algorithm=algorithm,
        )
    assert meta_gradient(model, model_params(with_rates), batch, **kw).keys() == params.keys()


@pytest.mark.parametrize(
    "algorithm, rate_prefix", [("metasgd", "meta.lr."), ("mamlpp", "meta.step_lr.")]
)
def test_learned_rates_start_at_the_runs_inner_lr_unless_init_lr_is_given(algorithm, rate_prefix):
    model = MLP(hidden=(8,), seed=0)
    params = parameters_of(model)

    def rates(start):
        found = [v for n, v in start.items() if n.startswith(rate_prefix)]
        assert len(found) == len(params)
        return torch.cat([v.reshape(-1) for v in found])

    assert (rates(with_meta_params(algorithm, model, params, inner_lr=0.3)) == 0.3).all()
    assert (
        rates(with_meta_params(algorithm, model, params, inner_lr=0.3, init_lr=0.05)) == 0.05
    ).all()
    assert (rates(with_meta_params(algorithm, model, params)) == 0.01).all()  # no run: 0.01
    with pytest.raises(ValueError, match="inner_lr"):
        with_meta_params(algorithm, model, params, inner_lr=-1.0)
    # meta_train hands its inner_lr over: after one tiny outer step the rates sit near 0.3.
    trained, _ = meta_train(
        model,
        SinusoidTasks(),
        algorithm=algorithm,
        inner_lr=0.3,
        inner_steps=1,
        meta_lr=1e-6,
        iterations=1,
        meta_batch_size=2,
        progress=False,
    )
    assert torch.allclose(rates(trained), torch.full_like(rates(trained), 0.3), atol=1e-5)
    # A hook without an inner_lr keyword is called as before (the toy one in the test above).
