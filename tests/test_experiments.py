"""Chapter 4's experiments (and the figures that draw their results).

The experiment tests run tiny versions of the chapter's experiments and check
the qualitative outcomes the chapter's text relies on (never wall-clock time).
"""

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from metalearn_lib.tasks import DriftingSinusoidTasks  # noqa: E402
from metalearn_lib.teaching import experiments as ex  # noqa: E402
from metalearn_lib.teaching.experiments import (  # noqa: E402
    Settings,
    cost_of_second_order,
    dissimilar_families,
    diversity_sweep,
    hyperparameter_grid,
    nonstationary_drift,
    train_at_diversity,
)
from metalearn_lib.teaching.figures_limitations import (  # noqa: E402
    plot_diversity_sweep,
    plot_drift,
    plot_family_comparison,
    plot_hyperparameter_grid,
    plot_second_order_cost,
)

#: Tiny recipe: every run takes well under a second.
TINY = Settings(iterations=4, meta_batch_size=2, eval_tasks=10, eval_steps=(0, 1), eval_queries=10)
#: Small recipe for the qualitative checks.
SMALL = Settings(iterations=80, meta_batch_size=8, eval_tasks=60, eval_queries=30)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------------------
# Argument checks.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(iterations=0), ValueError, "iterations"),
        (dict(iterations=2.5), TypeError, "iterations"),
        (dict(inner_lr=-1.0), ValueError, "inner_lr"),
        (dict(meta_optimizer="rmsprop"), ValueError, "meta_optimizer"),
        (dict(eval_steps=(5, 1)), ValueError, "eval_steps"),
        (dict(hidden=[40]), TypeError, "hidden"),
    ],
)
def test_settings_reject_bad_values(kwargs, error, words):
    with pytest.raises(error, match=words):
        Settings(**kwargs)


def test_experiments_reject_bad_arguments():
    with pytest.raises(ValueError, match="algorithms"):
        cost_of_second_order(TINY, algorithms=("maml", "protomaml"), progress=False)
    with pytest.raises(ValueError, match="increasing"):
        diversity_sweep((1.0, 0.5), settings=TINY, progress=False)
    with pytest.raises(ValueError, match="diversities"):
        diversity_sweep((0.0, -1.0), settings=TINY, progress=False)
    with pytest.raises(ValueError, match="at least two"):
        dissimilar_families(("sine",), settings=TINY, progress=False)
    with pytest.raises(ValueError, match="families"):
        dissimilar_families(("sine", "cosine"), settings=TINY, progress=False)
    with pytest.raises(ValueError, match="checkpoint_every"):
        nonstationary_drift(settings=TINY, iterations=10, checkpoint_every=3, progress=False)
    with pytest.raises(ValueError, match="meta_optimizers"):
        hyperparameter_grid(settings=TINY, meta_optimizers=("adam", "lbfgs"), progress=False)
    with pytest.raises(TypeError, match="settings"):
        diversity_sweep(settings={"iterations": 3}, progress=False)
    with pytest.raises(ValueError, match="stall_ratio"):
        hyperparameter_grid(settings=TINY, stall_ratio=3.0, diverge_ratio=2.0, progress=False)


def test_clocked_tasks_pass_the_clock_and_report_progress():
    seen = []
    tasks = DriftingSinusoidTasks(10)
    clocked = ex.ClockedTasks(tasks, clock=lambda t: t + 10, callback=seen.append)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a = clocked.sample(3, 4, generator=g1, iteration=2)
    b = tasks.sample(3, 4, generator=g2, iteration=12)
    assert seen == [2]
    assert torch.equal(a.support_y, b.support_y)
    assert clocked.x_range == tasks.x_range


def test_same_settings_same_numbers():
    r1 = train_at_diversity(0.5, settings=TINY)
    r2 = train_at_diversity(0.5, settings=TINY)
    assert r1.maml.history.loss == r2.maml.history.loss
    assert torch.equal(r1.maml.evaluation.losses, r2.maml.evaluation.losses)
    assert torch.equal(r1.pretrain.evaluation.losses, r2.pretrain.evaluation.losses)


# ---------------------------------------------------------------------------
# What the chapter's text claims, on small runs.
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_second_order_costs_memory_that_first_order_does_not():
    result = cost_of_second_order(
        Settings(iterations=10, meta_batch_size=4, eval_tasks=20),
        cost_steps=(2, 6),
        repeats=1,
        progress=False,
    )
    maml_2, maml_6 = result.cost("maml", 2), result.cost("maml", 6)
    fo_2, fo_6 = result.cost("fomaml", 2), result.cost("fomaml", 6)
    assert maml_6.peak_bytes > 2 * maml_2.peak_bytes  # grows with the inner steps
    assert fo_6.peak_bytes < 1.3 * fo_2.peak_bytes  # stays flat
    assert maml_6.peak_bytes > 2 * fo_6.peak_bytes
    assert set(result.runs) == {"maml", "fomaml", "reptile"}
    d, half = result.difference("fomaml")
    assert half > 0 and result.halfway_loss() > 0
    table = result.summary()
    assert table.count("\n") == 4 and "| FOMAML |" in table and "→" in table
    figure = plot_second_order_cost(result)
    assert len(figure.axes) == 4 and all(ax.get_xlabel() for ax in figure.axes)


@pytest.mark.slow
def test_diversity_raises_maml_loss_and_plot_marks_a_run():
    sweep = diversity_sweep((0.0, 1.5), settings=SMALL, progress=False)
    (low, _), (high, _) = sweep.maml_losses()
    assert low < 0.5 * high
    assert len(sweep.advantages()) == 2
    table = sweep.summary()
    assert "| 0 |" in table and "| 1.5 |" in table
    loss_ax, adv_ax = plot_diversity_sweep(sweep)
    assert loss_ax.get_xlabel() and adv_ax.get_ylabel()


@pytest.mark.slow
def test_shared_initialization_is_worse_on_sines_than_a_sine_specialist():
    result = dissimilar_families(("sine", "line"), settings=SMALL, progress=False)
    gap, half = result.gap("sine")
    assert gap - half > 0  # shared init worse on sines, beyond the paired 95% interval
    assert set(result.specialists) == {"sine", "line"}
    assert "| sine |" in result.summary()
    shared, own = result.fits["sine"]
    assert shared.after.shape == own.after.shape == (1, 200)
    figure = plot_family_comparison(result)
    assert len(figure.axes) == 3


@pytest.mark.slow
def test_drift_makes_the_initialization_forget_early_tasks():
    result = nonstationary_drift(
        settings=SMALL, warmup=80, horizon=40, iterations=160, checkpoint_every=40, progress=False
    )
    early, late = result.curve("early"), result.curve("late")
    at_warmup = result.checkpoints.index(80)
    assert result.checkpoints == [0, 40, 80, 120, 160]
    assert early[at_warmup] < early[0]  # learned the early tasks first
    rise, half = result.forgetting()
    assert rise - half > 0 and early[-1] == pytest.approx(early[at_warmup] + rise)  # then forgot
    assert late[-1] < late[at_warmup]  # while learning the late ones
    assert "| 160 |" in result.summary()
    assert set(result.fits) == {"early", "late"} and 0 <= result.fit_task < 8
    figure = plot_drift(result)
    assert len(figure.axes) == 3


@pytest.mark.slow
def test_grid_shows_divergence_as_nan_and_sgd_stalling():
    grid = hyperparameter_grid(
        settings=Settings(iterations=30, meta_batch_size=8, eval_tasks=50),
        inner_steps=(1,),
        inner_lrs=(0.03, 3.0),
        meta_batch_sizes=(8,),
        iterations=30,
        progress=False,
    )
    assert grid.row_labels() == ["1 inner step, lr 0.03", "1 inner step, lr 3"]
    assert grid.status[0] == ["learned", "stalled"]  # Adam learns, SGD with Adam's lr stalls
    assert grid.status[1] == ["diverged", "diverged"]
    assert math.isnan(grid.final_loss[1, 1].item())  # SGD blew up to NaN
    assert grid.untrained_loss[1] > grid.diverge_ratio * grid.reference_loss
    assert grid.best() == (0, 0)
    table = grid.summary()
    assert "(diverged)" in table and "1 learned, 1 stalled, 2 diverged" in table
    ax = plot_hyperparameter_grid(grid)
    labels = [t.get_text() for t in ax.texts]
    assert any(label.startswith("NaN") for label in labels)
    assert sum("learned" in label for label in labels) == 1
