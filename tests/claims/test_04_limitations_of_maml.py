"""Chapter 4's claims: every sentence that states a run's outcome, asserted on the chapter's run.

The values come from the chapter's single execution (``website/chapter_runs.py``);
each test quotes the sentence it guards.
"""

from __future__ import annotations

import math

import pytest
from chapter_claims import probes_fixture  # noqa: F401  (the probes fixture)

pytestmark = pytest.mark.slow

PROBES = {
    "cost_final": "{a: list(cost.final_loss(a)) for a in cost.runs}",
    "cost_diff": "{a: list(cost.difference(a)) for a in ('fomaml', 'reptile')}",
    "cost_reach": "{a: cost.iterations_to_reach(a, cost.halfway_loss()) for a in cost.runs}",
    "cost_memory": "{f'{c.algorithm}:{c.inner_steps}': c.peak_bytes for c in cost.costs}",
    "architectures": "architectures.claims()",
    "loop_vs_vmap": "loop_vs_vmap",
    "sweep_d": "list(sweep.diversities)",
    "sweep_maml": "[list(m) for m in sweep.maml_losses()]",
    "sweep_pretrain": "[list(m) for m in sweep.pretrain_losses()]",
    "sweep_advantage": "[list(a) for a in sweep.advantages()]",
    "families_gap": "{f: list(families.gap(f)) for f in families.families}",
    "families_before": "{f: families.shared_on[f].mean[0] for f in families.families}",
    "families_shared": "{f: families.shared_on[f].at(10)[0] for f in families.families}",
    "families_own": "{f: families.specialists[f].evaluation.at(10)[0] for f in families.families}",
    "dissimilar": "dissimilar.claims()",
    "drift_checkpoints": "drift.checkpoints",
    "drift_early": "drift.curve('early')",
    "drift_late": "drift.curve('late')",
    "drift_at_warmup": "drift.at_warmup",
    "drift_forgetting": "list(drift.forgetting())",
    "drift_training": "list(drift.training_loss_around_drift())",
    "tuning": "tuning.claims()",
    "grid": "grid.claims()",
    "stability": "stability.claims()",
    "stability_shares": "[stability.share_above_limit(c) for c in stability.probe_curvature]",
}


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def _about(value: float, stated: float, rel: float = 0.1) -> bool:
    return abs(value - stated) <= rel * abs(stated)


# -- section 1: the cost of second order ------------------------------------------------------


def test_maml_memory_grows_with_inner_steps_first_order_hardly(probes):
    """MAML's peak memory grows with the inner steps, several times over from 1 to 10 steps, while
    FOMAML's and Reptile's grows by less than half, and not at all from 5 to 10 steps."""
    m = probes["cost_memory"]
    assert m["maml:10"] > 3 * m["maml:1"], "MAML's memory grows several times over"
    for a in ("fomaml", "reptile"):
        assert m[f"{a}:10"] < 1.5 * m[f"{a}:1"], f"{a}'s memory grows by less than half"
        assert m[f"{a}:10"] <= 1.02 * m[f"{a}:5"], f"{a}'s memory does not grow from 5 to 10 steps"


def test_maml_most_accurate_and_first_order_slower_per_iteration(probes):
    """MAML reached the lowest loss on fresh tasks after 10 adaptation steps, and both paired
    differences to MAML are larger than their 95% intervals ... In iterations, MAML was also the
    first to reach the loss halfway ... so the first-order methods converged more slowly per
    iteration."""
    final = probes["cost_final"]
    assert final["maml"][0] < min(final["fomaml"][0], final["reptile"][0])
    for a, (mean, half) in probes["cost_diff"].items():
        assert mean > half, f"{a}'s paired difference to MAML is larger than its interval"
    reach = probes["cost_reach"]
    assert reach["maml"] is not None
    for a in ("fomaml", "reptile"):
        assert reach[a] is None or reach[a] > reach["maml"], f"{a} reached the halfway loss later"


def test_architecture_memory_grows_and_maml_needs_several_times_more(probes):
    """MAML's peak memory grew with every added layer and every widening: from the smallest to the
    largest network, about 30 times along each axis. FOMAML's grew too, but at every size MAML
    needed several times more."""
    c = probes["architectures"]
    for axis in ("depth", "width"):
        assert 20 <= c[f"maml_memory_ratio_{axis}"] <= 45, f"about 30 times along {axis}"
        assert c[f"fomaml_memory_ratio_{axis}"] > 1
        assert min(c[f"memory_maml_over_fomaml_{axis}"]) > 3, "several times more at every size"


def test_vmap_and_loop_give_the_same_meta_gradient(probes):
    """The cell checks that both give the same meta-gradient."""
    assert probes["loop_vs_vmap"] < 1e-5


# -- section 2: task diversity ----------------------------------------------------------------


def test_diversity_sweep_reading(probes):
    """MAML's loss ... rose with every step up in diversity, from about 0.005 at diversity 0 to
    about 9.6 at diversity 2 (pretraining: from about 0.47 to 9.5) ... MAML's advantage over
    pretraining was 0.47 ± 0.14 at diversity 0, largest at diversity 1.5 (2.5 ± 0.59), and gone at
    diversity 2 (-0.08 ± 0.89, an interval that includes zero)."""
    maml = [m for m, _ in probes["sweep_maml"]]
    pre = [m for m, _ in probes["sweep_pretrain"]]
    adv = probes["sweep_advantage"]
    assert probes["sweep_d"] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert all(a < b for a, b in zip(maml, maml[1:])), "MAML's loss rose with every step"
    # 0.0050 and 0.0044 on two CPUs: this tiny loss is the most rounding-sensitive number here
    assert _about(maml[0], 0.005, 0.15) and _about(maml[-1], 9.6, 0.02)
    assert _about(pre[0], 0.47, 0.03) and _about(pre[-1], 9.5, 0.02)
    assert f"{adv[0][0]:.2f} ± {adv[0][1]:.2f}" == "0.47 ± 0.14"
    best = max(range(5), key=lambda i: adv[i][0])
    assert best == 3 and f"{adv[3][0]:.1f} ± {adv[3][1]:.2f}" == "2.5 ± 0.59"
    assert f"{adv[4][0]:.2f} ± {adv[4][1]:.2f}" == "-0.08 ± 0.89"
    assert abs(adv[4][0]) < adv[4][1], "the interval at diversity 2 includes zero"


# -- section 3: dissimilar tasks --------------------------------------------------------------


def test_shared_start_is_worse_on_sines_and_even_elsewhere(probes):
    """The shared initialization is clearly worse than the sine specialist on sines (about 3.6
    against 0.74; the gap is larger than its paired 95% interval). On lines and quadratics the
    difference is within the noise of this short run or favours the shared one. Before adaptation,
    the shared initialization's loss was about 5.5 on sines, 16 on lines and 14 on quadratics."""
    gap = probes["families_gap"]
    assert _about(probes["families_shared"]["sine"], 3.6, 0.03)
    assert _about(probes["families_own"]["sine"], 0.74, 0.02)
    assert gap["sine"][0] > gap["sine"][1]
    for f in ("line", "quadratic"):
        assert gap[f][0] < gap[f][1], f"{f}: within the noise or favours the shared start"
    before = probes["families_before"]
    assert _about(before["sine"], 5.5, 0.02)
    assert round(before["line"]) == 16 and round(before["quadratic"]) == 14
    assert before["sine"] < min(before["line"], before["quadratic"])


def test_dissimilar_distributions_stall_or_blow_up(probes):
    """On the paper's sines the training loss fell to under half of its start, and after 10
    adaptation steps the test loss was about a fifth of the untrained network's. On the two wide
    distributions meta-training stalled: the training loss of the last 25 iterations was still above
    80% of the first 25's. With amplitudes from 0.1 to 50, one adaptation step still helped a
    little, but 5 and 10 steps blew up ... With frequencies from 0.5 to 4, no number of steps
    brought the test loss clearly below the untrained network's ... on the paper's sines ... their
    starts ended at several times the paper-trained start's loss."""
    d = probes["dissimilar"]
    paper, amp, freq = d["paper sines"], d["amplitudes 0.1 to 50"], d["frequencies 0.5 to 4"]
    assert paper["training_ratio"] < 0.5
    assert 0.13 <= paper["relative"][-1] <= 0.25, "about a fifth"
    for wide in (amp, freq):
        assert wide["training_ratio"] > 0.8, "stalled"
        assert wide["paper_loss"][-1] > 3 * paper["paper_loss"][-1], "several times worse"
    assert amp["relative"][1] < 1, "one step still helped"
    for r in amp["relative"][2:]:
        assert r is None or r > 1e3, "5 and 10 steps blew up"
    assert min(freq["relative"]) > 0.85, "never clearly below the untrained network"


def test_tasks_outside_the_range_adapt_worse(probes):
    """On inputs in [5, 10], which it never saw, 5 and 10 adaptation steps gave NaN, and on
    amplitudes 5 to 10 its loss after 10 steps, relative to the untrained network's, was more than
    twice its in-range ratio."""
    d = probes["dissimilar"]
    inputs = d["outside: inputs 5 to 10"]["loss"]
    assert inputs[2] is None and inputs[3] is None
    amp = d["outside: amplitudes 5 to 10"]
    ratio = amp["loss"][-1] / amp["reference"]
    assert ratio > 2 * d["paper sines"]["relative"][-1]


# -- section 4: non-stationary tasks ----------------------------------------------------------


def test_drift_reading(probes):
    """During the 150 iterations before the drift, the loss on early tasks fell from about 4.2 to
    1.2; by the end of training it was back at about 3.4, that is 2.1 ± 0.3 above its pre-drift
    value ... On late tasks the loss was about 3.6 before the drift and ended at about 1.8 ... The
    meta-training loss ... was about 2.1 just before the drift and 2.8 at the end.
    (Rounded: two CPUs gave 3.37 and 3.34, 2.15 and 2.12 for the same run.)"""
    early, late, w = probes["drift_early"], probes["drift_late"], probes["drift_at_warmup"]
    assert probes["drift_checkpoints"][w] == 150
    stated = {
        "early before": (early[0], 4.2),
        "early at the drift": (early[w], 1.2),
        "early at the end": (early[-1], 3.4),
        "forgetting": (probes["drift_forgetting"][0], 2.1),
        "late at the drift": (late[w], 3.6),
        "late at the end": (late[-1], 1.8),
        "training at the drift": (probes["drift_training"][0], 2.1),
        "training at the end": (probes["drift_training"][1], 2.8),
    }
    for what, (value, about) in stated.items():
        assert _about(value, about, 0.05), (what, value)
    assert _about(probes["drift_forgetting"][1], 0.3, 0.1)


# -- section 5: hyperparameters ---------------------------------------------------------------


def test_tuning_reading(probes):
    """Both optimizers did best at a meta learning rate of 0.03, and Adam's best loss was lower than
    SGD's. Adam learned at every rate from 0.003 to 0.03; SGD learned only at 0.03 and 0.1, hardly
    moved below, and at 0.3 its weights turned into NaN ... (here 0.1 instead of 0.3)."""
    t = probes["tuning"]
    assert t["adam_best_rate"] == 0.03 and t["sgd_best_rate"] == 0.03
    assert t["adam_best_loss"] < t["sgd_best_loss"]
    assert t["adam_working"] == [0.003, 0.01, 0.03]
    assert t["sgd_working"] == [0.03, 0.1]
    assert t["sgd_diverged"] == [0.3]


def test_grid_reading(probes):
    """The best setting was 3 inner steps of lr 0.03 with Adam and 16 tasks per meta-batch. With
    inner lr 0.03, Adam learned in every column, while SGD diverged with 3 inner steps and 4 tasks
    but learned with 16; with inner lr 0.3, every cell stalled or diverged ... one inner step of lr
    0.3 already takes the untrained network's loss far above the loss without adaptation, and
    three steps take it to NaN ... 16 tasks per batch gave a lower loss than 4 in every row where
    both Adam cells learned, and it rescued SGD with 3 inner steps."""
    g = probes["grid"]
    rows = [tuple(r) for r in g["rows"]]
    cols = [tuple(c) for c in g["columns"]]
    status = {(r, c): g["status"][i][j] for i, r in enumerate(rows) for j, c in enumerate(cols)}
    loss = {(r, c): g["final_loss"][i][j] for i, r in enumerate(rows) for j, c in enumerate(cols)}
    assert rows[g["best"][0]] == (3, 0.03) and cols[g["best"][1]] == ("adam", 16)
    for k in (1, 3):
        assert all(status[(k, 0.03), ("adam", b)] == "learned" for b in (4, 16))
        assert all(status[(k, 0.3), c] in ("stalled", "diverged") for c in cols)
    assert status[(3, 0.03), ("sgd", 4)] == "diverged"
    assert status[(3, 0.03), ("sgd", 16)] == "learned"
    untrained = g["untrained_loss"]
    assert untrained[rows.index((1, 0.3))] > 10 * g["reference_loss"]
    assert not _finite(untrained[rows.index((3, 0.3))])
    for r in rows:
        pair = [loss[r, ("adam", b)] for b in (4, 16)]
        if all(status[r, ("adam", b)] == "learned" for b in (4, 16)):
            assert pair[1] < pair[0], f"{r}: 16 tasks beat 4"
    assert g["start_gradient"][rows.index((1, 0.03))] < 0.01, "the typical entry is tiny"


# -- section 6: beyond the trained steps ------------------------------------------------------


def test_stability_reading(probes):
    """The untrained network's support losses were sharply curved (median above 2/alpha).
    Meta-training first flattened them, below the line, and then ... let the curvature climb back:
    at the end a growing share of the probe tasks lay above 2/alpha again. After 1 and 2 steps no
    test task blew up; after 5 or 10 steps a few did ... every blown-up task had a support loss
    curved beyond 2/alpha ... Most tasks above the line still converged ... The median test loss
    hardly notices (it stays within 20% of its one-step value)."""
    s, shares = probes["stability"], probes["stability_shares"]
    assert s["first_probe_median"] > s["limit"]
    assert s["lowest_probe_median"] < s["limit"]
    low = shares.index(min(shares))
    assert shares[-1] > shares[low] and low < len(shares) - 1, "the share climbs back"
    assert s["blown_at_1"] == 0 and s["blown_at_2"] == 0
    assert s["blown"] >= 1 and max(s["blown_at_5"], s["blown_at_10"]) >= 1
    assert s["blown_share_above"] == 1.0
    above = round(s["test_share_above"] * s["test_tasks"])
    assert above > 2 * s["blown"], "most tasks above the line still converged"
    medians = [s[f"median_at_{k}"] for k in (1, 2, 5, 10)]
    assert max(medians) <= 1.2 * medians[0] and min(medians) >= 0.8 * medians[0]


# -- the practice explanations ----------------------------------------------------------------


def test_practice_explanations(probes):
    """Practice 2-C: at the widest setting of the sweep the advantage's interval includes 0.
    Practice 3-A: families with large losses dominate (losses before adaptation). Practice 3-C: the
    late-task loss stayed near its untrained level before the drift while the early-task loss fell.
    Practice 4-A, 4-D, 4-E: see the grid reading."""
    adv = probes["sweep_advantage"][-1]
    assert abs(adv[0]) < adv[1]
    before = probes["families_before"]
    assert before["sine"] < before["line"] and before["sine"] < before["quadratic"]
    early, late, w = probes["drift_early"], probes["drift_late"], probes["drift_at_warmup"]
    assert late[w] > 0.8 * late[0] and early[w] < 0.5 * early[0]
    g = probes["grid"]
    rows = [tuple(r) for r in g["rows"]]
    assert all(st != "learned" for st in g["status"][rows.index((3, 0.3))]), "Practice 4-E"
