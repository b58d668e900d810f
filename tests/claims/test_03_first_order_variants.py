"""The sentences of course/03_first_order_variants.ipynb that state a run's outcome.

How to add one: see tests/claims/chapter_claims.py. Times are never asserted (they depend on the
machine); the chapter states the time trend as an expectation and asserts only peak memory.
"""

from __future__ import annotations

import pytest
from chapter_claims import probes_fixture  # noqa: F401  (the probes fixture)

pytestmark = pytest.mark.slow

PROBES = {
    "reptile_vs_support_gradient": "cosine",
    "steps": "list(steps)",
    "untrained": "similarity",
    "trained": "trained",
    "toy_curvature": "toy.max_curvature",
    "toy_small": "toy_cosines(toy, inner_steps=1, inner_lrs=[0.01])",
    "toy_large": "toy_cosines(toy, inner_steps=1, inner_lrs=[0.2])",
    "explorer_cosines": "directions_explorer.cosines",
    "peak_mib": "{f'{c.algorithm}|{c.inner_steps}': c.peak_bytes / 2**20 for c in costs}",
    "eval_steps": "list(results['MAML'].steps)",
    "mean": "{label: result.mean for label, result in results.items()}",
    "ci95": "{label: result.ci95 for label, result in results.items()}",
}


def test_reptile_with_one_step_is_the_support_gradient(probes):
    """'With one inner step, Reptile's direction is ... the gradient of the support loss'"""
    assert probes["reptile_vs_support_gradient"] > 1 - 1e-6


def test_directions_are_not_mamls_and_depend_on_steps_and_theta(probes):
    """Key points: 'Their directions are not MAML's (cosine similarity below 1), and how close they
    are depends on the number of inner steps and on where theta is.'"""
    for where in ("untrained", "trained"):
        for algorithm, values in probes[where].items():
            assert max(values) < 0.999, (where, algorithm, values)
            assert max(values) - min(values) > 0.02, (where, algorithm, values)
    gaps = [
        abs(a - b)
        for algorithm in probes["untrained"]
        for a, b in zip(probes["untrained"][algorithm], probes["trained"][algorithm])
    ]
    assert max(gaps) > 0.1, gaps


def test_toy_directions_agree_for_small_alpha_and_part_for_large(probes):
    """'With this chapter's alpha = 0.01 the three agree (cosines 1.000 to three decimals). At
    alpha = 0.2, where alpha times the largest curvature is 0.8, FOMAML's direction is well away
    from MAML's and Reptile's points partly against it.'"""
    assert probes["toy_curvature"] == pytest.approx(4.0)
    for name, values in probes["toy_small"].items():
        assert round(values[0], 3) == 1.0, (name, values)
    large = probes["toy_large"]
    assert large["fomaml"][0] < 0.8 and large["reptile"][0] < 0, large
    assert probes["explorer_cosines"] == pytest.approx({k: v[0] for k, v in large.items()})


def test_peak_memory_grows_for_maml_and_stays_flat_for_first_order(probes):
    """'MAML's peak memory grows about linearly with the number of inner steps ... FOMAML's and
    Reptile's stay nearly flat' (also the key points)."""
    peak = probes["peak_mib"]
    maml = [peak[f"maml|{k}"] for k in (1, 2, 5, 10)]
    assert maml == sorted(maml) and maml[-1] > 4 * maml[0], maml
    per_step = (maml[-1] - maml[0]) / 9
    assert abs(maml[2] - (maml[0] + 4 * per_step)) < 0.25 * maml[2], f"not about linear: {maml}"
    for algorithm in ("fomaml", "reptile"):
        values = [peak[f"{algorithm}|{k}"] for k in (1, 2, 5, 10)]
        assert max(values) < 2 * min(values), (algorithm, values)
        assert max(values) < maml[-1] / 4, (algorithm, values)


def test_learning_curves_comparison(probes):
    """'MAML has the lowest mean loss after one step ..., though its interval still overlaps
    Reptile's ... FOMAML ... ends higher, its intervals clear of MAML's after 5 and 10 steps.
    Reptile ... catches up with more steps: after 10 it is level with MAML.'"""
    mean, ci, steps = probes["mean"], probes["ci95"], probes["eval_steps"]
    assert steps == [0, 1, 5, 10]
    one, five, ten = 1, 2, 3
    assert mean["MAML"][one] < min(mean["FOMAML"][one], mean["Reptile"][one]), mean
    assert mean["MAML"][one] + ci["MAML"][one] > mean["Reptile"][one] - ci["Reptile"][one], (
        "the intervals no longer overlap: the text says they do"
    )
    for i in (five, ten):
        assert mean["FOMAML"][i] - ci["FOMAML"][i] > mean["MAML"][i] + ci["MAML"][i], (i, mean)
    assert abs(mean["Reptile"][ten] - mean["MAML"][ten]) < ci["MAML"][ten] + ci["Reptile"][ten]
    assert mean["Reptile"][one] > mean["MAML"][one], "Reptile must catch up, not lead"
