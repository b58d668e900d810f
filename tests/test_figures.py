"""The figures: each draws what it is given, labels its axes and checks its input."""

import matplotlib.pyplot as plt
import pytest
import torch

from metalearn_lib import MLP, SinusoidTasks, parameters_of
from metalearn_lib.algorithms import ALGORITHMS
from metalearn_lib.cost import StepCost
from metalearn_lib.teaching import figures


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_plot_step_cost_skips_unmeasured_memory():
    costs = [StepCost("maml", k, float(k), -1) for k in (1, 2)]
    time_ax, memory_ax = figures.plot_step_cost(costs)
    assert list(time_ax.get_lines()[0].get_ydata()) == [1.0, 2.0]
    assert memory_ax.get_lines() == []
    with pytest.raises(ValueError, match="costs"):
        figures.plot_step_cost([])


def test_plots_label_axes_and_check_input():
    batch = SinusoidTasks().sample(3, 5, generator=torch.Generator().manual_seed(0))
    ax = figures.plot_tasks(batch, max_tasks=2)
    assert len(ax.get_lines()) == 2 and ax.get_xlabel() and ax.get_ylabel()
    model = MLP(seed=0)
    ax = figures.plot_fits(model, {"init": parameters_of(model)}, batch, task=1)
    assert [line.get_label() for line in ax.get_lines()] == ["true function", "init"]
    with pytest.raises(ValueError, match="task"):
        figures.plot_fits(model, {"init": parameters_of(model)}, batch, task=3)
    with pytest.raises(TypeError, match="ax"):
        figures.plot_tasks(batch, ax="left")


def test_algorithm_colours_follow_the_registry_order():
    for i, name in enumerate(ALGORITHMS):
        assert figures.algorithm_color(name) == f"C{i}"
        assert figures.algorithm_color(name.upper() + ", 5 steps", 7) == f"C{i}"
    assert figures.algorithm_color("pretrained") == figures.BASELINE_COLOR
    assert figures.algorithm_color("something else", 4) == "C4"


def test_step_cost_legend_uses_the_registry_labels():
    costs = [StepCost(a, 1, 1.0, 100) for a in ("maml", "reptile")]
    time_ax, _ = figures.plot_step_cost(costs)
    assert [line.get_label() for line in time_ax.get_lines()] == ["MAML", "Reptile"]
