"""Chapter 4's added experiments: stability, non-convergence, architecture cost, meta-lr tuning,
their figures, and chapter 4's self-check exercises.

Tiny settings: each run takes about a second. The qualitative outcomes the chapter's text
relies on are asserted on the chapter's own run (tests/claims/test_04_limitations_of_maml.py).
"""

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from metalearn_lib.algorithms import meta_gradient  # noqa: E402
from metalearn_lib.models import MLP, parameters_of  # noqa: E402
from metalearn_lib.tasks import SinusoidTasks  # noqa: E402
from metalearn_lib.teaching import exercises_limitations as ex4  # noqa: E402
from metalearn_lib.teaching.experiments import (  # noqa: E402
    Settings,
    architecture_cost_sweep,
    dissimilar_distributions,
    hyperparameter_grid,
    largest_curvature,
    maml_stability,
    tune_meta_lr,
)
from metalearn_lib.teaching.figures_limitations_extra import (  # noqa: E402
    plot_architecture_cost,
    plot_meta_lr_tuning,
    plot_nonconvergence,
    plot_stability,
)

TINY = Settings(iterations=6, meta_batch_size=2, eval_tasks=12, eval_steps=(0, 1), eval_queries=10)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_largest_curvature_matches_the_explicit_hessian():
    model = MLP(hidden=(5,), seed=0)
    params = parameters_of(model)
    batch = SinusoidTasks().sample(2, 5, generator=torch.Generator().manual_seed(1))
    found = largest_curvature(model, params, batch.support_x, batch.support_y, iterations=40)
    names = list(params)
    shapes = [params[n].shape for n in names]
    flat = torch.cat([params[n].detach().reshape(-1) for n in names])
    for i in range(2):

        def loss(v, i=i):
            chunks, start = {}, 0
            for n, shape in zip(names, shapes):
                size = math.prod(shape)
                chunks[n] = v[start : start + size].reshape(shape)
                start += size
            out = torch.func.functional_call(model, chunks, (batch.support_x[i],))
            return ((out - batch.support_y[i]) ** 2).mean()

        eigenvalues = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, flat))
        top = eigenvalues.abs().max().item()
        assert abs(found[i].item()) == pytest.approx(top, rel=1e-2)


def test_stability_records_curvature_blown_tasks_and_claims():
    result = maml_stability(
        TINY,
        inner_lr=0.5,
        iterations=4,
        checkpoint_every=2,
        eval_steps=(1, 5),
        probe_tasks=3,
        power_iterations=5,
        progress=False,
    )
    assert result.checkpoints == [0, 2, 4]
    assert result.probe_curvature.shape == (3, 3)
    assert result.test_curvature.shape == (12,)
    claims = result.claims()
    assert claims["limit"] == pytest.approx(4.0)
    assert claims["blown"] == len(result.blown)
    assert claims["blown"] >= claims["blown_at_1"]
    # alpha = 0.5 is far too large for the untrained network: some task blows up, and is drawn.
    assert result.blown and len(result.drawn) >= 1
    task = result.drawn[0]
    assert task.predictions.shape == (2, len(task.x))
    assert plot_stability(result) is not None
    assert "share above 2/alpha" in result.summary()
    with pytest.raises(ValueError, match="eval_steps"):
        maml_stability(TINY, eval_steps=(5, 1), progress=False)
    with pytest.raises(ValueError, match="inner_lr"):
        maml_stability(TINY, inner_lr=-1.0, progress=False)


def test_dissimilar_distributions_report_ratios_and_outside_tasks():
    result = dissimilar_distributions(TINY, window=2, progress=False)
    claims = result.claims()
    assert set(result.histories) == {"paper sines", "amplitudes 0.1 to 50", "frequencies 0.5 to 4"}
    for name in result.histories:
        assert claims[name]["training_ratio"] > 0
        assert len(claims[name]["relative"]) == 2
    # The wide amplitudes make the untrained loss about (50/5)^2 times larger.
    assert claims["amplitudes 0.1 to 50"]["reference"] > 20 * claims["paper sines"]["reference"]
    assert "outside: inputs 5 to 10" in claims
    assert plot_nonconvergence(result) is not None
    assert "outside its range" in result.summary()
    with pytest.raises(ValueError, match="window"):
        dissimilar_distributions(TINY, window=4, progress=False)
    with pytest.raises(ValueError, match="distributions"):
        dissimilar_distributions(TINY, distributions={}, progress=False)


def test_architecture_cost_memory_grows_with_width_and_maml_needs_more():
    result = architecture_cost_sweep(
        TINY, depths=(1, 2), widths=(10, 40), repeats=1, inner_steps=2, progress=False
    )
    claims = result.claims()
    assert claims["maml_memory_ratio_width"] > 1
    assert claims["maml_memory_ratio_depth"] > 1
    assert all(r > 1 for r in claims["memory_maml_over_fomaml_width"])
    assert result.parameters[(2, 40)] > result.parameters[(2, 10)]
    assert plot_architecture_cost(result) is not None
    assert "peak MiB" in result.summary()
    with pytest.raises(ValueError, match="axis"):
        result.ratio("height", "milliseconds")
    with pytest.raises(ValueError, match="algorithms"):
        architecture_cost_sweep(TINY, algorithms=("maml", "nope"), progress=False)


def test_tuning_picks_the_best_finite_rate_and_the_grid_uses_it():
    tuning = tune_meta_lr(settings=TINY, rates=(0.001, 0.03), iterations=3, progress=False)
    claims = tuning.claims()
    for opt in ("adam", "sgd"):
        losses = [v if v is not None else math.inf for v in claims[f"{opt}_losses"]]
        assert claims[f"{opt}_best_rate"] == tuning.rates[losses.index(min(losses))]
    assert plot_meta_lr_tuning(tuning) is not None
    grid = hyperparameter_grid(
        settings=TINY,
        inner_steps=(1,),
        inner_lrs=(0.03,),
        meta_batch_sizes=(2,),
        iterations=2,
        meta_lrs={"adam": 0.02, "sgd": 0.5},
        progress=False,
    )
    assert grid.meta_lrs == {"adam": 0.02, "sgd": 0.5}
    assert "SGD (lr 0.5)" in grid.summary()
    assert (
        grid.claims()["count_learned"]
        + grid.claims()["count_stalled"]
        + grid.claims()["count_diverged"]
        == 2
    )
    with pytest.raises(ValueError, match="meta_lrs"):
        hyperparameter_grid(settings=TINY, meta_lrs={"rmsprop": 0.1}, progress=False)
    with pytest.raises(ValueError, match="meta_optimizers"):
        tune_meta_lr(settings=TINY, meta_optimizers=("lbfgs",), progress=False)


def test_chapter4_exercises_accept_the_solutions_and_reject_wrong_answers(capsys):
    ex4.reset_progress()
    ex4.check("4.1", 1024)
    assert ex4.solved("4.1")
    ex4.check("4.1", -2)
    assert not ex4.solved("4.1")
    assert "ONE step" in capsys.readouterr().out
    model, theta, batch = ex4.group_setup()
    kwargs = dict(algorithm="maml", inner_steps=1, inner_lr=0.01)
    g1 = meta_gradient(model, theta, batch[:3], **kwargs)
    g2 = meta_gradient(model, theta, batch[3:], **kwargs)
    ex4.check("4.2", {n: 0.3 * g1[n] + 0.7 * g2[n] for n in g1})
    assert ex4.solved("4.2")
    ex4.check("4.2", {n: 0.5 * g1[n] + 0.5 * g2[n] for n in g1})
    assert not ex4.solved("4.2")
    assert "plain average" in capsys.readouterr().out
    for name in ("4.3", "4.4"):
        ex4.check(name, "b")
        assert ex4.solved(name)
        ex4.check(name, "a")
        assert not ex4.solved(name)
    ex4.check("4.1", "many")
    assert "must be a number" in capsys.readouterr().out
    ex4.reset_progress()


@pytest.mark.slow
def test_stability_effect_depends_on_the_seed():
    """Chapter 4, section 6: 'with seeds 1 and 2 ... this short run ends with no blown-up task,
    because after 800 iterations their curvature has not yet climbed back above 2/alpha'
    (seed 1 checked here; seed 0 is the chapter's own run, guarded by its claim test)."""
    from dataclasses import replace

    from metalearn_lib.teaching.experiments import CHAPTER

    result = maml_stability(replace(CHAPTER, model_seed=1, seed=1), progress=False)
    claims = result.claims()
    assert claims["blown"] == 0
    assert claims["last_probe_share_above"] == 0.0
