"""metalearn_lib.training: meta_train (optimizer, schedule, callback), pretrain, evaluate."""

import pytest
import torch
import torch.nn.functional as F

import metalearn_lib.training as training
from metalearn_lib import (
    MLP,
    ConvNet,
    FewShotTasks,
    SinusoidTasks,
    accuracy,
    evaluate,
    linear_decay,
    meta_gradient_and_loss,
    meta_train,
    parameters_of,
    pretrain,
)


def test_same_seed_gives_identical_history():
    def run(seed):
        return meta_train(MLP(seed=0), SinusoidTasks(), iterations=15, seed=seed, progress=False)

    (p1, h1), (p2, h2), (_, h3) = run(4), run(4), run(5)
    assert h1.loss == h2.loss
    assert all(torch.equal(p1[k], p2[k]) for k in p1)
    assert h1.loss != h3.loss
    assert len(h1.elapsed) == 15 and h1.elapsed == sorted(h1.elapsed)


def test_progress_false_prints_nothing(capsys):
    meta_train(MLP(seed=0), SinusoidTasks(), iterations=3, progress=False)
    pretrain(MLP(seed=0), SinusoidTasks(), iterations=3, progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_true_shows_a_bar(capsys):
    meta_train(MLP(seed=0), SinusoidTasks(), iterations=3, progress=True)
    assert "MAML" in capsys.readouterr().err


def test_model_is_not_modified():
    model = MLP(seed=0)
    before = parameters_of(model)
    meta_train(model, SinusoidTasks(), iterations=5, progress=False)
    after = parameters_of(model)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_callback_sees_every_update_and_can_stop_the_run():
    seen = []

    def record(done, params):
        seen.append((done, {k: v.clone() for k, v in params.items()}))
        params["net.0.weight"].add_(1.0)  # a detached copy: changing it changes nothing

    full, _ = meta_train(MLP(seed=0), SinusoidTasks(), iterations=4, progress=False)
    params, history = meta_train(
        MLP(seed=0), SinusoidTasks(), iterations=4, progress=False, callback=record
    )
    assert [done for done, _ in seen] == [1, 2, 3, 4]
    assert all(
        torch.equal(params[k], full[k]) and torch.equal(seen[-1][1][k], full[k]) for k in full
    )
    assert not any(p.requires_grad for _, ps in seen for p in ps.values())

    _, stopped = meta_train(
        MLP(seed=0),
        SinusoidTasks(),
        iterations=10,
        progress=False,
        callback=lambda done, _: done == 3,
    )
    assert len(stopped.loss) == 3 and stopped.loss == history.loss[:3]
    with pytest.raises(TypeError, match="callback must be callable"):
        meta_train(MLP(seed=0), SinusoidTasks(), iterations=1, progress=False, callback=3)


@pytest.mark.slow
def test_short_maml_run_beats_untrained_and_pretrained():
    """600 iterations (about 8 s): MAML already adapts far better from 5 points."""
    tasks = SinusoidTasks()
    model = MLP(seed=0)
    maml, history = meta_train(model, tasks, iterations=600, seed=0, progress=False)
    baseline, _ = pretrain(model, tasks, iterations=600, seed=0, progress=False)
    settings = dict(num_tasks=200, shots=5, steps=(0, 1, 10), seed=99)
    after_maml = evaluate(model, maml, tasks, **settings)
    after_pretrain = evaluate(model, baseline, tasks, **settings)
    untrained = evaluate(model, parameters_of(model), tasks, **settings)
    # Same seed, same test tasks: compare task by task (a paired 95% interval).
    for row in (1, 2):  # after 1 and after 10 steps
        for other in (after_pretrain, untrained):
            gain = other.losses[row] - after_maml.losses[row]
            assert gain.mean() - 1.96 * gain.std() / len(gain) ** 0.5 > 0
        assert after_maml.losses[row].mean() < 0.75 * untrained.losses[row].mean()
    assert sum(history.loss[-50:]) < sum(history.loss[:50])


def test_evaluation_summary_and_determinism():
    model = MLP(seed=0)
    params = parameters_of(model)
    e1 = evaluate(model, params, SinusoidTasks(), num_tasks=30, steps=(0, 2), seed=1)
    e2 = evaluate(model, params, SinusoidTasks(), num_tasks=30, steps=(0, 2), seed=1)
    assert torch.equal(e1.losses, e2.losses)
    assert e1.losses.shape == (2, 30)
    mean, ci = e1.at(2)
    assert ci > 0 and mean == pytest.approx(e1.losses[1].mean().item())
    assert "steps" in str(e1)
    with pytest.raises(ValueError, match="not evaluated"):
        e1.at(5)


def test_evaluate_with_a_metric():
    model = MLP(seed=0)
    e = evaluate(
        model,
        parameters_of(model),
        SinusoidTasks(),
        num_tasks=10,
        steps=(0,),
        metric_fn=lambda p, t: (p - t).abs().mean(),
    )
    assert e.metrics.shape == (1, 10) and e.metric_mean[0] > 0


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(algorithm="sgd"), ValueError, "algorithm must be one of"),
        (dict(meta_optimizer="rmsprop"), ValueError, "meta_optimizer must be one of"),
        (dict(meta_lr=0), ValueError, "meta_lr"),
        (dict(meta_batch_size=0), ValueError, "meta_batch_size must be >= 1"),
        (dict(iterations=2.0), TypeError, "iterations must be an int"),
        (dict(inner_steps=-1), ValueError, "inner_steps"),
        (dict(shots=0), ValueError, "shots"),
    ],
)
def test_bad_training_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        meta_train(MLP(seed=0), SinusoidTasks(), **(dict(iterations=2, progress=False) | kwargs))


def test_bad_evaluation_and_task_arguments():
    model = MLP(seed=0)
    with pytest.raises(TypeError, match="task distribution"):
        meta_train(model, [1, 2, 3], iterations=1, progress=False)
    with pytest.raises(ValueError, match="steps must be a non-empty"):
        evaluate(model, parameters_of(model), SinusoidTasks(), steps=())
    with pytest.raises(ValueError, match="steps must be a non-empty"):
        evaluate(model, parameters_of(model), SinusoidTasks(), steps=(0, -1))


@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "reptile"])
def test_meta_train_runs_on_episodes(algorithm, split):
    net = ConvNet(out_features=5, hidden=8, seed=0)
    start = parameters_of(net)
    params, history = meta_train(
        net,
        FewShotTasks(split[0]),
        algorithm=algorithm,
        inner_steps=2,
        inner_lr=0.4,
        meta_batch_size=2,
        shots=1,
        queries=2,
        iterations=2,
        loss_fn=F.cross_entropy,
        progress=False,
    )
    assert len(history.loss) == 2 and all(0 < v < 10 for v in history.loss)
    assert all(torch.isfinite(params[k]).all() for k in params)
    assert any(not torch.equal(params[k], start[k]) for k in params)


# -- a short meta-training run -------------------------------------------------------


@pytest.mark.slow
def test_short_maml_run_beats_chance_clearly(split):
    """50 MAML iterations on 5-way 1-shot (a few seconds) reach far above 20% (about 70%)."""
    train, test = split
    net = ConvNet(out_features=5, hidden=16, norm="batch", seed=0)
    params, history = meta_train(
        net,
        FewShotTasks(train),
        algorithm="maml",
        inner_steps=1,
        inner_lr=0.4,
        meta_lr=3e-3,
        meta_batch_size=8,
        shots=1,
        queries=3,
        iterations=50,
        loss_fn=F.cross_entropy,
        progress=False,
    )
    result = evaluate(
        net,
        params,
        FewShotTasks(test),
        num_tasks=200,
        shots=1,
        queries=5,
        steps=(0, 1),
        inner_lr=0.4,
        loss_fn=F.cross_entropy,
        metric_fn=accuracy,
    )
    before, after = result.metric_mean
    low = after - result.metric_ci95[1]
    assert abs(before - 0.2) < 0.05  # no fixed network can know an episode's labels
    assert low > 0.5, f"1-shot accuracy {after:.2f} ± {result.metric_ci95[1]:.2f}"
    assert sum(history.loss[-20:]) < sum(history.loss[:20])


def annealed_reference_loop(model, tasks, iterations, seed, meta_lr):
    """Reptile with SGD and epsilon annealed linearly to 0, written out by hand."""
    theta = parameters_of(model)
    optimizer = torch.optim.SGD(list(theta.values()), lr=meta_lr)
    generator = torch.Generator().manual_seed(seed)
    for iteration in range(iterations):
        for group in optimizer.param_groups:
            group["lr"] = meta_lr * (1 - iteration / iterations)
        batch = tasks.sample(25, 10, 10, generator=generator, iteration=iteration)
        direction, _ = meta_gradient_and_loss(
            model, theta, batch, algorithm="reptile", inner_steps=3, inner_lr=0.01
        )
        optimizer.zero_grad(set_to_none=False)
        for name, p in theta.items():
            p.grad = direction[name]
        optimizer.step()
    return theta


def test_schedule_anneals_the_outer_rate_like_a_hand_written_loop():
    model = MLP(hidden=(16,), seed=0)
    expected = annealed_reference_loop(model, SinusoidTasks(), 6, 2, 1.0)
    params, _ = meta_train(
        model,
        SinusoidTasks(),
        algorithm="reptile",
        inner_steps=3,
        meta_optimizer="sgd",
        meta_lr=1.0,
        schedule=linear_decay(6),
        iterations=6,
        seed=2,
        progress=False,
    )
    assert all(torch.equal(params[k], expected[k].detach()) for k in params)
    assert linear_decay(4)(0) == 1.0 and linear_decay(4)(3) == 0.25
    with pytest.raises(TypeError, match="schedule must be callable"):
        meta_train(model, SinusoidTasks(), schedule=0.5, iterations=1, progress=False)


def test_optimizer_factory_equals_the_named_optimizer():
    def run(optimizer):
        return meta_train(
            MLP(hidden=(8,), seed=0),
            SinusoidTasks(),
            meta_optimizer=optimizer,
            meta_lr=0.01,
            iterations=3,
            progress=False,
        )

    named, by_factory = run("sgd"), run(torch.optim.SGD)
    assert named.history.loss == by_factory.history.loss
    assert by_factory.history.settings["meta_optimizer"] == "custom"
    assert run(torch.optim.RMSprop).history.loss != named.history.loss
    with pytest.raises(TypeError, match="must return a torch.optim.Optimizer"):
        run(lambda params, lr: None)


def test_arguments_are_checked_and_probed_once_per_run(monkeypatch):
    calls = []
    original = training.check_meta_arguments
    monkeypatch.setattr(
        training, "check_meta_arguments", lambda *a: calls.append(1) or original(*a)
    )
    meta_train(MLP(hidden=(8,), seed=0), SinusoidTasks(), iterations=5, progress=False)
    assert len(calls) == 1
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        meta_train(
            MLP(hidden=(8,), seed=0),
            SinusoidTasks(),
            iterations=2,
            progress=False,
            loss_fn=lambda p, t: p - t,
        )


def test_evaluate_reports_the_steps_asked_for_in_their_order():
    model = MLP(hidden=(8,), seed=0)
    params = parameters_of(model)
    forward = evaluate(model, params, SinusoidTasks(), num_tasks=6, steps=(0, 2, 5))
    backward = evaluate(model, params, SinusoidTasks(), num_tasks=6, steps=(5, 0))
    assert torch.equal(backward.losses[0], forward.losses[2])
    assert torch.equal(backward.losses[1], forward.losses[0])
    assert forward.losses.shape == (3, 6) and forward.metrics is None
