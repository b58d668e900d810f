"""Chapter 5's figures and table: they show exactly the accuracies they are given."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from metalearn_lib.datasets import ClassImages
from metalearn_lib.teaching.figures_classification import (
    HELD_OUT_COLOR,
    accuracy_table,
    plot_accuracies,
    plot_class_grid,
)
from metalearn_lib.training import Evaluation


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _evaluation(accuracies: list[float]) -> Evaluation:
    """Two episodes per step count, with accuracies a +- 0.1 (so the mean is a)."""
    metrics = torch.tensor([[a - 0.1, a + 0.1] for a in accuracies])
    return Evaluation(steps=(0, 1, 3), losses=torch.zeros(3, 2), metrics=metrics)


@pytest.fixture
def results():
    return {
        ("MAML", 1): _evaluation([0.2, 0.8, 0.85]),
        ("MAML", 5): _evaluation([0.2, 0.9, 0.88]),
        ("pretrain + fine-tune", 1): _evaluation([0.2, 0.6, 0.75]),
        ("pretrain + fine-tune", 5): _evaluation([0.2, 0.7, 0.9]),
    }


def test_accuracy_table_has_a_row_per_label_and_a_cell_per_shots_and_steps(results):
    lines = accuracy_table(results, shots=(1, 5)).splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["1-shot,", "0", "step(s)", "1-shot,", "1", "step(s)"] + [
        "1-shot,",
        "3",
        "step(s)",
        "5-shot,",
        "0",
        "step(s)",
        "5-shot,",
        "1",
        "step(s)",
    ] + ["5-shot,", "3", "step(s)"]
    half_width = 100 * 1.96 * torch.tensor([-0.1, 0.1]).std().item() / 2**0.5
    assert lines[1].startswith("MAML") and f"80.0 ± {half_width:4.1f}" in lines[1]
    assert lines[2].startswith("pretrain + fine-tune") and "90.0" in lines[2]


def test_accuracy_plot_draws_percentages_and_chance(results):
    axes = plot_accuracies(results, shots=(1, 5), chance=0.2)
    assert len(axes) == 2
    maml_1 = axes[0].containers[0]  # errorbar container of the first label
    assert list(maml_1.lines[0].get_ydata()) == pytest.approx([20.0, 80.0, 85.0])
    assert axes[0].get_title() == "1-shot, 2 test episodes"
    assert any(list(line.get_ydata()) == [20.0, 20.0] for line in axes[1].get_lines())
    assert axes[0].get_ylabel() == "query accuracy (%)"


def test_bad_results_are_refused(results):
    with pytest.raises(TypeError, match="non-empty dict"):
        accuracy_table({})
    no_accuracy = dict(results)
    no_accuracy["MAML", 5] = Evaluation(steps=(0,), losses=torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"results\['MAML', 5\] must be an Evaluation with"):
        plot_accuracies(no_accuracy)
    with pytest.raises(ValueError, match="one entry per shots"):
        plot_accuracies(results, axes=[plt.gca()])


def test_class_grid_frames_the_held_out_classes():
    def classes(names):
        return ClassImages.from_list([torch.rand(2, 1, 8, 8) for _ in names], names)

    fig = plot_class_grid(classes(["0 @ 0", "1 @ 0", "0 @ 90"]), classes(["1 @ 90"]))
    axes = fig.axes
    assert len(axes) == 4  # 2 rotations x 2 digits, row-major
    framed = plt.matplotlib.colors.to_rgba(HELD_OUT_COLOR)
    held_out = [ax for ax in axes if ax.spines["top"].get_edgecolor() == framed]
    assert held_out == [axes[3]]
    assert "4 classes" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="DIGIT @ ANGLE"):
        plot_class_grid(classes(["zero"]), classes(["1 @ 90"]))
    with pytest.raises(TypeError, match="train_classes"):
        plot_class_grid("digits", classes(["1 @ 90"]))
