"""The chapter explorers, without a browser: set a control, read the figure."""

import math

import matplotlib.pyplot as plt
import pytest
import torch

from metalearn_lib import (
    MLP,
    ConvNet,
    FewShotTasks,
    SinusoidTasks,
    adapt,
    parameters_of,
)
from metalearn_lib.teaching.experiments import Settings, diversity_sweep
from metalearn_lib.teaching.widgets import (
    CostLab,
    FewShotExplorer,
    InnerStepsExplorer,
    TaskDiversityExplorer,
    TaskSampler,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _lines(explorer, axis: int):
    return explorer.figure.axes[axis].get_lines()


# --- TaskSampler ------------------------------------------------------------


def test_task_sampler_redraws_when_controls_change():
    sampler = TaskSampler(SinusoidTasks(), seed=0, num_tasks=3, shots=10)
    assert bytes(sampler.image.value).startswith(PNG_MAGIC)
    assert len(_lines(sampler, 0)) == 3
    first_curve = _lines(sampler, 0)[0].get_ydata().copy()

    sampler.tasks_slider.value = 5
    assert len(_lines(sampler, 0)) == 5 and sampler.batch.num_tasks == 5

    sampler.shots_slider.value = 4
    assert sampler.batch.support_x.shape[1] == 4
    offsets = sampler.figure.axes[0].collections[0].get_offsets()
    assert len(offsets) == 4  # task 0's support points

    renders = sampler.renders
    sampler.new_button.click()
    assert sampler.renders == renders + 1
    assert not torch.allclose(
        torch.as_tensor(_lines(sampler, 0)[0].get_ydata()), torch.as_tensor(first_curve)
    )


def test_task_sampler_average_is_minus_two_over_pi_mean_amplitude_cos():
    sampler = TaskSampler(SinusoidTasks())
    n_before = len(_lines(sampler, 1))
    sampler.average_checkbox.value = True
    assert len(_lines(sampler, 1)) == n_before + 1
    x = torch.as_tensor(_lines(sampler, 1)[-1].get_xdata())
    average = torch.as_tensor(_lines(sampler, 1)[-1].get_ydata())
    expected = -(2 / math.pi) * 2.55 * torch.cos(x)
    assert (average - expected).abs().max() < 0.3  # 1000 tasks: sampling noise only


def test_task_sampler_rejects_bad_input():
    with pytest.raises(TypeError, match="tasks"):
        TaskSampler(object())
    with pytest.raises(ValueError, match="num_tasks"):
        TaskSampler(SinusoidTasks(), num_tasks=0)


# --- InnerStepsExplorer -----------------------------------------------------


@pytest.fixture(scope="module")
def explorer():
    model = MLP(seed=0)
    inits = {"MAML": parameters_of(model), "pretrained": parameters_of(MLP(seed=1))}
    return InnerStepsExplorer(model, inits, SinusoidTasks(), seed=0, steps=1, max_steps=20)


def test_explorer_steps_slider_updates_fit_curve_and_readout(explorer):
    explorer.steps_slider.value = 1
    fit_before = _lines(explorer, 0)[1].get_ydata().copy()  # MAML's fit (line 0 = truth)
    png_before = bytes(explorer.image.value)

    explorer.steps_slider.value = 7
    assert explorer.readout.value == "7"
    loss_line = _lines(explorer, 1)[0]
    assert list(loss_line.get_xdata()) == list(range(8))
    assert len(explorer.losses["MAML"]) == 8
    assert explorer.losses["MAML"][7] < explorer.losses["MAML"][0]  # adapting helps
    assert not torch.allclose(
        torch.as_tensor(_lines(explorer, 0)[1].get_ydata()), torch.as_tensor(fit_before)
    )
    assert bytes(explorer.image.value) != png_before
    assert bytes(explorer.image.value).startswith(PNG_MAGIC)


def test_explorer_matches_library_adapt(explorer):

    explorer.steps_slider.value = 3
    explorer.lr_slider.value = 0.02
    batch = explorer.batch
    theta = explorer.initializations["MAML"]
    phi = adapt(explorer.model, theta, batch.support_x[0], batch.support_y[0], steps=3, lr=0.02)
    for name in phi:
        torch.testing.assert_close(explorer.adapted["MAML"][name], phi[name].detach())


def test_explorer_lr_and_task_controls(explorer):
    explorer.steps_slider.value = 5
    explorer.lr_slider.value = 0.001
    slow = explorer.losses["MAML"][-1]
    explorer.lr_slider.value = 0.01
    assert explorer.losses["MAML"][-1] != slow

    explorer.task_picker.value = 0
    support = explorer.batch.support_x.clone()
    explorer.new_button.click()
    assert explorer.task_picker.value == 1
    assert not torch.equal(explorer.batch.support_x, support)
    explorer.task_picker.value = 0  # the same task comes back
    assert torch.equal(explorer.batch.support_x, support)


def test_explorer_zero_steps_and_huge_lr_do_not_crash(explorer):
    explorer.steps_slider.value = 0
    assert explorer.readout.value == "0"
    assert list(_lines(explorer, 1)[0].get_xdata()) == [0]
    explorer.lr_slider.value = 1.0
    explorer.steps_slider.value = 20
    assert explorer.readout.value == "20"
    explorer.lr_slider.value = 0.01


def test_explorer_controls_have_stable_names(explorer):
    assert explorer.steps_slider.description == "inner steps"
    assert "inner-steps-slider" in explorer.steps_slider._dom_classes
    assert "inner-lr-slider" in explorer.lr_slider._dom_classes
    assert "inner-steps-readout" in explorer.readout._dom_classes
    assert "inner-steps-plot" in explorer.image._dom_classes
    assert explorer.image.layout.width == "720px"
    explorer.steps_slider.value = 2  # a redraw keeps the fixed margins (fixed-size picture)
    assert explorer.figure.subplotpars.right == pytest.approx(0.98)
    assert explorer.figure.get_size_inches().tolist() == [9.0, 3.4]
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_explorer_accepts_one_param_dict_and_rejects_bad_input():
    model = MLP(seed=0)
    single = InnerStepsExplorer(model, parameters_of(model), SinusoidTasks())
    assert list(single.losses) == ["meta-learned"]
    with pytest.raises(TypeError, match="initializations"):
        InnerStepsExplorer(model, [], SinusoidTasks())
    with pytest.raises(ValueError, match="steps"):
        InnerStepsExplorer(model, parameters_of(model), SinusoidTasks(), steps=50, max_steps=20)
    with pytest.raises(ValueError, match="params"):
        InnerStepsExplorer(model, parameters_of(MLP(hidden=(5,))), SinusoidTasks())


# --- CostLab ----------------------------------------------------------------


def test_cost_lab_measures_and_plots_each_algorithm():
    model = MLP(hidden=(8, 8), seed=0)
    batch = SinusoidTasks().sample(2, 5, generator=torch.Generator().manual_seed(0))
    lab = CostLab(model, batch, inner_steps=(1, 3), repeats=1)
    assert lab.progress.max == 6 and lab.progress.value == 0
    assert "cost-lab-run" in lab.run_button._dom_classes
    lab.run_button.click()
    assert lab.progress.value == 6 and lab.status.value == "done"
    assert [(c.algorithm, c.inner_steps) for c in lab.costs] == [
        (a, k) for a in ("maml", "fomaml", "reptile") for k in (1, 3)
    ]
    time_ax, memory_ax = lab.figure.axes
    assert [line.get_label() for line in time_ax.get_lines()] == ["MAML", "FOMAML", "Reptile"]
    assert list(time_ax.get_lines()[0].get_xdata()) == [1, 3]
    assert len(memory_ax.get_lines()) == 3
    assert all(c.peak_bytes > 0 for c in lab.costs)


def test_cost_lab_rejects_bad_input():
    batch = SinusoidTasks().sample(2, 5)
    with pytest.raises(ValueError, match="algorithms"):
        CostLab(MLP(), batch, algorithms=("sgd",))
    with pytest.raises(ValueError, match="inner_steps"):
        CostLab(MLP(), batch, inner_steps=())


# --- TaskDiversityExplorer (chapter 4) -----------------------------------------

#: Tiny recipe: every run takes well under a second.
TINY = Settings(iterations=4, meta_batch_size=2, eval_tasks=10, eval_steps=(0, 1), eval_queries=10)


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


# --- FewShotExplorer (chapter 5) ----------------------------------------------


@pytest.mark.slow
def test_few_shot_explorer_logic_without_a_browser(split):
    net = ConvNet(out_features=5, hidden=8, norm="batch", seed=0)
    starts = {"A": parameters_of(net), "B": parameters_of(ConvNet(hidden=8, norm="batch", seed=1))}
    explorer = FewShotExplorer(net, starts, FewShotTasks(split[1]), inner_lr={"A": 0.4, "B": 0.1})
    assert explorer.renders == 1 and explorer.image.value[:4] == b"\x89PNG"
    assert len(explorer.class_names) == 5 and set(explorer.class_names) <= set(split[1].names)
    assert explorer.predictions_after.shape == (15,)
    queries = explorer.batch.query_x.clone()
    explorer.steps_slider.value = 0  # no adaptation: the same predictions before and after
    assert torch.equal(explorer.predictions_before, explorer.predictions_after)
    explorer.shots_slider.value = 3  # more shots, same query images
    assert explorer.batch.support_x.shape == (1, 15, 1, 8, 8)
    assert torch.equal(explorer.batch.query_x, queries)
    explorer.steps_slider.value = 5
    truth = explorer.batch.query_y[0]
    assert explorer.accuracy_after == (explorer.predictions_after == truth).float().mean().item()
    assert "after 5 steps" in explorer.summary.value
    explorer.start_dropdown.value = "B"
    assert explorer.summary.value.startswith("<b>B</b>")
    names = explorer.class_names
    explorer.new_episode()
    assert explorer.episode_picker.value == 1 and explorer.class_names != names
    assert explorer.renders == 6
    with pytest.raises(TypeError, match="tasks must be a FewShotTasks"):
        FewShotExplorer(net, starts, split[1])
    with pytest.raises(ValueError, match="inner_lr"):
        FewShotExplorer(net, starts, FewShotTasks(split[1]), inner_lr={"A": 0.4})
