"""The chapter widgets and helpers, without a browser: set a control, read the figure."""

import math

import matplotlib.pyplot as plt
import pytest
import torch

from metalearn_lib import (
    MLP,
    SinusoidTasks,
    adapt,
    meta_gradient,
    parameters_of,
    task_loss,
)
from metalearn_lib.teaching import exercises as lessons
from metalearn_lib.teaching import figures as plots
from metalearn_lib.cost import StepCost
from metalearn_lib.teaching.widgets import CostLab, InnerStepsExplorer, TaskSampler

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
    from metalearn_lib import adapt

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
    assert [line.get_label() for line in time_ax.get_lines()] == ["maml", "fomaml", "reptile"]
    assert list(time_ax.get_lines()[0].get_xdata()) == [1, 3]
    assert len(memory_ax.get_lines()) == 3
    assert all(c.peak_bytes > 0 for c in lab.costs)


def test_cost_lab_rejects_bad_input():
    batch = SinusoidTasks().sample(2, 5)
    with pytest.raises(ValueError, match="algorithms"):
        CostLab(MLP(), batch, algorithms=("sgd",))
    with pytest.raises(ValueError, match="inner_steps"):
        CostLab(MLP(), batch, inner_steps=())


# --- plots --------------------------------------------------------------------


def test_plot_step_cost_skips_unmeasured_memory():
    costs = [StepCost("maml", k, float(k), -1) for k in (1, 2)]
    time_ax, memory_ax = plots.plot_step_cost(costs)
    assert list(time_ax.get_lines()[0].get_ydata()) == [1.0, 2.0]
    assert memory_ax.get_lines() == []
    with pytest.raises(ValueError, match="costs"):
        plots.plot_step_cost([])


def test_plots_label_axes_and_check_input():
    batch = SinusoidTasks().sample(3, 5, generator=torch.Generator().manual_seed(0))
    ax = plots.plot_tasks(batch, max_tasks=2)
    assert len(ax.get_lines()) == 2 and ax.get_xlabel() and ax.get_ylabel()
    model = MLP(seed=0)
    ax = plots.plot_fits(model, {"init": parameters_of(model)}, batch, task=1)
    assert [line.get_label() for line in ax.get_lines()] == ["true function", "init"]
    with pytest.raises(ValueError, match="task"):
        plots.plot_fits(model, {"init": parameters_of(model)}, batch, task=3)
    with pytest.raises(TypeError, match="ax"):
        plots.plot_tasks(batch, ax="left")


# --- lessons: explicit formulas and self-checks ------------------------------


def test_three_ways_agree_on_one_step_maml_gradient():
    model = MLP(hidden=(6, 6), seed=0)
    theta = {n: p.double() for n, p in parameters_of(model).items()}
    batch = (
        SinusoidTasks().sample(2, 5, generator=torch.Generator().manual_seed(1)).to(torch.float64)
    )
    library = meta_gradient(model, theta, batch, algorithm="maml", inner_steps=1, inner_lr=0.05)
    formula, h = lessons.one_step_maml_by_hessian(model, theta, batch, inner_lr=0.05)
    fd = lessons.finite_difference_meta_gradient(model, theta, batch, inner_steps=1, inner_lr=0.05)
    first_order = meta_gradient(
        model, theta, batch, algorithm="fomaml", inner_steps=1, inner_lr=0.05
    )
    assert h.shape == (61, 61) and torch.allclose(h, h.T)
    v_lib, v_formula, v_fd = (lessons.flatten(g) for g in (library, formula, fd))
    assert torch.allclose(v_lib, v_formula, atol=1e-10)
    assert torch.allclose(v_lib, v_fd, atol=1e-6)
    # The check has teeth: the first-order direction is measurably different.
    assert (lessons.flatten(first_order) - v_lib).abs().max() > 1e-4


def test_cosine_similarity_and_flatten_round_trip():
    a = {"w": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([0.0])}
    b = {"w": torch.tensor([[0.0, 2.0]]), "b": torch.tensor([0.0])}
    assert lessons.cosine_similarity(a, a) == pytest.approx(1.0)
    assert lessons.cosine_similarity(a, b) == pytest.approx(0.0)
    back = lessons.unflatten(lessons.flatten(a), a)
    assert all(torch.equal(back[k], a[k]) for k in a)
    with pytest.raises(ValueError, match="keys"):
        lessons.cosine_similarity(a, {"w": a["w"]})
    with pytest.raises(ValueError, match="zero"):
        lessons.cosine_similarity(a, {k: torch.zeros_like(v) for k, v in a.items()})


def test_train_cached_trains_once(monkeypatch):
    calls = []
    real = lessons.meta_train

    def counting(*args, **kwargs):
        calls.append(kwargs["algorithm"])
        return real(*args, **kwargs)

    monkeypatch.setattr(lessons, "meta_train", counting)
    settings = dict(iterations=3, meta_batch_size=2, seed=123, progress=False)
    p1, h1 = lessons.train_cached("fomaml", **settings)
    p2, h2 = lessons.train_cached("fomaml", **settings)
    assert calls == ["fomaml"]
    assert h1.loss == h2.loss and all(torch.equal(p1[k], p2[k]) for k in p1)
    p1["net.0.weight"].add_(1.0)  # the cache hands out copies
    p3, _ = lessons.train_cached("fomaml", **settings)
    assert torch.equal(p3["net.0.weight"], p2["net.0.weight"])


def _reset(name):
    lessons.EXERCISES[name].hints_shown = 0
    lessons.EXERCISES[name].solved = False


def test_check_gives_hints_before_solution(capsys):
    _reset("2.2")
    lessons.check("2.2", None)
    assert not lessons.solved("2.2")
    out = capsys.readouterr().out
    assert "Not answered yet" in out and "Hint 1/2" in out and "-3.12" not in out
    lessons.check("2.2", -5.2)
    assert not lessons.solved("2.2")
    out = capsys.readouterr().out
    assert "FOMAML" in out and "Hint 2/2" in out
    lessons.hint("2.2")
    assert "No more hints" in capsys.readouterr().out
    lessons.check("2.2", -3.12)
    assert lessons.solved("2.2")
    assert "Correct" in capsys.readouterr().out
    lessons.solution("2.2")
    assert "-3.12" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown exercise"):
        lessons.check("9.9", 1)


def test_every_exercise_accepts_its_solution_and_rejects_a_wrong_answer(capsys):
    model, theta, batch = lessons.exercise_setup()
    loss = task_loss(model, theta, batch.support_x[0], batch.support_y[0])
    grads = torch.autograd.grad(loss, list(theta.values()))
    phi = {n: theta[n] - 0.1 * g for n, g in zip(theta, grads)}
    phis = [
        adapt(model, theta, batch.support_x[i], batch.support_y[i], steps=5, lr=0.02)
        for i in range(3)
    ]
    reptile = {n: theta[n] - sum(p[n] for p in phis) / 3 for n in theta}
    gen = torch.Generator().manual_seed(0)
    fns = SinusoidTasks().sample_functions(100_000, generator=gen)
    average = fns(torch.zeros(1, 1, dtype=torch.float64)).mean()
    right = {
        "1.1": (4, 20, 1),
        "1.2": average,
        "1.3": "a",
        "2.1": phi,
        "2.2": -3.12,
        "2.3": 5,
        "3.1": reptile,
        "3.2": lambda a, b: lessons.cosine_similarity(a, b),
        "3.3": "b",
    }
    wrong = {
        "1.1": (4, 5, 1),
        "1.2": 1.62,
        "1.3": "c",
        "2.1": {n: theta[n] + 0.1 * g for n, g in zip(theta, grads)},
        "2.2": -6.0,
        "2.3": 1,
        "3.1": {n: -v for n, v in reptile.items()},
        "3.2": lambda a, b: 0.5,
        "3.3": "a",
    }
    assert set(right) == set(wrong) and set(right) <= set(lessons.EXERCISES)
    for name in right:  # chapters 1-3 (other chapters may register more)
        _reset(name)
        lessons.check(name, wrong[name])
        assert not lessons.solved(name), name
        lessons.check(name, right[name])
        assert lessons.solved(name), name
    assert capsys.readouterr().err == ""
