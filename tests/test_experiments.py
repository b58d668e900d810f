"""Chapter 4: the experiments, their figures, the task-diversity explorer and the practice quiz.

The experiment tests run tiny versions of the chapter's experiments and check
the qualitative outcomes the chapter's text relies on (never wall-clock time).
"""

import json
import math
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

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
from metalearn_lib.teaching.figures import (  # noqa: E402
    plot_diversity_sweep,
    plot_drift,
    plot_family_comparison,
    plot_hyperparameter_grid,
    plot_second_order_cost,
)
from metalearn_lib.quiz import Question  # noqa: E402
from metalearn_lib.teaching.widgets import (  # noqa: E402
    TaskDiversityExplorer,
    limitations_practice,
    practice_feedback,
)

ROOT = Path(__file__).resolve().parents[1]

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
        cost_of_second_order(TINY, algorithms=("maml", "anil"), progress=False)
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
    tasks = ex.DriftingSinusoidTasks(10)
    clocked = ex._Clocked(tasks, clock=lambda t: t + 10, callback=seen.append)
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
    text = result.reading()
    assert "MAML" in text and "FOMAML" in text and "MiB" in text
    figure = plot_second_order_cost(result)
    assert len(figure.axes) == 4 and all(ax.get_xlabel() for ax in figure.axes)


@pytest.mark.slow
def test_diversity_raises_maml_loss_and_plot_marks_a_run():
    sweep = diversity_sweep((0.0, 1.5), settings=SMALL, progress=False)
    (low, _), (high, _) = sweep.maml_losses()
    assert low < 0.5 * high
    assert len(sweep.advantages()) == 2
    text = sweep.reading()
    assert "diversity 0" in text and "diversity 1.5" in text
    loss_ax, adv_ax = plot_diversity_sweep(sweep)
    assert loss_ax.get_xlabel() and adv_ax.get_ylabel()


@pytest.mark.slow
def test_shared_initialization_is_worse_on_sines_than_a_sine_specialist():
    result = dissimilar_families(("sine", "line"), settings=SMALL, progress=False)
    gap, half = result.gap("sine")
    assert gap - half > 0  # shared init worse on sines, beyond the paired 95% interval
    assert set(result.specialists) == {"sine", "line"}
    assert "sine" in result.reading()
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
    assert "forgot" in result.reading()
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
    text = grid.reading()
    assert "NaN" in text and "SGD stalls" in text
    ax = plot_hyperparameter_grid(grid)
    labels = [t.get_text() for t in ax.texts]
    assert any(label.startswith("NaN") for label in labels)
    assert sum("learned" in label for label in labels) == 1


# ---------------------------------------------------------------------------
# The task-diversity explorer, without a browser.
# ---------------------------------------------------------------------------


def _stars(explorer):
    return [
        line for ax in explorer.figure.axes for line in ax.get_lines() if line.get_marker() == "*"
    ]


def test_diversity_explorer_trains_and_marks_the_run():
    sweep = diversity_sweep((0.0, 2.0), settings=TINY, progress=False)
    explorer = TaskDiversityExplorer(sweep)
    assert explorer.run is None and _stars(explorer) == []
    first_image, renders = explorer.image.value, explorer.renders
    explorer.diversity_slider.value = 0.75
    run = explorer.train()
    assert run is explorer.run and run.diversity == 0.75 and run.is_sinusoid
    assert explorer.progress.value == explorer.progress.max == 2 * TINY.iterations
    assert explorer.renders == renders + 1 and explorer.image.value != first_image
    stars = _stars(explorer)
    assert stars and float(stars[0].get_xdata()[0]) == 0.75
    assert float(stars[0].get_ydata()[0]) == pytest.approx(run.loss("maml")[0])
    assert explorer.fits.after.shape[0] == 3
    assert "diversity 0.75" in explorer.summary.value
    assert not explorer.train_button.disabled


def test_diversity_explorer_family_mixture_disables_the_slider():
    explorer = TaskDiversityExplorer(settings=TINY)
    explorer.families_picker.value = ("sine", "line")
    assert explorer.diversity_slider.disabled
    run = explorer.train()
    assert run.families == ("sine", "line") and not run.is_sinusoid
    assert set(explorer.fits.families) <= {"sine", "line"}
    dashed = [
        line for ax in explorer.figure.axes for line in ax.get_lines() if line.get_ls() == "--"
    ]
    assert dashed  # a mixture has no place on the diversity axis: a dashed line
    explorer.families_picker.value = ("sine",)
    assert not explorer.diversity_slider.disabled


def test_diversity_explorer_rejects_bad_arguments():
    with pytest.raises(TypeError, match="sweep"):
        TaskDiversityExplorer(sweep="not a sweep")
    with pytest.raises(ValueError, match="diversity"):
        TaskDiversityExplorer(settings=TINY, diversity=5.0)


# ---------------------------------------------------------------------------
# The practice quiz.
# ---------------------------------------------------------------------------


QUESTIONS = limitations_practice()


def test_practice_questions_are_complete():
    assert len(QUESTIONS) == 4
    for q in QUESTIONS:
        assert isinstance(q, Question) and q.key and q.explanations
        assert set(q.explanations) == set(q.letters)
        for letter, text in q.explanations.items():
            verdict = "True" if letter in q.key else "False"
            assert text.startswith(verdict), (q.question_id, letter)


def _graded_statements() -> list[str]:
    found = []
    for path in (ROOT / "solutions").rglob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                found += [
                    line.split("**", 2)[-1].strip() for line in text.splitlines() if "- **" in line
                ]
    return found


def _words(text: str) -> set[str]:
    return {w.strip(".,:;()").lower() for w in text.split() if len(w) > 3}


def test_practice_statements_differ_from_the_graded_quiz():
    graded = _graded_statements()
    assert graded, "no graded statements found in solutions/"
    for q in QUESTIONS:
        for statement in q.statements:
            mine = _words(statement)
            for other in graded:
                theirs = _words(other)
                similarity = len(mine & theirs) / len(mine | theirs)  # Jaccard index of words
                assert similarity < 0.5, f"{q.question_id}: {statement!r} is close to {other!r}"


def test_practice_feedback_right_partly_right_and_wrong():
    q = QUESTIONS[0]
    right = practice_feedback(q, set(q.key))
    assert right.ok and "100%" in right.text
    assert all(q.explanations[x] in right.text for x in q.letters)
    assert "WRONG" not in right.text
    one_missing = set(sorted(q.key)[1:])
    partly = practice_feedback(q, one_missing)
    n = len(q.letters)
    assert partly.ok and f"{(n - 2) / n:.0%}" in partly.text and partly.text.count("WRONG") == 1
    everything_wrong = set(q.letters) - q.key
    assert "0%" in practice_feedback(q, everything_wrong).text
    assert q.score(one_missing) == pytest.approx((n - 2) / n)


@pytest.mark.parametrize(
    "answer, words",
    [
        ("AC", "not the string"),
        (["A", "C"], "curly braces"),
        (3, "set of letters"),
        ({"a", "c"}, "capital"),
        ({"A", "Z"}, "not a statement"),
        ({"AC"}, "own quotes"),
        (set(), "empty"),
    ],
)
def test_practice_feedback_explains_format_problems(answer, words):
    feedback = practice_feedback(QUESTIONS[1], answer)
    assert not feedback.ok
    assert feedback.text.startswith("**Answer format:**") and words in feedback.text


def test_practice_feedback_when_not_answered_and_bad_question():
    feedback = practice_feedback(QUESTIONS[2], None)
    assert not feedback.ok and "Not answered yet" in feedback._repr_markdown_()
    with pytest.raises(TypeError, match="question"):
        practice_feedback("Q1", {"A"})
    graded_style = Question("Which?", ["one", "two"])
    with pytest.raises(ValueError, match="no key"):
        practice_feedback(graded_style, {"A"})
