"""Fast tests of metalearn_lib.grading, the checks behind the assignments' test cells."""

import sys
import warnings

import torch

from metalearn_lib import adapt, meta_gradient
from metalearn_lib.grading import check_adapt, check_meta_gradient, check_sgd_step, params_match


def _sgd(params, grads, lr):
    return {n: p - lr * grads[n] for n, p in params.items()}


def test_check_sgd_step_accepts_right_and_rejects_wrong_or_in_place():
    assert check_sgd_step(_sgd, seed=3, shapes=((2, 3), (4,), ()))
    assert not check_sgd_step(
        lambda p, g, lr: {n: v + lr * g[n] for n, v in p.items()}, seed=3, shapes=((2,),)
    )

    def in_place(params, grads, lr):
        for n in params:
            params[n] -= lr * grads[n]
        return params

    assert not check_sgd_step(in_place, seed=3, shapes=((2,),))


def test_check_adapt_wants_the_values_and_the_second_order_graph():
    def library(model, params, x, y, *, steps, lr):
        return adapt(model, params, x, y, steps=steps, lr=lr)

    def first_order(model, params, x, y, *, steps, lr):
        return adapt(model, params, x, y, steps=steps, lr=lr, first_order=True)

    assert check_adapt(library, seed=0, hidden=(8, 8), steps=2, lr=0.05)
    assert check_adapt(library, seed=1, hidden=(5,), steps=0, lr=0.05)
    # Same values, but the graph through the inner steps is cut: not MAML's inner loop.
    assert not check_adapt(first_order, seed=0, hidden=(8, 8), steps=2, lr=0.05)
    assert not check_adapt(first_order, seed=0, hidden=(8, 8), steps=1, lr=0.05)


def test_check_meta_gradient_matches_each_algorithm_only():
    for algorithm in ("maml", "fomaml", "reptile"):

        def mine(model, params, batch, *, inner_steps, inner_lr, algorithm=algorithm):
            return meta_gradient(
                model,
                params,
                batch,
                algorithm=algorithm,
                inner_steps=inner_steps,
                inner_lr=inner_lr,
            )

        assert check_meta_gradient(mine, algorithm, seed=2, hidden=(6,), tasks=3, inner_steps=2)
        other = "fomaml" if algorithm != "fomaml" else "maml"
        assert not check_meta_gradient(mine, other, seed=2, hidden=(6,), tasks=3, inner_steps=2)


def test_checks_never_raise_print_or_accept_tricks(capsys):
    class AlwaysEqual:
        def __eq__(self, other):
            return True

    def noisy(params, grads, lr):
        print("debug", file=sys.stderr)
        warnings.warn("careful", stacklevel=1)
        raise RuntimeError("boom")

    assert not check_sgd_step(noisy, seed=0, shapes=((2,),))
    fake = lambda p, g, lr: {n: AlwaysEqual() for n in p}  # noqa: E731
    assert not check_sgd_step(fake, seed=0, shapes=((2,),))
    assert not check_sgd_step(lambda p, g, lr: AlwaysEqual(), seed=0, shapes=((2,),))
    assert capsys.readouterr() == ("", "")
    expected = {"w": torch.ones(2, dtype=torch.float64)}
    assert params_match({"w": torch.ones(2)}, expected)
    assert not params_match({"w": torch.ones(3)}, expected)
    assert not params_match({"w": torch.ones(2), "b": torch.ones(1)}, expected)


def test_record_checks_reuses_the_visible_checks_outputs_and_runs_hidden_cases(monkeypatch):
    """A graded test records the visible cases' outputs from the friendly check, frozen when
    it ran (a later change to a returned tensor changes nothing), and runs the others."""
    from metalearn_lib.grading import coding

    recorded = []
    monkeypatch.setattr(coding, "emit_record", lambda cell, kind, data: recorded.append(data))
    calls, returned = [], []

    def fomaml(model, params, batch, *, inner_steps, inner_lr):
        calls.append(inner_steps)
        out = meta_gradient(
            model, params, batch, algorithm="fomaml", inner_steps=inner_steps, inner_lr=inner_lr
        )
        returned.append(out)
        return out

    visible = {"algorithm": "fomaml", "seed": 0, "hidden": [6], "tasks": 2, "inner_steps": 1}
    hidden = {**visible, "seed": 5, "inner_steps": 2}
    assert check_meta_gradient(fomaml, "fomaml", seed=0, hidden=(6,), tasks=2, inner_steps=1)
    assert calls == [1]
    for tensor in returned[0].values():
        tensor.add_(1.0)  # after the check: must not reach the record
    coding.record_checks("test_x", fomaml, "meta_gradient", [visible, hidden])
    assert calls == [1, 2]  # the visible case ran once, the hidden case once
    (data,) = recorded
    for case, entry in zip([visible, hidden], data):
        want = coding.expected_outputs("meta_gradient", case)
        assert coding.outputs_match(entry["outputs"], want)
    # Another function object with the same cases runs them itself.
    coding.record_checks("test_x", lambda *a, **k: fomaml(*a, **k), "meta_gradient", [visible])
    assert calls == [1, 2, 1]
