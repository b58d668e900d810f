"""Chapter 6's teaching layer: experiments (tiny settings), figures, the widget, the exercises."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from metalearn_lib import MLP, SinusoidTasks, parameters_of, task_loss  # noqa: E402
from metalearn_lib.checks import flatten, unflatten  # noqa: E402
from metalearn_lib.teaching import exercises_variants as ex  # noqa: E402
from metalearn_lib.teaching.experiments.variants import (  # noqa: E402
    anil_feature_reuse,
    format_claims,
    imaml_memory,
    mamlpp_seeds,
    metasgd_rates,
    parse_claims,
    support_curvature,
)
from metalearn_lib.teaching.figures_variants import (  # noqa: E402
    plot_anil,
    plot_imaml_memory,
    plot_mamlpp_seeds,
    plot_metasgd_rates,
)
from metalearn_lib.teaching.widgets.variants import VariantComparison  # noqa: E402


def test_claims_print_and_parse_back():
    claims = {"a": 1.23456789, "b": 3, "c": -0.5}
    assert parse_claims(format_claims(claims)) == pytest.approx({"a": 1.235, "b": 3, "c": -0.5})


def test_support_curvature_is_the_top_hessian_eigenvalue():
    model = MLP(hidden=(4,), seed=0).double()
    params = parameters_of(model)
    batch = SinusoidTasks().sample(2, 5, 1, generator=torch.Generator().manual_seed(0))
    batch = batch.to(torch.float64)
    expected = []
    for i in range(2):

        def loss(v, i=i):
            return task_loss(model, unflatten(v, params), batch.support_x[i], batch.support_y[i])

        hessian = torch.autograd.functional.hessian(loss, flatten(params).detach())
        expected.append(torch.linalg.eigvalsh(hessian).abs().max())
    got = support_curvature(model, params, batch, iterations=100)
    assert got == pytest.approx(torch.stack(expected).mean().item(), rel=1e-3)


@pytest.mark.slow
def test_experiments_return_numbers_and_figures_draw_them():
    memory = imaml_memory((1, 3), tasks=3)
    assert memory.claims()["imaml_growth"] <= 1.05 < memory.claims()["maml_growth"]
    anil = anil_feature_reuse(iterations=3, inner_steps=1, steps=(0, 1), eval_tasks=8, repeats=1)
    assert set(anil.convnet_ms) == {"maml", "anil"} and len(anil.maml_head_only) == 2
    assert anil.maml_head_only[0] == anil.maml_all_layers[0]  # same start, same tasks
    sgd = metasgd_rates(iterations=3, steps=(0, 1), eval_tasks=8)
    assert "net.4.bias" in sgd.layer_means() and len(sgd.metasgd) == 2
    seeds = mamlpp_seeds(seeds=(0, 1), iterations=4, steps=(0, 1, 3), eval_tasks=8)
    assert seeds.claims()["seeds"] == 2 and len(seeds.losses["mamlpp"][1]) == 3
    for figure in (
        plot_imaml_memory(memory),
        plot_anil(anil),
        plot_metasgd_rates(sgd),
        plot_mamlpp_seeds(seeds),
    ):
        assert len(figure.axes) == 2 and all(ax.get_ylabel() for ax in figure.axes)
        plt.close(figure)


def test_widget_compares_the_chosen_algorithms_without_a_browser():
    explorer = VariantComparison(iterations=2, eval_tasks=4, selected=("maml",), inner_steps=1)
    first = explorer.renders
    explorer.algorithms.value = ("maml", "imaml")
    assert "changed" in explorer.status.value
    rows = explorer.run()
    assert [r.algorithm for r in rows] == ["maml", "imaml"]
    assert all(len(r.losses) == 2 and r.milliseconds > 0 and r.peak_mib > 0 for r in rows)
    assert explorer.renders == first + 2 and "done" in explorer.status.value
    assert [len(ax.get_lines()) for ax in explorer.figure.axes[:1]] == [2]
    explorer.algorithms.value = ()
    assert explorer.run() == rows and "at least one" in explorer.status.value
    with pytest.raises(ValueError, match="choices and selected must come from"):
        VariantComparison(selected=("maml", "protomaml"))


def test_exercises_check_right_and_wrong_answers(capsys):
    ex.CHAPTER6.reset()
    ex.check("6.1", (0.8, 1 / 1.2))
    assert ex.solved("6.1")
    ex.check("6.1", (0.8, 0.8))
    assert not ex.solved("6.1") and "iMAML's factor" in capsys.readouterr().out

    def anil_step(params, grads, head, lr):
        return {n: p - lr * grads[n] if n in head else p for n, p in params.items()}

    ex.check("6.2", anil_step)
    assert ex.solved("6.2")
    ex.check(
        "6.2", lambda params, grads, head, lr: {n: p - lr * grads[n] for n, p in params.items()}
    )
    assert not ex.solved("6.2") and "(body)" in capsys.readouterr().out
    ex.check("6.3", "C")
    ex.check("6.4", "(b)")
    assert ex.solved("6.3") and ex.solved("6.4")
    ex.check("6.4", "z")
    assert "one of the letters" in capsys.readouterr().out
