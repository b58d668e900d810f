"""Experiment 5 of chapter 4: MAML's sensitivity to its hyperparameters.

* :func:`tune_meta_lr` - each meta-optimizer over a range of meta learning
  rates, so that each can be compared at its own best rate;
* :func:`hyperparameter_grid` - the final loss over inner steps, inner
  learning rate, meta-optimizer (each at its own rate) and meta-batch size,
  divergence included.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ...algorithms import meta_gradient
from ...checks import Params, check_bool, check_int, check_positive, flatten
from ...models import parameters_of
from ...tasks import SinusoidTasks
from ...training import META_OPTIMIZERS, evaluate, meta_train
from .recipe import CHAPTER, Settings, check_settings, format_number, markdown_table, nonempty

__all__ = ["GridResult", "MetaLrTuning", "hyperparameter_grid", "tune_meta_lr"]


@dataclass
class GridResult:
    """Result of :func:`hyperparameter_grid`.

    Rows are (inner steps, inner learning rate); columns are
    (meta-optimizer, meta-batch size).

    Attributes
    ----------
    rows : list of (int, float)
    columns : list of (str, int)
    final_loss : Tensor
        ``[rows, columns]`` query loss on fresh tasks after adapting with the
        row's own inner loop; NaN where training or adaptation produced
        non-finite numbers.
    reference_loss : float
        The untrained network's loss on the same tasks *without* adaptation
        (about what predicting zero gives): the bar to beat.
    untrained_loss : Tensor
        ``[rows]`` the untrained network's loss after the row's own
        adaptation; above ``reference_loss`` when that inner loop overshoots.
    start_gradient : Tensor
        ``[rows]`` median absolute entry of MAML's meta-gradient at the
        untrained network, with the row's inner loop (one meta-batch).
    status : list of list of str
        ``"learned"`` (below ``stall_ratio * reference_loss``), ``"stalled"``
        (not below it) or ``"diverged"`` (non-finite, or above
        ``diverge_ratio * reference_loss``).
    histories : dict of (row, column) to History
    iterations : int
    settings : Settings
    stall_ratio, diverge_ratio : float
    """

    rows: list[tuple[int, float]]
    columns: list[tuple[str, int]]
    final_loss: Tensor
    reference_loss: float
    untrained_loss: Tensor
    start_gradient: Tensor
    status: list[list[str]]
    histories: dict
    iterations: int
    settings: Settings
    stall_ratio: float
    diverge_ratio: float
    meta_lrs: dict[str, float] = field(default_factory=dict)

    def row_labels(self) -> list[str]:
        return [f"{k} inner step{'s' if k != 1 else ''}, lr {lr:g}" for k, lr in self.rows]

    def column_labels(self) -> list[str]:
        names = {"adam": "Adam", "sgd": "SGD"}
        return [
            f"{names.get(opt, opt)} (lr {self.meta_lrs.get(opt, self.settings.meta_lr):g}), "
            f"{b} tasks"
            for opt, b in self.columns
        ]

    def cells(self, status: str) -> list[tuple[int, int]]:
        """``(row, column)`` indices of every cell with the given status."""
        if status not in ("learned", "stalled", "diverged"):
            raise ValueError(f"status must be 'learned', 'stalled' or 'diverged', got {status!r}")
        return [
            (i, j)
            for i in range(len(self.rows))
            for j in range(len(self.columns))
            if self.status[i][j] == status
        ]

    def best(self) -> tuple[int, int] | None:
        """``(row, column)`` of the lowest finite final loss (None if every cell diverged)."""
        finite = torch.isfinite(self.final_loss)
        if not finite.any():
            return None
        masked = torch.where(finite, self.final_loss, torch.full_like(self.final_loss, math.inf))
        return divmod(int(masked.argmin()), self.final_loss.shape[1])

    def claims(self) -> dict:
        """The numbers the chapter's text relies on, in one flat dict.

        ``status`` and ``final_loss`` are keyed ``"<row label> | <column label>"``.
        """
        best = self.best()
        out = {
            "reference_loss": self.reference_loss,
            "untrained_loss": self.untrained_loss.tolist(),
            "start_gradient": self.start_gradient.tolist(),
            "rows": [list(r) for r in self.rows],
            "columns": [list(c) for c in self.columns],
            "status": self.status,
            "final_loss": [
                [v if math.isfinite(v) else None for v in row] for row in self.final_loss.tolist()
            ],
            "best": None if best is None else list(best),
        }
        for status in ("learned", "stalled", "diverged"):
            out[f"count_{status}"] = len(self.cells(status))
        return out

    def summary(self) -> str:
        """The grid's numbers as a Markdown table, one row per inner loop."""
        header = [
            "inner loop",
            "untrained, after this adaptation",
            "median size of a meta-gradient entry at the start",
            *self.column_labels(),
        ]
        rows = [
            [
                label,
                format_number(self.untrained_loss[i].item()),
                format_number(self.start_gradient[i].item(), 2),
                *(
                    f"{format_number(self.final_loss[i, j].item())} ({self.status[i][j]})"
                    for j in range(len(self.columns))
                ),
            ]
            for i, label in enumerate(self.row_labels())
        ]
        counts = ", ".join(
            f"{len(self.cells(status))} {status}" for status in ("learned", "stalled", "diverged")
        )
        return (
            markdown_table(header, rows)
            + f"\n\nUntrained network without adaptation: {format_number(self.reference_loss)}. "
            f"{counts} of {self.final_loss.numel()} settings after {self.iterations} "
            "meta-iterations each."
        )


def hyperparameter_grid(
    *,
    settings: Settings = CHAPTER,
    inner_steps: Sequence[int] = (1, 3),
    inner_lrs: Sequence[float] = (0.03, 0.3),
    meta_optimizers: Sequence[str] = ("adam", "sgd"),
    meta_batch_sizes: Sequence[int] = (4, 16),
    iterations: int = 100,
    stall_ratio: float = 0.8,
    diverge_ratio: float = 2.0,
    meta_lrs: Mapping[str, float] | None = None,
    progress: bool = True,
) -> GridResult:
    """Train MAML for every combination of four hyperparameters; record the final loss.

    Every cell starts from the same weights, sees the same task stream and is
    judged on the same fresh tasks, after adapting with its own inner steps
    and inner learning rate. Each meta-optimizer uses its own meta learning
    rate from ``meta_lrs`` (e.g. the ``best`` of :func:`tune_meta_lr`), or
    ``settings.meta_lr`` where none is given.

    Parameters
    ----------
    settings : Settings
    inner_steps, inner_lrs : sequences
        The rows: every (steps, lr) pair.
    meta_optimizers, meta_batch_sizes : sequences
        The columns: every (optimizer, batch size) pair.
    iterations : int
        Meta-iterations per cell.
    stall_ratio, diverge_ratio : float
        With ``reference`` the untrained network's loss without adaptation,
        a cell *learned* if its loss is below ``stall_ratio * reference``,
        *diverged* if it is non-finite or above ``diverge_ratio * reference``,
        and *stalled* otherwise.
    progress : bool
        Show a progress bar over the cells.
    """
    settings = check_settings(settings)
    steps_values = nonempty("inner_steps", inner_steps)
    lr_values = nonempty("inner_lrs", inner_lrs)
    opt_values = nonempty("meta_optimizers", meta_optimizers)
    batch_values = nonempty("meta_batch_sizes", meta_batch_sizes)
    for k in steps_values:
        check_int("inner_steps entry", k, 1)
    for lr in lr_values:
        check_positive("inner_lrs entry", lr)
    for opt in opt_values:
        if opt not in META_OPTIMIZERS:
            raise ValueError(f"meta_optimizers must be chosen from {META_OPTIMIZERS}, got {opt!r}")
    for b in batch_values:
        check_int("meta_batch_sizes entry", b, 1)
    check_int("iterations", iterations, 1)
    check_positive("stall_ratio", stall_ratio)
    check_positive("diverge_ratio", diverge_ratio)
    if not stall_ratio < diverge_ratio:
        raise ValueError(
            f"stall_ratio ({stall_ratio}) must be below diverge_ratio ({diverge_ratio})"
        )
    check_bool("progress", progress)
    meta_lrs = {} if meta_lrs is None else dict(meta_lrs)
    for opt, lr in meta_lrs.items():
        if opt not in META_OPTIMIZERS:
            raise ValueError(f"meta_lrs keys must be chosen from {META_OPTIMIZERS}, got {opt!r}")
        check_positive(f"meta_lrs[{opt!r}]", lr)

    rows = [(k, float(lr)) for k in steps_values for lr in lr_values]
    columns = [(opt, b) for opt in opt_values for b in batch_values]
    model = settings.model()
    tasks = SinusoidTasks()
    start = parameters_of(model)

    def judge(params: Params, k: int, lr: float) -> float:
        if not all(bool(torch.isfinite(p).all()) for p in params.values()):
            return float("nan")
        ev = evaluate(model, params, tasks, **settings.eval_kwargs(steps=(k,), inner_lr=lr))
        value = ev.mean[0]
        return value if math.isfinite(value) else float("nan")

    reference = evaluate(model, start, tasks, **settings.eval_kwargs(steps=(0,))).mean[0]
    untrained = torch.tensor([judge(start, k, lr) for k, lr in rows], dtype=torch.float64)
    probe = tasks.sample(
        max(batch_values),
        settings.shots,
        settings.queries,
        generator=torch.Generator().manual_seed(settings.seed),
    )
    start_gradient = torch.empty(len(rows), dtype=torch.float64)
    for i, (k, lr) in enumerate(rows):
        g = meta_gradient(model, start, probe, algorithm="maml", inner_steps=k, inner_lr=lr)
        start_gradient[i] = flatten(g).abs().median().item()
    final = torch.full((len(rows), len(columns)), float("nan"), dtype=torch.float64)
    status = [["" for _ in columns] for _ in rows]
    histories = {}
    cells = [(i, j) for i in range(len(rows)) for j in range(len(columns))]
    for i, j in tqdm(cells, desc="grid", disable=not progress, leave=False):
        (k, lr), (opt, b) = rows[i], columns[j]
        params, history = meta_train(
            model,
            tasks,
            progress=False,
            **settings.train_kwargs(
                inner_steps=k,
                inner_lr=lr,
                meta_optimizer=opt,
                meta_lr=meta_lrs.get(opt, settings.meta_lr),
                meta_batch_size=b,
                iterations=iterations,
            ),
        )
        histories[(i, j)] = history
        value = judge(params, k, lr)
        final[i, j] = value
        if not math.isfinite(value) or value > diverge_ratio * reference:
            status[i][j] = "diverged"
        elif value > stall_ratio * reference:
            status[i][j] = "stalled"
        else:
            status[i][j] = "learned"
    return GridResult(
        rows=rows,
        columns=columns,
        final_loss=final,
        reference_loss=reference,
        untrained_loss=untrained,
        start_gradient=start_gradient,
        status=status,
        histories=histories,
        iterations=iterations,
        settings=settings,
        stall_ratio=stall_ratio,
        diverge_ratio=diverge_ratio,
        meta_lrs={opt: float(meta_lrs.get(opt, settings.meta_lr)) for opt in opt_values},
    )


@dataclass
class MetaLrTuning:
    """Result of :func:`tune_meta_lr`.

    Attributes
    ----------
    rates : tuple of float
        Meta learning rates tried, for every optimizer.
    losses : dict of str to list of float
        Per optimizer, the test loss after training at each rate (NaN: diverged).
    reference_loss : float
        The untrained network's loss on the same tasks without adaptation.
    inner_steps, inner_lr, meta_batch_size, iterations :
        The recipe every run shares.
    """

    rates: tuple[float, ...]
    losses: dict[str, list[float]]
    reference_loss: float
    inner_steps: int
    inner_lr: float
    meta_batch_size: int
    iterations: int

    @property
    def best(self) -> dict[str, float]:
        """Per optimizer, the rate with the lowest finite loss."""
        out = {}
        for opt, values in self.losses.items():
            finite = [(v, r) for v, r in zip(values, self.rates) if math.isfinite(v)]
            if finite:
                out[opt] = min(finite)[1]
        return out

    def working(self, optimizer: str, stall_ratio: float = 0.8) -> list[float]:
        """Rates at which ``optimizer`` learned (loss below ``stall_ratio`` × the reference)."""
        return [
            r
            for r, v in zip(self.rates, self.losses[optimizer])
            if math.isfinite(v) and v < stall_ratio * self.reference_loss
        ]

    def claims(self) -> dict:
        """The numbers the chapter's text relies on, in one flat dict."""
        best = self.best
        out = {"reference_loss": self.reference_loss, "rates": list(self.rates)}
        for opt, values in self.losses.items():
            out[f"{opt}_losses"] = [v if math.isfinite(v) else None for v in values]
            out[f"{opt}_best_rate"] = best.get(opt)
            out[f"{opt}_best_loss"] = min((v for v in values if math.isfinite(v)), default=None)
            out[f"{opt}_working"] = self.working(opt)
            out[f"{opt}_diverged"] = [r for r, v in zip(self.rates, values) if not math.isfinite(v)]
        return out

    def summary(self) -> str:
        """Loss per optimizer and rate as a Markdown table."""
        names = {"adam": "Adam", "sgd": "SGD"}
        rows = [
            [names.get(opt, opt), *(format_number(v) for v in values), f"{self.best.get(opt, '-')}"]
            for opt, values in self.losses.items()
        ]
        return (
            markdown_table(
                ["meta-optimizer", *(f"lr {r:g}" for r in self.rates), "best rate"], rows
            )
            + f"\n\nMAML, {self.inner_steps} inner step(s) of lr {self.inner_lr:g}, "
            f"{self.meta_batch_size} tasks per meta-batch, {self.iterations} meta-iterations; "
            f"untrained network without adaptation: {format_number(self.reference_loss)}."
        )


def tune_meta_lr(
    *,
    settings: Settings = CHAPTER,
    rates: Sequence[float] = (0.003, 0.01, 0.03, 0.1, 0.3),
    meta_optimizers: Sequence[str] = ("adam", "sgd"),
    inner_steps: int = 1,
    inner_lr: float = 0.03,
    meta_batch_size: int = 4,
    iterations: int = 100,
    progress: bool = True,
) -> MetaLrTuning:
    """Train MAML with every meta-optimizer at every meta learning rate; record the test loss.

    Every run starts from the same weights, sees the same task stream and is
    judged on the same fresh tasks after its own adaptation, so the rate and
    the optimizer are the only things that change.
    """
    settings = check_settings(settings)
    rate_values = nonempty("rates", rates)
    for r in rate_values:
        check_positive("rates entry", r)
    opt_values = nonempty("meta_optimizers", meta_optimizers)
    for opt in opt_values:
        if opt not in META_OPTIMIZERS:
            raise ValueError(f"meta_optimizers must be chosen from {META_OPTIMIZERS}, got {opt!r}")
    check_int("inner_steps", inner_steps, 1)
    check_positive("inner_lr", inner_lr)
    check_int("meta_batch_size", meta_batch_size, 1)
    check_int("iterations", iterations, 1)
    check_bool("progress", progress)
    model, tasks = settings.model(), SinusoidTasks()
    judge = settings.eval_kwargs(steps=(inner_steps,), inner_lr=inner_lr)
    reference = evaluate(model, parameters_of(model), tasks, **settings.eval_kwargs(steps=(0,)))
    losses: dict[str, list[float]] = {opt: [] for opt in opt_values}
    runs = [(opt, r) for opt in opt_values for r in rate_values]
    for opt, r in tqdm(runs, desc="meta learning rates", disable=not progress, leave=False):
        params, _ = meta_train(
            model,
            tasks,
            progress=False,
            **settings.train_kwargs(
                inner_steps=inner_steps,
                inner_lr=inner_lr,
                meta_optimizer=opt,
                meta_lr=r,
                meta_batch_size=meta_batch_size,
                iterations=iterations,
            ),
        )
        value = float("nan")
        if all(bool(torch.isfinite(p).all()) for p in params.values()):
            value = evaluate(model, params, tasks, **judge).mean[0]
        losses[opt].append(value if math.isfinite(value) else float("nan"))
    return MetaLrTuning(
        tuple(float(r) for r in rate_values),
        losses,
        reference.mean[0],
        inner_steps,
        float(inner_lr),
        meta_batch_size,
        iterations,
    )
