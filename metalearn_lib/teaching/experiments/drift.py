"""Experiment 4 of chapter 4: the task distribution drifts during meta-training."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tqdm.auto import tqdm

from ...checks import Params, check_bool, check_int
from ...models import parameters_of
from ...tasks import DriftingSinusoidTasks
from ...training import Evaluation, History, evaluate, meta_train
from .recipe import (
    CHAPTER,
    ClockedTasks,
    FitCurves,
    Settings,
    adapted_fits,
    check_settings,
    format_number,
    losses_at,
    markdown_table,
    paired_difference,
    with_interval,
)

__all__ = ["DriftResult", "nonstationary_drift"]


@dataclass
class DriftResult:
    """Result of :func:`nonstationary_drift`.

    Attributes
    ----------
    tasks : DriftingSinusoidTasks
        The drifting distribution (its own clock: 0 = start of the drift).
    warmup : int
        Meta-iterations on the early distribution before the drift began.
    checkpoints : list of int
        Meta-iterations after which the initialization was evaluated (0 = untrained).
    early, late : list of Evaluation
        At each checkpoint: loss on tasks from the distribution before the
        drift (early) and after it (late).
    params : dict
        The final initialization.
    history : History
        Training loss of the whole run (segments joined).
    settings : Settings
    fits : dict of str to FitCurves
        ``"early"`` and ``"late"``: the final initialization adapted to 8
        held-out tasks of each distribution (for the figure). The same seed
        draws the same amplitudes and phase offsets before and after the drift,
        so task ``i`` of ``"late"`` is task ``i`` of ``"early"``, drifted.
    fit_task : int
        The task the figure shows: the early task of largest amplitude.
    """

    tasks: DriftingSinusoidTasks
    warmup: int
    checkpoints: list[int]
    early: list[Evaluation]
    late: list[Evaluation]
    params: Params
    history: History
    settings: Settings
    fits: dict[str, FitCurves]
    fit_task: int

    @property
    def drift_end(self) -> int:
        """Meta-iteration at which the drift was complete."""
        return self.warmup + self.tasks.horizon

    def curve(self, which: str) -> list[float]:
        """Loss after ``report_steps`` adaptation steps at each checkpoint.

        ``which`` is ``"early"`` or ``"late"``.
        """
        if which not in ("early", "late"):
            raise ValueError(f"which must be 'early' or 'late', got {which!r}")
        evaluations = self.early if which == "early" else self.late
        s = self.settings.report_steps
        return [e.at(s)[0] for e in evaluations]

    def forgetting(self) -> tuple[float, float]:
        """Final minus pre-drift loss on the same early test tasks, with its 95% half-width.

        Positive beyond the half-width means the early tasks were forgotten.
        """
        at_warmup = self.checkpoints.index(self.warmup) if self.warmup in self.checkpoints else 0
        s = self.settings.report_steps
        return paired_difference(losses_at(self.early[-1], s), losses_at(self.early[at_warmup], s))

    @property
    def at_warmup(self) -> int:
        """Index of the checkpoint where the drift began (0 if it was not a checkpoint)."""
        return self.checkpoints.index(self.warmup) if self.warmup in self.checkpoints else 0

    def training_loss_around_drift(self, window: int = 25) -> tuple[float, float]:
        """Mean meta-training loss of the ``window`` iterations before the drift and at the end.

        Both are measured on the tasks of the moment. NaN when the run has no
        iterations before the drift or none after it.
        """
        loss = self.history.loss
        window = max(1, min(window, self.warmup, len(loss) - self.warmup))
        if self.warmup < 1 or len(loss) <= self.warmup:
            return float("nan"), float("nan")
        before = loss[self.warmup - window : self.warmup]
        after = loss[-window:]
        return sum(before) / len(before), sum(after) / len(after)

    def summary(self) -> str:
        """The run's numbers as a Markdown table: loss on early and late tasks per checkpoint."""
        s = self.settings.report_steps
        early, late = self.curve("early"), self.curve("late")
        rows = [
            [str(c), format_number(e), format_number(lt)]
            for c, e, lt in zip(self.checkpoints, early, late)
        ]
        header = ["after iteration", f"early tasks, loss after {s} steps", "late tasks"]
        before, after = self.training_loss_around_drift()
        return (
            markdown_table(header, rows)
            + f"\n\nMeta-training loss (tasks of the moment, mean of 25 iterations): "
            f"{format_number(before)} just before the drift, {format_number(after)} at the end. "
            f"Early tasks, final minus pre-drift loss (paired): {with_interval(self.forgetting())}."
        )


def nonstationary_drift(
    *,
    settings: Settings = CHAPTER,
    warmup: int = 150,
    horizon: int = 150,
    iterations: int = 300,
    checkpoint_every: int = 50,
    shift: float = math.pi,
    progress: bool = True,
) -> DriftResult:
    """Meta-train MAML while the task distribution drifts; track early and late tasks.

    The tasks are :class:`~metalearn_lib.tasks.DriftingSinusoidTasks`. For
    the first ``warmup`` meta-iterations they come from the early
    distribution (the MAML paper's sinusoids); then the phase range slides
    by ``shift`` over ``horizon`` iterations and stays there. Training pauses
    every ``checkpoint_every`` iterations to evaluate the current
    initialization on tasks from before and after the drift (through
    ``meta_train``'s ``callback``, so the run itself is not interrupted).

    Parameters
    ----------
    settings : Settings
        Recipe (its ``iterations`` is replaced by ``iterations`` here).
    warmup : int
        Iterations on the early distribution before the drift starts (>= 0).
    horizon : int
        Iterations over which the drift happens (>= 1).
    iterations : int
        Total meta-iterations.
    checkpoint_every : int
        Evaluate after every this many iterations (must divide ``iterations``).
    shift : float
        Total phase shift in radians (pi: the late sines are the early ones upside down).
    progress : bool
        Show a progress bar over the segments.
    """
    settings = check_settings(settings)
    check_int("warmup", warmup, 0)
    check_int("horizon", horizon, 1)
    check_int("iterations", iterations, 1)
    check_int("checkpoint_every", checkpoint_every, 1)
    if iterations % checkpoint_every:
        raise ValueError(
            f"checkpoint_every ({checkpoint_every}) must divide iterations ({iterations})"
        )
    check_bool("progress", progress)
    tasks = DriftingSinusoidTasks(horizon, shift=shift)
    model = settings.model()
    params = parameters_of(model)

    def judge(p: Params) -> tuple[Evaluation, Evaluation]:
        early = evaluate(model, p, tasks, iteration=0, **settings.eval_kwargs())
        late = evaluate(model, p, tasks, iteration=horizon, **settings.eval_kwargs())
        return early, late

    e, lt = judge(params)
    checkpoints, early, late = [0], [e], [lt]
    bar = tqdm(total=iterations, desc="drift", disable=not progress, leave=False)

    def checkpoint(done: int, theta: Params) -> None:
        bar.update(1)
        if done % checkpoint_every == 0:
            e, lt = judge(theta)
            checkpoints.append(done)
            early.append(e)
            late.append(lt)

    params, history = meta_train(
        model,
        ClockedTasks(tasks, clock=lambda t: max(0, t - warmup)),
        params=params,
        progress=False,
        callback=checkpoint,
        **settings.train_kwargs(iterations=iterations),
    )
    bar.close()
    history.settings.update(warmup=warmup, horizon=horizon)
    fits = {
        which: adapted_fits(
            model,
            params,
            tasks,
            num_tasks=8,
            steps=settings.report_steps,
            inner_lr=settings.inner_lr,
            shots=settings.shots,
            iteration=when,
            seed=3,
        )
        for which, when in (("early", 0), ("late", horizon))
    }
    fit_task = int(fits["early"].truth.abs().amax(dim=1).argmax())
    return DriftResult(
        tasks, warmup, checkpoints, early, late, params, history, settings, fits, fit_task
    )
