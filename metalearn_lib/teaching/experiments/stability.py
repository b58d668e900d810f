"""Experiment 6 of chapter 4: MAML evaluated beyond its trained inner steps blows up.

A short version of ``benchmarks/maml_stability.py``. MAML is meta-trained with
ONE inner step, then adapted with more steps at test time. Plain gradient
descent with step size alpha shrinks the error along a direction of
curvature h only while ``alpha * h < 2``; the experiment measures the largest
eigenvalue of each support loss's Hessian (power iteration on
Hessian-vector products, no Hessian is formed) during training and on every
test task, and keeps the curves of the tasks that blew up.

The benchmark uses the paper's alpha = 0.01 (so 2/alpha = 200) and needs
tens of thousands of iterations before the curvature crosses it; here a
ten-times larger alpha puts the line at 20, which the curvature crosses in a
few hundred iterations. The price: a larger inner step fits the tasks less
well, so the losses are higher than the paper's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import functional_call, grad, vmap

from ...algorithms import adaptation_trajectory, mse_loss
from ...checks import Params, check_bool, check_int, check_positive
from ...tasks import SinusoidTasks
from ...training import Evaluation, evaluate, meta_train
from .recipe import CHAPTER, Settings, check_settings, format_number, markdown_table

__all__ = ["BlownTask", "StabilityResult", "largest_curvature", "maml_stability"]


def largest_curvature(
    model, params: Params, support_x: Tensor, support_y: Tensor, iterations: int = 20
) -> Tensor:
    """Per task, the largest eigenvalue of the support loss's Hessian at ``params``.

    Power iteration: ``v <- H v / |H v|`` with ``H v`` the gradient of
    ``grad L . v`` (a Hessian-vector product), for all tasks at once
    (``vmap`` over the task axis of ``support_x``, ``support_y``).

    Returns
    -------
    Tensor
        ``[tasks]`` the Rayleigh quotient ``v . H v`` after ``iterations`` steps.
    """
    check_int("iterations", iterations, 1)
    theta = {n: p.detach() for n, p in params.items()}

    def support_loss(p: Params, x: Tensor, y: Tensor) -> Tensor:
        return mse_loss(functional_call(model, p, (x,)), y)

    def top_eigenvalue(x: Tensor, y: Tensor) -> Tensor:
        def slope(p: Params, v: Params) -> Tensor:  # grad L(p) . v
            g = grad(support_loss)(p, x, y)
            return sum((g[n] * v[n]).sum() for n in g)

        v = {n: torch.ones_like(p) for n, p in theta.items()}
        value = torch.zeros((), dtype=next(iter(theta.values())).dtype)
        for _ in range(iterations):
            norm = torch.sqrt(sum((t * t).sum() for t in v.values()))
            v = {n: t / norm for n, t in v.items()}
            hv = grad(slope)(theta, v)
            value = sum((hv[n] * v[n]).sum() for n in hv)
            v = hv
        return value

    return vmap(top_eigenvalue)(support_x, support_y)


@dataclass
class BlownTask:
    """One test task that blew up, ready to draw.

    Attributes
    ----------
    index : int
        Its index among the test tasks.
    amplitude, phase : float
        The sinusoid.
    curvature : float
        Largest eigenvalue of its support loss's Hessian at the initialization.
    losses : list of float
        Query loss after each evaluated step count (inf where non-finite).
    x, truth : Tensor
        ``[N]`` grid and the true function on it.
    support_x, support_y : Tensor
        ``[K]`` its support points.
    predictions : Tensor
        ``[len(steps), N]`` the adapted network on the grid after each step count.
    """

    index: int
    amplitude: float
    phase: float
    curvature: float
    losses: list[float]
    x: Tensor
    truth: Tensor
    support_x: Tensor
    support_y: Tensor
    predictions: Tensor


@dataclass
class StabilityResult:
    """Result of :func:`maml_stability`.

    Attributes
    ----------
    checkpoints : list of int
        Iterations at which the curvature was measured (0 is the untrained network).
    probe_curvature : Tensor
        ``[checkpoints, probe_tasks]`` largest curvature of the probe tasks' support losses.
    evaluation : Evaluation
        Test-task losses after each of ``evaluation.steps`` at the end of training.
    test_curvature : Tensor
        ``[test tasks]`` largest curvature of every test task's support loss at the end.
    blown : list of int
        Test tasks whose loss is non-finite or above ``threshold`` after some step count.
    drawn : list of BlownTask
        The worst few of them, with their curves.
    inner_lr, shots, iterations, threshold :
        The recipe.
    """

    checkpoints: list[int]
    probe_curvature: Tensor
    evaluation: Evaluation
    test_curvature: Tensor
    blown: list[int]
    drawn: list[BlownTask]
    inner_lr: float
    shots: int
    iterations: int
    threshold: float

    @property
    def limit(self) -> float:
        """2 / alpha: the largest curvature plain gradient descent with step alpha survives."""
        return 2.0 / self.inner_lr

    def blown_at(self, steps: int) -> int:
        """Number of test tasks above the threshold (or non-finite) after ``steps`` steps."""
        losses = self.evaluation.losses[self.evaluation.steps.index(steps)]
        return int(((~torch.isfinite(losses)) | (losses > self.threshold)).sum())

    def median_at(self, steps: int) -> float:
        """Median test loss after ``steps`` steps (non-finite counted as infinite)."""
        losses = self.evaluation.losses[self.evaluation.steps.index(steps)]
        return losses.nan_to_num(nan=math.inf).median().item()

    def share_above_limit(self, curvature: Tensor) -> float:
        """Share of the curvatures above 2/alpha."""
        return (curvature > self.limit).double().mean().item()

    def claims(self) -> dict:
        """The numbers the chapter's text relies on, in one flat dict."""
        steps = self.evaluation.steps
        blown = torch.zeros(len(self.test_curvature), dtype=torch.bool)
        blown[self.blown] = True
        out = {
            "limit": self.limit,
            "first_probe_median": self.probe_curvature[0].median().item(),
            "lowest_probe_median": self.probe_curvature.median(dim=1).values.min().item(),
            "last_probe_median": self.probe_curvature[-1].median().item(),
            "last_probe_share_above": self.share_above_limit(self.probe_curvature[-1]),
            "test_tasks": len(self.test_curvature),
            "blown": len(self.blown),
            "test_share_above": self.share_above_limit(self.test_curvature),
        }
        for s in steps:
            out[f"blown_at_{s}"] = self.blown_at(s)
            out[f"median_at_{s}"] = self.median_at(s)
        if self.blown:
            out["blown_share_above"] = self.share_above_limit(self.test_curvature[blown])
            out["blown_min_curvature"] = self.test_curvature[blown].min().item()
        if (~blown).any():
            out["other_share_above"] = self.share_above_limit(self.test_curvature[~blown])
        return out

    def summary(self) -> str:
        """The measured numbers as Markdown tables."""
        steps = self.evaluation.steps
        rows = [
            [
                str(it),
                format_number(c.median().item()),
                format_number(c.max().item()),
                f"{self.share_above_limit(c):.0%}",
            ]
            for it, c in zip(self.checkpoints, self.probe_curvature)
        ]
        curvature = markdown_table(
            [
                "iteration",
                "median curvature",
                "largest",
                f"share above 2/alpha = {self.limit:g}",
            ],
            rows,
        )
        test = markdown_table(
            ["after", *(f"{s} step{'s' if s != 1 else ''}" for s in steps)],
            [
                ["median test loss", *(format_number(self.median_at(s)) for s in steps)],
                [f"tasks above {self.threshold:g}", *(str(self.blown_at(s)) for s in steps)],
            ],
        )
        return (
            f"Curvature of {self.probe_curvature.shape[1]} probe support losses during "
            f"meta-training (1 inner step, alpha = {self.inner_lr:g}, K = {self.shots}):\n\n"
            f"{curvature}\n\nAt the end, on {len(self.test_curvature)} test tasks:\n\n{test}"
        )


def _blown_task(
    model, theta: Params, batch, i: int, steps, inner_lr, curvature, losses
) -> BlownTask:
    """The curves of test task ``i`` after each step count (the grid is its query set)."""
    x = torch.linspace(-5.0, 5.0, 200).unsqueeze(-1)
    truth = batch.functions(x.to(torch.float64))[i].to(x.dtype)
    predictions = []
    for s in steps:
        path = adaptation_trajectory(
            model,
            theta,
            batch.support_x[i],
            batch.support_y[i],
            x,
            truth,
            steps=s,
            inner_lr=inner_lr,
        )
        with torch.no_grad():
            predictions.append(functional_call(model, path.params, (x,))[:, 0])
    amplitude, phase, _ = batch.functions.coeffs[i].tolist()
    return BlownTask(
        index=i,
        amplitude=amplitude,
        phase=phase,
        curvature=curvature,
        losses=[v if math.isfinite(v) else math.inf for v in losses],
        x=x[:, 0],
        truth=truth[:, 0],
        support_x=batch.support_x[i, :, 0],
        support_y=batch.support_y[i, :, 0],
        predictions=torch.stack(predictions),
    )


def maml_stability(
    settings: Settings = CHAPTER,
    *,
    inner_lr: float = 0.1,
    shots: int = 5,
    iterations: int = 800,
    checkpoint_every: int = 200,
    eval_steps: Sequence[int] = (1, 2, 5, 10),
    probe_tasks: int = 20,
    power_iterations: int = 20,
    threshold: float = 100.0,
    draw: int = 3,
    progress: bool = True,
) -> StabilityResult:
    """Meta-train MAML with one inner step; adapt with more; measure curvature and blow-ups.

    Parameters
    ----------
    settings : Settings
        Model, meta-optimizer, meta-batch size, seeds and number of test tasks.
    inner_lr : float
        alpha, for training and adaptation (the paper's 0.01 needs tens of
        thousands of iterations to show the effect; see the module docstring).
    shots : int
        Support points per task (the paper's K = 5).
    iterations, checkpoint_every : int
        Meta-training length, and how often the probe curvature is measured.
    eval_steps : sequence of int
        Adaptation step counts at test time (training uses 1).
    probe_tasks, power_iterations : int
        Tasks whose curvature is followed during training; power-iteration steps.
    threshold : float
        A test task *blew up* if its loss is above this, or non-finite, after some step count.
    draw : int
        How many of the worst blown-up tasks to keep curves of.
    progress : bool
        Show a progress bar.
    """
    settings = check_settings(settings)
    check_positive("inner_lr", inner_lr)
    for name, value in [
        ("shots", shots),
        ("iterations", iterations),
        ("checkpoint_every", checkpoint_every),
        ("probe_tasks", probe_tasks),
        ("power_iterations", power_iterations),
    ]:
        check_int(name, value, 1)
    check_int("draw", draw, 0)
    check_positive("threshold", threshold)
    check_bool("progress", progress)
    steps = tuple(eval_steps)
    if (
        not steps
        or list(steps) != sorted(set(steps))
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in steps)
    ):
        raise ValueError(f"eval_steps must be increasing ints >= 1, got {eval_steps!r}")

    model, tasks = settings.model(), SinusoidTasks()
    probe = tasks.sample(probe_tasks, shots, 1, generator=torch.Generator().manual_seed(99))
    checkpoints, curvatures = (
        [0],
        [
            largest_curvature(
                model,
                dict(model.named_parameters()),
                probe.support_x,
                probe.support_y,
                power_iterations,
            )
        ],
    )

    def measure(done: int, params: Params) -> None:
        if done % checkpoint_every == 0:
            checkpoints.append(done)
            curvatures.append(
                largest_curvature(model, params, probe.support_x, probe.support_y, power_iterations)
            )

    theta, _ = meta_train(
        model,
        tasks,
        algorithm="maml",
        progress=progress,
        callback=measure,
        **settings.train_kwargs(
            inner_steps=1, inner_lr=inner_lr, shots=shots, iterations=iterations
        ),
    )
    theta = {n: p.detach() for n, p in theta.items()}
    kwargs = settings.eval_kwargs(steps=steps, inner_lr=inner_lr, shots=shots)
    evaluation = evaluate(model, theta, tasks, chunk_size=kwargs["num_tasks"], **kwargs)
    # evaluate drew its tasks in one chunk from a generator seeded eval_seed: draw them again.
    batch = tasks.sample(
        kwargs["num_tasks"],
        shots,
        kwargs["queries"],
        generator=torch.Generator().manual_seed(kwargs["seed"]),
    )
    test_curvature = largest_curvature(
        model, theta, batch.support_x, batch.support_y, power_iterations
    )
    losses = evaluation.losses.nan_to_num(nan=math.inf)
    bad = ((losses > threshold) | ~torch.isfinite(losses)).any(dim=0)
    blown = bad.nonzero().flatten().tolist()
    worst = sorted(blown, key=lambda i: -losses[:, i].max().item())[:draw]
    drawn = [
        _blown_task(
            model, theta, batch, i, steps, inner_lr, test_curvature[i].item(), losses[:, i].tolist()
        )
        for i in worst
    ]
    return StabilityResult(
        checkpoints=checkpoints,
        probe_curvature=torch.stack(curvatures).detach(),
        evaluation=evaluation,
        test_curvature=test_curvature.detach(),
        blown=blown,
        drawn=drawn,
        inner_lr=float(inner_lr),
        shots=shots,
        iterations=iterations,
        threshold=float(threshold),
    )
