"""Chapter 6's experiments: each variant against MAML, on the same tasks and seeds.

Each experiment answers one of MAML's limits that chapters 3 and 4 measured,
and returns numbers only (the figures live in
:mod:`metalearn_lib.teaching.figures_variants`):

* :func:`imaml_memory` - memory against inner steps, MAML and iMAML, and how
  closely iMAML's direction follows MAML's;
* :func:`anil_feature_reuse` - ANIL's time per meta-step against MAML's on the
  ConvNet, and how much of MAML's own adaptation the head alone achieves;
* :func:`metasgd_rates` - Meta-SGD against MAML, and its learned inner rates
  layer by layer;
* :func:`mamlpp_seeds` - MAML++ against MAML over seeds, beyond the trained
  number of steps, with the curvature of the support loss (chapter 4's story).

Every result has ``claims()``: the numbers the chapter's text relies on, in
one flat dict that the chapter prints and its claims test reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.func import grad, vmap

from ...algorithms import meta_gradient, model_params, task_loss
from ...checks import Params, flatten
from ...cost import measure_step_cost
from ...datasets import FewShotTasks, digits_meta_split
from ...models import MLP, ConvNet, parameters_of
from ...tasks import SinusoidTasks
from ...training import evaluate, meta_train
from ...variants import AnnealedStepWeights, head_names, rate_name

__all__ = [
    "AnilResult",
    "ImamlMemory",
    "MamlppSeeds",
    "MetaSgdResult",
    "anil_feature_reuse",
    "format_claims",
    "imaml_memory",
    "mamlpp_seeds",
    "metasgd_rates",
    "parse_claims",
]

INNER_LR = 0.01  # the sinusoid experiments' inner learning rate (the MAML paper's)


def format_claims(claims: dict) -> str:
    """``claims()`` as ``name = value`` lines (what the chapter prints and its test parses)."""
    return "\n".join(
        f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in claims.items()
    )


def parse_claims(text: str) -> dict:
    """Read :func:`format_claims` lines back into a dict of floats (and ints)."""
    out = {}
    for line in text.splitlines():
        if " = " in line:
            key, value = line.split(" = ", 1)
            out[key.strip()] = float(value)
    return out


def _sinusoid_batch(tasks: int, shots: int, seed: int):
    return SinusoidTasks().sample(
        tasks, shots, shots, generator=torch.Generator().manual_seed(seed)
    )


def _cosine(a: Params, b: Params) -> float:
    return F.cosine_similarity(flatten(a), flatten(b), dim=0).item()


# ---------------------------------------------------------------------------
# iMAML: memory that does not grow with the inner steps.
# ---------------------------------------------------------------------------


@dataclass
class ImamlMemory:
    """Peak memory (bytes) of one meta-step and iMAML's cosine to MAML, per inner steps."""

    inner_steps: tuple[int, ...]
    peak_bytes: dict[str, list[int]]
    milliseconds: dict[str, list[float]]
    cosine: list[float]

    def claims(self) -> dict:
        first, last = self.inner_steps[0], self.inner_steps[-1]
        maml, imaml = self.peak_bytes["maml"], self.peak_bytes["imaml"]
        return {
            "steps_max": last,
            "maml_growth": maml[-1] / maml[0],
            "imaml_growth": imaml[-1] / imaml[0],
            "imaml_over_maml_at_max": imaml[-1] / maml[-1],
            "cosine_min": min(self.cosine),
            "cosine_at_first": self.cosine[0],
            "steps_first": first,
        }


def imaml_memory(
    inner_steps: Sequence[int] = (1, 5, 10, 20), tasks: int = 10, seed: int = 0
) -> ImamlMemory:
    """MAML and iMAML on one sinusoid batch (MLP 1-40-40-1): memory, time and direction.

    iMAML's regularization is ``lam = 1 / (k * 0.01)`` for ``k`` inner steps:
    ``k`` plain steps of size 0.01 let phi move about as far from theta.
    """
    model, batch = MLP(seed=seed), _sinusoid_batch(tasks, 10, seed)
    params = parameters_of(model)
    steps = tuple(inner_steps)
    peaks: dict[str, list[int]] = {"maml": [], "imaml": []}
    times: dict[str, list[float]] = {"maml": [], "imaml": []}
    cosine = []
    for k in steps:
        for algorithm in peaks:
            cost = measure_step_cost(
                model, batch, algorithm=algorithm, inner_steps=k, inner_lr=INNER_LR, repeats=1
            )
            peaks[algorithm].append(cost.peak_bytes)
            times[algorithm].append(cost.milliseconds)
        kw = dict(inner_steps=k, inner_lr=INNER_LR)
        maml = meta_gradient(model, params, batch, algorithm="maml", **kw)
        imaml = meta_gradient(
            model, params, batch, algorithm="imaml", lam=1 / (k * INNER_LR), cg_steps=10, **kw
        )
        cosine.append(_cosine(maml, imaml))
    return ImamlMemory(steps, peaks, times, cosine)


# ---------------------------------------------------------------------------
# ANIL: the time of a head-only inner loop, and feature reuse inside MAML.
# ---------------------------------------------------------------------------


@dataclass
class AnilResult:
    """ANIL's time on the ConvNet, and MAML's adaptation done by the head alone (sinusoids)."""

    convnet_ms: dict[str, float]
    steps: tuple[int, ...]
    maml_all_layers: list[float]  # MAML's init, every layer adapted
    maml_head_only: list[float]  # MAML's init, only the head adapted
    anil: list[float]  # ANIL trained and adapted its own way
    body_change: float  # relative change of the body's weights over the adaptation
    head_change: float

    def claims(self) -> dict:
        i = len(self.steps) - 1
        gained_all = self.maml_all_layers[0] - self.maml_all_layers[i]
        gained_head = self.maml_all_layers[0] - self.maml_head_only[i]
        return {
            "anil_speedup": self.convnet_ms["maml"] / self.convnet_ms["anil"],
            "steps_max": self.steps[i],
            "head_share": gained_head / gained_all,
            "maml_loss": self.maml_all_layers[i],
            "head_only_loss": self.maml_head_only[i],
            "anil_loss": self.anil[i],
            "body_change": self.body_change,
            "head_change": self.head_change,
        }


def _convnet_times(inner_steps: int, repeats: int) -> dict[str, float]:
    model = ConvNet(out_features=5, image_size=8, seed=0)
    episodes = FewShotTasks(digits_meta_split()[0], ways=5)
    batch = episodes.sample(4, 1, 5, generator=torch.Generator().manual_seed(0))
    return {
        a: measure_step_cost(
            model,
            batch,
            algorithm=a,
            inner_steps=inner_steps,
            inner_lr=0.4,
            loss_fn=F.cross_entropy,
            repeats=repeats,
            memory=False,
        ).milliseconds
        for a in ("maml", "anil")
    }


def _relative_change(model, params: Params, steps: int, seed: int) -> tuple[float, float]:
    """How far ``steps`` all-layer steps move the body and the head, relative to their size."""
    batch = _sinusoid_batch(50, 10, seed + 1000)
    head = set(head_names(model))

    def adapted(x, y):
        phi = params
        for _ in range(steps):
            g = grad(task_loss, argnums=1)(model, phi, x, y)
            phi = {n: p - INNER_LR * g[n] for n, p in phi.items()}
        return phi

    phi = vmap(adapted)(batch.support_x, batch.support_y)

    def change(names):
        moved = torch.cat([(phi[n] - params[n]).flatten(1) for n in names], dim=1).norm(dim=1)
        size = torch.cat([params[n].flatten() for n in names]).norm()
        return (moved / size).mean().item()

    return change([n for n in params if n not in head]), change(sorted(head))


def anil_feature_reuse(
    iterations: int = 400,
    inner_steps: int = 3,
    steps: Sequence[int] = (0, 1, 5, 10),
    seed: int = 0,
    eval_tasks: int = 300,
    repeats: int = 3,
) -> AnilResult:
    """Train MAML and ANIL on sinusoids (same tasks and seed), then adapt MAML's init two ways."""
    model = MLP(seed=seed)
    kw = dict(
        inner_steps=inner_steps,
        inner_lr=INNER_LR,
        iterations=iterations,
        meta_batch_size=10,
        seed=seed,
        progress=False,
    )
    maml, _ = meta_train(model, SinusoidTasks(), algorithm="maml", **kw)
    anil, _ = meta_train(model, SinusoidTasks(), algorithm="anil", **kw)
    test = dict(num_tasks=eval_tasks, shots=10, steps=tuple(steps), inner_lr=INNER_LR, seed=7)
    all_layers = evaluate(model, maml, SinusoidTasks(), algorithm="maml", **test).mean
    head_only = evaluate(model, maml, SinusoidTasks(), algorithm="anil", **test).mean
    anil_own = evaluate(model, anil, SinusoidTasks(), algorithm="anil", **test).mean
    body, head = _relative_change(model, maml, max(steps), seed)
    return AnilResult(
        _convnet_times(inner_steps, repeats),
        tuple(steps),
        all_layers,
        head_only,
        anil_own,
        body,
        head,
    )


# ---------------------------------------------------------------------------
# Meta-SGD: learned inner rates instead of one hand-tuned alpha.
# ---------------------------------------------------------------------------


@dataclass
class MetaSgdResult:
    """MAML and Meta-SGD after the same training, and Meta-SGD's rates per parameter tensor."""

    steps: tuple[int, ...]
    maml: list[float]
    metasgd: list[float]
    rates: dict[str, torch.Tensor] = field(repr=False)

    def layer_means(self) -> dict[str, float]:
        """Mean learned rate of each parameter tensor (``net.0.weight``, ...)."""
        return {n: r.mean().item() for n, r in self.rates.items()}

    def claims(self) -> dict:
        means = self.layer_means()
        one = self.steps.index(1)
        return {
            "maml_after_1": self.maml[one],
            "metasgd_after_1": self.metasgd[one],
            "rate_mean_max": max(means.values()),
            "rate_mean_min": min(means.values()),
            "rate_spread": max(r.max().item() for r in self.rates.values())
            - min(r.min().item() for r in self.rates.values()),
            "negative_share": sum((r < 0).sum().item() for r in self.rates.values())
            / sum(r.numel() for r in self.rates.values()),
        }


def metasgd_rates(
    iterations: int = 400,
    steps: Sequence[int] = (0, 1, 5),
    seed: int = 0,
    eval_tasks: int = 300,
) -> MetaSgdResult:
    """MAML and Meta-SGD, one inner step, same tasks and seed; rates start at MAML's 0.01."""
    model = MLP(seed=seed)
    kw = dict(
        inner_steps=1,
        inner_lr=INNER_LR,
        iterations=iterations,
        meta_batch_size=10,
        seed=seed,
        progress=False,
    )
    maml, _ = meta_train(model, SinusoidTasks(), algorithm="maml", **kw)
    learned, _ = meta_train(
        model, SinusoidTasks(), algorithm="metasgd", options={"init_lr": INNER_LR}, **kw
    )
    test = dict(num_tasks=eval_tasks, shots=10, steps=tuple(steps), inner_lr=INNER_LR, seed=7)
    return MetaSgdResult(
        tuple(steps),
        evaluate(model, maml, SinusoidTasks(), algorithm="maml", **test).mean,
        evaluate(model, learned, SinusoidTasks(), algorithm="metasgd", **test).mean,
        {n: learned[rate_name(n)] for n in model_params(learned)},
    )


# ---------------------------------------------------------------------------
# MAML++: stability over seeds, beyond the trained number of steps.
# ---------------------------------------------------------------------------


@dataclass
class MamlppSeeds:
    """Per seed: test losses after each step count, blown-up tasks, support-loss curvature."""

    seeds: tuple[int, ...]
    steps: tuple[int, ...]
    losses: dict[str, list[list[float]]]  # algorithm -> per seed, per step count (median)
    blown_up: dict[str, list[int]]  # algorithm -> per seed: test tasks above MSE 100
    curvature: dict[str, list[float]]  # algorithm -> per seed: mean top Hessian eigenvalue

    def claims(self) -> dict:
        last = len(self.steps) - 1
        out = {"steps_max": self.steps[last], "seeds": len(self.seeds)}
        for a in self.losses:
            out[f"{a}_worst_seed_loss"] = max(row[last] for row in self.losses[a])
            out[f"{a}_blown_up"] = sum(self.blown_up[a])
            out[f"{a}_curvature_max"] = max(self.curvature[a])
        out["mamlpp_better_seeds_at_max"] = sum(
            p[last] < m[last] for p, m in zip(self.losses["mamlpp"], self.losses["maml"])
        )
        # Up to the number of steps MAML++ trained with (3): where its learned rates belong.
        trained = self.steps.index(3)
        out["mamlpp_better_seeds_at_3"] = sum(
            p[trained] < m[trained] for p, m in zip(self.losses["mamlpp"], self.losses["maml"])
        )
        return out


def support_curvature(model, params: Params, batch, iterations: int = 20) -> float:
    """Mean over tasks of the largest Hessian eigenvalue of the support loss at ``params``.

    Power iteration on Hessian-vector products (the gradient of ``grad . v``):
    2 / curvature is the largest step size for which plain gradient descent
    on that task is stable (chapter 4).
    """
    theta = {n: p.detach() for n, p in model_params(params).items()}

    def top_eigenvalue(x, y):
        def slope(p, v):
            g = grad(task_loss, argnums=1)(model, p, x, y)
            return sum((g[n] * v[n]).sum() for n in g)

        v = {n: torch.ones_like(p) for n, p in theta.items()}
        value = torch.zeros(())
        for _ in range(iterations):
            norm = flatten(v).norm()
            v = {n: t / norm for n, t in v.items()}
            hv = grad(slope)(theta, v)
            value = sum((hv[n] * v[n]).sum() for n in hv)
            v = hv
        return value

    return vmap(top_eigenvalue)(batch.support_x, batch.support_y).mean().item()


def mamlpp_seeds(
    seeds: Sequence[int] = (0, 1, 2),
    iterations: int = 200,
    steps: Sequence[int] = (0, 1, 3, 5, 10, 20),
    eval_tasks: int = 200,
) -> MamlppSeeds:
    """MAML (1 inner step) against MAML++ (3 steps, annealed weights, learned rates) per seed.

    Both are evaluated with their own adaptation up to 20 steps (far beyond
    training), on the same test tasks; shots 5, where chapter 4 saw blow-ups.
    """
    losses: dict[str, list[list[float]]] = {"maml": [], "mamlpp": []}
    blown: dict[str, list[int]] = {"maml": [], "mamlpp": []}
    curvature: dict[str, list[float]] = {"maml": [], "mamlpp": []}
    probe = SinusoidTasks().sample(20, 5, 1, generator=torch.Generator().manual_seed(99))
    for seed in seeds:
        model = MLP(seed=seed)
        common = dict(iterations=iterations, meta_batch_size=10, seed=seed, progress=False)
        runs = {
            "maml": meta_train(
                model, SinusoidTasks(), algorithm="maml", inner_steps=1, inner_lr=INNER_LR, **common
            )[0],
            "mamlpp": meta_train(
                model,
                SinusoidTasks(),
                algorithm="mamlpp",
                inner_steps=3,
                inner_lr=INNER_LR,
                options={
                    "step_weights": AnnealedStepWeights(iterations // 2),
                    "init_lr": INNER_LR,
                    "rate_steps": 3,
                },
                **common,
            )[0],
        }
        for a, params in runs.items():
            ev = evaluate(
                model,
                params,
                SinusoidTasks(),
                algorithm=a,
                num_tasks=eval_tasks,
                shots=5,
                steps=tuple(steps),
                inner_lr=INNER_LR,
                seed=2017,
            )
            ranked = ev.losses.nan_to_num(nan=float("inf"))
            losses[a].append(ranked.median(dim=-1).values.tolist())
            blown[a].append(int(((ranked > 100) | ~torch.isfinite(ranked)).any(dim=0).sum()))
            curvature[a].append(support_curvature(model, params, probe))
    return MamlppSeeds(tuple(seeds), tuple(steps), losses, blown, curvature)
