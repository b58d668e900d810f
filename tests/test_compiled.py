"""metalearn_lib.compiled: the torch.compile fast path agrees with eager, and falls back cleanly.

Compiling is slow (tens of seconds per graph on a cold cache), so the tests
that compile are few and marked slow: one compiled function per model checks
every registered algorithm in float32 and float64 at once, and one short
meta_train run checks the compiled training loop against the eager one.
"""

import pytest
import torch
import torch.nn.functional as F
from conftest import ScaledTanhNet

import metalearn_lib.compiled as compiled
from metalearn_lib import (
    ALGORITHMS,
    MLP,
    ConvNet,
    SinusoidTasks,
    TaskBatch,
    meta_gradient,
    meta_gradient_and_loss,
    meta_train,
    parameters_of,
)
from metalearn_lib.algorithms import with_meta_params
from metalearn_lib.compiled import MetaStep, compile_pays, compile_unavailable_reason

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def relative_difference(a: dict, b: dict) -> float:
    """Largest entry of |a - b| relative to the largest entry of |b|, over the whole dict.

    One scale for the whole direction: a tensor whose true gradient is zero
    (a bias before batch norm) holds only rounding noise, which no per-tensor
    relative measure can judge.
    """
    top = max(v.abs().max() for v in b.values()).clamp_min(1e-30)
    return max((a[k] - b[k]).abs().max() for k in b).item() / top.item()


def regression_case(model_fn, dtype):
    model = model_fn().to(dtype)
    batch = SinusoidTasks().sample(6, 5, 7, generator=torch.Generator().manual_seed(1), dtype=dtype)
    return model, {n: p.detach() for n, p in parameters_of(model).items()}, batch, F.mse_loss


def classification_case(dtype):
    model = ConvNet(out_features=3, hidden=4, norm="batch", seed=0).to(dtype)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(2, 6, 1, 8, 8, generator=gen, dtype=dtype)
    y = torch.randint(0, 3, (2, 6), generator=gen)
    batch = TaskBatch(x, y, x.flip(1), y.flip(1))
    return model, {n: p.detach() for n, p in parameters_of(model).items()}, batch, F.cross_entropy


CASES = {
    "mlp": lambda dtype: regression_case(lambda: MLP(hidden=(16, 16), seed=0), dtype),
    "tanh_with_buffer": lambda dtype: regression_case(ScaledTanhNet, dtype),
    "convnet": classification_case,
}


# Each model with one algorithm, so every model and every registered algorithm is
# compiled at least once while the number of (slow) compiles stays small.
PAIRS = [
    ("mlp", "maml"),
    ("tanh_with_buffer", "fomaml"),
    ("convnet", "reptile"),
    ("mlp", "imaml"),
    ("mlp", "anil"),
    ("mlp", "metasgd"),
    ("mlp", "mamlpp"),
]
# iMAML's conjugate gradient amplifies float32 rounding (measured 2e-5 relative at the
# paper's MLP with 5 CG steps); float64 still has to agree to 1e-10.
LOOSER = {("imaml", torch.float32): 1e-4}


def test_every_registered_algorithm_is_compiled_by_a_test():
    assert {algorithm for _, algorithm in PAIRS} == set(ALGORITHMS)


@pytest.mark.slow
@pytest.mark.skipif(compile_unavailable_reason() is not None, reason="torch.compile unavailable")
@pytest.mark.parametrize("case, algorithm", PAIRS)
def test_compiled_step_equals_eager(case, algorithm):
    """The library's compiled step, float32 and float64, against eager."""
    inner_lr = 0.3 if case == "convnet" else 0.05
    off = []
    for dtype in (torch.float32, torch.float64):  # one compiled step, recompiled per dtype
        model, params, batch, loss_fn = CASES[case](dtype)
        params = with_meta_params(algorithm, model, params, inner_lr=inner_lr)
        step = compiled.compiled_step(model, algorithm, 2, inner_lr, loss_fn, {})
        direction, loss = step(
            params, batch.support_x, batch.support_y, batch.query_x, batch.query_y, {}
        )
        eager, eager_loss = meta_gradient_and_loss(
            model,
            params,
            batch,
            algorithm=algorithm,
            inner_steps=2,
            inner_lr=inner_lr,
            loss_fn=loss_fn,
            compile=False,
        )
        assert direction.keys() == params.keys()
        errors = (
            relative_difference(direction, eager),
            abs(loss.item() - eager_loss.item()) / abs(eager_loss.item()),
        )
        if max(errors) >= LOOSER.get((algorithm, dtype), TOLERANCE[dtype]):
            off.append((str(dtype), errors))
        # meta_gradient(compile=None) reuses the step compiled for this configuration.
        reused = meta_gradient(
            model,
            params,
            batch,
            algorithm=algorithm,
            inner_steps=2,
            inner_lr=inner_lr,
            loss_fn=loss_fn,
        )
        assert all(torch.equal(reused[k], direction[k]) for k in direction)
    assert not off, off


@pytest.mark.slow
@pytest.mark.skipif(compile_unavailable_reason() is not None, reason="torch.compile unavailable")
def test_compiled_meta_train_has_the_eager_history_and_is_reused(capsys):
    def run(compile):
        return meta_train(
            MLP(hidden=(16, 16), seed=0).double(),
            SinusoidTasks(),
            algorithm="maml",
            inner_steps=2,
            meta_batch_size=5,
            iterations=6,
            seed=3,
            progress=False,
            compile=compile,
        )

    eager, fast = run(False), run(True)
    assert eager.history.settings["compile"] == "eager" and eager.history.compile_seconds == 0
    assert fast.history.settings["compile"] == "compiled" and fast.history.compile_seconds > 0
    for a, b in zip(eager.history.loss, fast.history.loss):
        assert abs(a - b) <= 1e-10 * abs(a)
    assert relative_difference(fast.params, eager.params) < 1e-10
    assert capsys.readouterr().err == ""  # compiling writes nothing to stderr


def test_compile_must_be_a_bool_or_none():
    model = MLP(hidden=(4,), seed=0)
    with pytest.raises(TypeError, match=r"compile must be True, False or None \(automatic\)"):
        meta_train(model, SinusoidTasks(), iterations=1, progress=False, compile="yes")
    batch = SinusoidTasks().sample(2, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match="compile must be True, False or None"):
        meta_gradient(
            model,
            parameters_of(model),
            batch,
            algorithm="maml",
            inner_steps=1,
            inner_lr=0.1,
            compile=1,
        )


def train_a_little(compile, progress=False):
    return meta_train(
        MLP(hidden=(4,), seed=0),
        SinusoidTasks(),
        iterations=3,
        meta_batch_size=2,
        progress=progress,
        compile=compile,
    )


@pytest.fixture
def no_compiler(monkeypatch):
    """No C++ compiler, through inductor's own patch (a plain monkeypatch of its config
    is undone by deleting the setting, which breaks every later compile in the process)."""
    monkeypatch.delenv("CXX", raising=False)
    with torch._inductor.config.patch({"cpp.cxx": ("no-such-c++-compiler",)}):
        yield


def test_without_a_compiler_training_falls_back_with_one_message(no_compiler, monkeypatch, capsys):
    monkeypatch.setattr(compiled, "_SHOWN", set())
    reason = compile_unavailable_reason("cpu")
    assert "no C++ compiler found" in reason
    eager = train_a_little(False)
    quiet = train_a_little(True)  # progress=False: nothing printed, the note is kept
    assert capsys.readouterr().out == ""
    assert quiet.history.settings["compile"] == "eager"
    assert quiet.history.settings["compile_note"] == compiled.fallback_message(reason)
    assert quiet.history.loss == eager.history.loss
    train_a_little(True, progress=True)
    train_a_little(True, progress=True)
    captured = capsys.readouterr()
    assert captured.out.count("cannot compile the meta-step here") == 1
    assert "cannot compile" not in captured.err


def test_a_failing_compile_falls_back_to_eager(monkeypatch, capsys):
    def broken_compile(fn, **kwargs):
        def fail(*args):
            raise RuntimeError("inductor exploded\nlong traceback")

        return fail

    monkeypatch.setattr(compiled.torch, "compile", broken_compile)
    monkeypatch.setattr(compiled, "_SHOWN", set())
    monkeypatch.setattr(compiled, "compile_unavailable_reason", lambda device: None)
    eager = train_a_little(False)
    result = train_a_little(True, progress=True)
    assert result.history.loss == eager.history.loss
    assert result.history.settings["compile"] == "eager"
    note = result.history.settings["compile_note"]
    assert note.endswith("running it eagerly instead (same results, slower).")
    assert "compiling failed: RuntimeError: inductor exploded" in note
    assert capsys.readouterr().out.count("cannot compile") == 1


def test_automatic_choice_compiles_only_long_runs(monkeypatch):
    assert not compile_pays(100, 0.004)
    assert compile_pays(10**6, 0.004)
    short = train_a_little(None)
    assert short.history.settings["compile"] == "eager"
    decided = []
    monkeypatch.setattr(compiled, "compile_pays", lambda n, t: decided.append((n, t)) or False)
    meta_train(MLP(hidden=(4,), seed=0), SinusoidTasks(), iterations=10, progress=False)
    # Timed iterations 1..PROBE, then one decision about the rest of the run.
    ((remaining, seconds),) = decided
    assert remaining == 10 - MetaStep.PROBE - 1 and seconds > 0


def test_options_that_change_per_call_are_never_frozen_into_a_compiled_step(monkeypatch):
    """Objects a compiled step could freeze run eagerly, with the one message."""
    traced = []
    monkeypatch.setattr(compiled.torch, "compile", lambda fn, **kw: traced.append(fn) or fn)
    monkeypatch.setattr(compiled, "_SHOWN", set())
    assert compiled.options_unfit_reason({"lam": 2.0, "head": "net.4", "w": [0.5, 0.5]}) is None
    assert compiled.options_unfit_reason({"w": torch.ones(2)}) is None  # a tensor input
    mystery = {"step_weights": iter([[0.5, 0.5]] * 5)}  # changes per call, no for_call
    assert "['step_weights']" in compiled.options_unfit_reason(mystery)
    with pytest.raises(compiled.CompileFailed, match="step_weights"):
        compiled.compiled_step(MLP(hidden=(4,), seed=0), "mamlpp", 2, 0.01, F.mse_loss, mystery)


@pytest.mark.slow
@pytest.mark.skipif(compile_unavailable_reason() is not None, reason="torch.compile unavailable")
def test_annealed_step_weights_go_into_the_compiled_step_as_an_input():
    """MAML++'s weights move at every update: compiled, they are a tensor input, not a constant.

    The compiled run matches the eager one update by update (float64) while the
    weights move, and the annealer is asked exactly once per update.
    """
    from metalearn_lib.variants import AnnealedStepWeights

    def run(compile):
        weights = AnnealedStepWeights(3)
        result = meta_train(
            MLP(hidden=(8,), seed=0).double(),
            SinusoidTasks(),
            algorithm="mamlpp",
            options={"step_weights": weights},
            inner_steps=2,
            iterations=5,
            meta_batch_size=3,
            progress=False,
            compile=compile,
        )
        return result, weights

    (eager, eager_weights), (fast, fast_weights) = run(False), run(True)
    assert fast.history.settings["compile"] == "compiled", str(fast.history.settings)
    assert eager_weights.calls == fast_weights.calls == 5  # one call per meta-update
    for a, b in zip(eager.history.loss, fast.history.loss, strict=True):
        assert abs(a - b) <= 1e-10 * abs(a)
    assert relative_difference(fast.params, eager.params) < 1e-10
    model, params, batch, loss_fn = regression_case(lambda: MLP(hidden=(4,), seed=0), torch.float32)
    once = AnnealedStepWeights(4)
    meta_gradient(
        model,
        params,
        batch,
        algorithm="mamlpp",
        inner_steps=2,
        inner_lr=0.01,
        loss_fn=loss_fn,
        compile=True,
        step_weights=once,
    )
    assert once.calls == 1
