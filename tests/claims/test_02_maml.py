"""The sentences of course/02_maml.ipynb that state a run's outcome.

How to add one: see tests/claims/chapter_claims.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chapter_claims import committed_benchmark, probes_fixture  # noqa: F401

from metalearn_lib.compiled import compile_unavailable_reason

pytestmark = pytest.mark.slow

PROBES = {
    "hessian_symmetric": "bool(torch.allclose(hessian, hessian.T))",
    "difference": "{name: float((flatten(g) - reference).abs().max()) for name, g in "
    "[('formula', g_formula), ('numeric', g_numeric), ('first_order', g_first_order)]}",
    "gain_mean": "float(gain.mean())",
    "gain_half_width": "float(half_width)",
    "steps": "list(results['MAML'].steps)",
    "mean": "{label: result.mean for label, result in results.items()}",
    "ci95": "{label: result.ci95 for label, result in results.items()}",
    "paper_scale": "float(paper_scale)",
    "compiled": "history.settings['compile']",
    "iterations": "len(history.loss)",
}


def benchmark_maml_k10_one_step() -> float:
    """MAML (seed 0, 70,000 iterations) at K = 10 after one step, from the committed benchmark."""
    evaluation = committed_benchmark("sinusoid_accuracy")["results"]["maml"]["K10"]
    return evaluation["mean"][evaluation["steps"].index(1)]


def test_three_meta_gradients_agree_and_first_order_differs(probes):
    """'The library and the formula agree to rounding error (around 1e-15), finite differences to
    around 1e-9 ... leaving out the second-order term changes the gradient by far more.'"""
    difference = probes["difference"]
    assert probes["hessian_symmetric"]
    assert difference["formula"] < 1e-13, difference
    assert 1e-12 < difference["numeric"] < 1e-7, difference
    assert difference["first_order"] > 1e4 * difference["numeric"], difference


def test_one_maml_step_beats_ten_pretrained_steps(probes):
    """'the last line is positive with an interval that excludes 0, so after one step MAML's loss
    is lower than the pretrained network's after ten.'"""
    assert probes["gain_mean"] - probes["gain_half_width"] > 0, (
        probes["gain_mean"],
        probes["gain_half_width"],
    )


def test_maml_keeps_improving_with_more_steps(probes):
    """'in this run its mean loss keeps falling with 5 and 10 steps (the MAML table above)'."""
    maml = probes["mean"]["MAML"]
    assert probes["steps"] == [0, 1, 5, 10]
    assert maml[0] > maml[1] > maml[2] > maml[3], maml


def test_maml_adapts_far_better_than_the_pretrained_network(probes):
    """Key points: 'MAML's starting point adapts from 10 points far better than a network
    pretrained on all tasks': after every number of steps >= 1, the intervals do not overlap."""
    mean, ci = probes["mean"], probes["ci95"]
    for i, steps in enumerate(probes["steps"]):
        if steps:
            assert mean["MAML"][i] + ci["MAML"][i] < mean["pretrained"][i] - ci["pretrained"][i], (
                steps
            )


def test_untrained_network_hardly_improves(probes):
    """'The untrained network hardly improves at all at this learning rate'."""
    untrained = probes["mean"]["untrained network"]
    assert min(untrained) > 0.9 * untrained[0], untrained


def test_the_chapter_quotes_the_benchmark_it_compares_with():
    """The chapter's printed comparison and its text name the benchmark's number."""
    notebook = (Path(__file__).resolve().parents[2] / "course/02_maml.ipynb").read_text()
    assert f"{benchmark_maml_k10_one_step():.3f} after 70,000 iterations" in notebook


def test_thirty_thousand_compiled_iterations_come_close_to_the_full_benchmark(probes):
    """'on the benchmark's own test tasks, 30,000 iterations come within 10% of 70,000'
    (the speed issue asked for within 25%), trained through the compiled step."""
    assert probes["iterations"] == 30_000
    # Without a C++ compiler the chapter says so once and trains eagerly (same maths).
    assert probes["compiled"] == ("compiled" if compile_unavailable_reason() is None else "eager")
    assert abs(probes["paper_scale"] / benchmark_maml_k10_one_step() - 1) < 0.1, probes[
        "paper_scale"
    ]
