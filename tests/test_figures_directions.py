"""Chapter 3's toy picture: figures draw the given directions; the explorer follows its sliders."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from metalearn_lib.teaching.experiments.toy_directions import toy_cosines, toy_problem
from metalearn_lib.teaching.figures_directions import plot_toy_cosines, plot_toy_directions
from metalearn_lib.teaching.widgets.directions import DirectionsExplorer


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def toy():
    return toy_problem()


def test_arrows_point_along_minus_each_direction(toy):
    directions = {
        "maml": torch.tensor([1.0, 0.0], dtype=torch.float64),
        "reptile": torch.tensor([0.0, -2.0], dtype=torch.float64),
    }
    ax = plot_toy_directions(toy, directions)
    arrows = [t for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    assert len(arrows) == 2
    for arrow, direction in zip(arrows, directions.values()):
        step = torch.tensor(arrow.xy, dtype=torch.float64) - toy.point
        cosine = step @ -direction / (step.norm() * direction.norm())
        assert cosine.item() == pytest.approx(1.0)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["MAML", "Reptile"]
    with pytest.raises(TypeError, match="directions"):
        plot_toy_directions(toy, {})
    with pytest.raises(TypeError, match="problem"):
        plot_toy_directions("toy", directions)


def test_cosine_curves_are_drawn_against_alpha_times_curvature():
    ax = plot_toy_cosines([0.1, 0.2], {"fomaml": [0.9, 0.5]}, max_curvature=4.0, current=0.2)
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == pytest.approx([0.4, 0.8])
    assert list(line.get_ydata()) == [0.9, 0.5]
    assert any(list(ln.get_xdata()) == [0.8, 0.8] for ln in ax.get_lines()), "no line at 'now'"
    with pytest.raises(ValueError, match="2 inner_lrs"):
        plot_toy_cosines([0.1, 0.2], {"fomaml": [0.9]}, max_curvature=4.0)


def test_explorer_follows_its_sliders(toy):
    explorer = DirectionsExplorer(toy, inner_steps=1, inner_lr=0.01)
    assert explorer.renders == 1 and len(explorer.figure.axes) == 2
    assert min(explorer.cosines.values()) > 0.999
    explorer.lr_slider.value = 0.2
    expected = toy_cosines(toy, inner_steps=1, inner_lrs=[0.2])
    assert explorer.cosines == pytest.approx({k: v[0] for k, v in expected.items()})
    assert explorer.alpha_curvature == pytest.approx(0.8)
    assert "0.80" in explorer.summary.value and explorer.renders == 2
    assert explorer.figure.axes[0].get_title() == "k = 1, α = 0.200"
    explorer.steps_slider.value = 3
    lrs, curve = explorer.curve
    assert len(lrs) == explorer.curve_points and set(curve) == {"fomaml", "reptile"}
    assert explorer.figure.axes[1].get_title().endswith("k = 3")
    with pytest.raises(ValueError, match="inner_lr"):
        DirectionsExplorer(toy, inner_lr=1.0)
    with pytest.raises(TypeError, match="problem"):
        DirectionsExplorer("toy")
