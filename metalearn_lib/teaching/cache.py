"""Meta-train (or pretrain) once per kernel: the chapters' training cache.

A chapter that asks for the same run twice gets the stored result; nothing is
written to disk. :func:`clear_cache` forgets every run (a restarted kernel
starts empty anyway).
"""

from __future__ import annotations

from ..models import MLP
from ..tasks import SinusoidTasks
from ..training import History, TrainResult, meta_train, pretrain

__all__ = ["cached_runs", "clear_cache", "train_cached"]

_TRAINED: dict[tuple, TrainResult] = {}


def train_cached(
    algorithm: str,
    *,
    inner_steps: int = 1,
    inner_lr: float = 0.01,
    iterations: int = 1000,
    meta_batch_size: int = 10,
    shots: int = 10,
    meta_lr: float = 1e-3,
    seed: int = 0,
    model_seed: int = 0,
    diversity: float = 1.0,
    progress: bool = True,
) -> TrainResult:
    """Train an ``MLP(seed=model_seed)`` on ``SinusoidTasks(diversity)``, once per kernel.

    ``algorithm`` is ``"maml"``, ``"fomaml"``, ``"reptile"`` (see
    :func:`~metalearn_lib.training.meta_train`) or ``"pretrain"`` (see
    :func:`~metalearn_lib.training.pretrain`, which uses ``iterations``,
    ``meta_batch_size`` as its batch size, ``shots`` and ``meta_lr``).
    A second call with the same settings returns a copy of the first result
    instantly; ``progress`` is not part of the settings.

    Returns
    -------
    TrainResult
        ``(params, history)``, as from ``meta_train``.
    """
    key = (
        algorithm,
        inner_steps,
        float(inner_lr),
        iterations,
        meta_batch_size,
        shots,
        float(meta_lr),
        seed,
        model_seed,
        float(diversity),
    )
    if key not in _TRAINED:
        model, tasks = MLP(seed=model_seed), SinusoidTasks(diversity)
        if algorithm == "pretrain":
            result = pretrain(
                model,
                tasks,
                iterations=iterations,
                batch_size=meta_batch_size,
                shots=shots,
                lr=meta_lr,
                seed=seed,
                progress=progress,
            )
        else:
            result = meta_train(
                model,
                tasks,
                algorithm=algorithm,
                inner_steps=inner_steps,
                inner_lr=inner_lr,
                meta_batch_size=meta_batch_size,
                shots=shots,
                queries=shots,
                meta_lr=meta_lr,
                iterations=iterations,
                seed=seed,
                progress=progress,
            )
        _TRAINED[key] = result
    params, history = _TRAINED[key]
    copy = History(list(history.loss), list(history.elapsed), dict(history.settings))
    return TrainResult({n: p.clone() for n, p in params.items()}, copy)


def cached_runs() -> int:
    """How many runs the cache holds."""
    return len(_TRAINED)


def clear_cache() -> None:
    """Forget every cached run: the next :func:`train_cached` call trains again."""
    _TRAINED.clear()
