"""The sentences of course/01_few_shot_tasks.ipynb that state a run's outcome.

How to add one: see tests/claims/chapter_claims.py.
"""

from __future__ import annotations

import pytest
from chapter_claims import probes_fixture  # noqa: F401  (the probes fixture)

pytestmark = pytest.mark.slow

PROBES = {
    "formula_gap": "float(gap)",
    "average_task_loss": "average_task_loss",
    "close_fits": "close_fits",
    "training_loss": "sum(history.loss[-100:]) / 100",
    "prediction_vs_average": "float(((predict(model, pretrained, x.float())[:, 0].double() "
    "- average) ** 2).mean())",
    "steps": "list(result.steps)",
    "mean": "result.mean",
}


def test_the_sampled_average_matches_the_formula(probes):
    """'Let us check the derivation against 100,000 sampled tasks' (-1.62 cos x)."""
    assert probes["formula_gap"] < 0.05, probes["formula_gap"]


def test_the_average_task_fits_almost_none_of_the_tasks(probes):
    """'The average task is a gentle curve that fits almost none of the tasks.'"""
    assert probes["close_fits"] < 0.05, probes["close_fits"]


def test_pretraining_ends_close_to_the_best_single_function(probes):
    """'The pretrained network cannot do better than the best single function, and it ends up close
    to it. Its prediction is close to the average task' (key points: 'learns about that average').
    """
    best, trained = probes["average_task_loss"], probes["training_loss"]
    assert abs(trained - best) < 0.1 * best, (trained, best)
    assert probes["prediction_vs_average"] < 0.05 * best, probes["prediction_vs_average"]


def test_fine_tuning_helps_but_slowly(probes):
    """'Fine-tuning from 10 points helps, but slowly': the loss falls with every step count, yet
    after 10 steps it is still above half the best single function's, and after 100 above 30%."""
    mean, best = probes["mean"], probes["average_task_loss"]
    assert probes["steps"] == [0, 1, 10, 100]
    assert mean[0] > mean[1] > mean[2] > mean[3], mean
    assert mean[2] > 0.5 * best and mean[3] > 0.3 * best, (mean, best)
