"""Reproduce the sinusoid table of the MAML paper (Finn et al. 2017, appendix C, Table 2).

Trains MAML, FOMAML, Reptile and the pretrain-on-all-tasks baseline with the
paper's setup, and the variants (iMAML, ANIL, Meta-SGD, MAML++) on three seeds
each, then evaluates each on the same 600 fresh tasks with K = 5 and
K = 10 support points after 0, 1, 5 and 10 steps of gradient descent
(lr 0.01): mean query MSE and 95% confidence interval.

Each run trains in its own process (one torch thread each, two at a time).
MAML, FOMAML, Reptile and the baseline take about 15 minutes on a 2-core
machine; the variants' twelve runs (4 x 3 seeds, the paper's iteration counts)
take hours (``--max-minutes`` cuts them short and says so).

    python benchmarks/sinusoid_accuracy.py            # full, into docs/benchmarks
    python benchmarks/sinusoid_accuracy.py --quick    # seconds, into a temp folder
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _common import (  # noqa: E402
    machine,
    md_table,
    parse_args,
    quick_note,
    savefig,
    setup,
    write_json,
    write_md,
)

from metalearn_lib import (  # noqa: E402
    MLP,
    SinusoidTasks,
    adapt,
    algorithm_label,
    evaluate,
    linear_decay,
    meta_train,
    pretrain,
)
from metalearn_lib.variants import AnnealedStepWeights  # noqa: E402

NAME = "sinusoid_accuracy"
SHOTS_EVAL = (5, 10)
STEPS_EVAL = (0, 1, 5, 10)
# Appendix C, Table 2 of Finn et al. (2017), K = 5, after 1 / 5 / 10 steps.
PAPER = {
    "maml": {1: 0.67, 5: 0.38, 10: 0.35},
    "pretrain": {1: 2.41, 5: 2.23, 10: 2.19},
}
# The paper's setup for MAML and FOMAML.
PAPER_SETUP = dict(
    inner_steps=1,
    inner_lr=0.01,
    meta_optimizer="adam",
    meta_lr=1e-3,
    meta_batch_size=25,
    shots=10,
    queries=10,
    iterations=70_000,
)
# Reptile's own settings: several inner steps (with one, Reptile is scaled pretraining) and
# Adam 1e-3 as for MAML. A second run uses the batched Reptile outer loop of Nichol et al.
# (2018) instead: plain SGD with epsilon = 1 annealed linearly to 0.
REPTILE_SETUP = dict(
    inner_steps=5,
    inner_lr=0.01,
    meta_optimizer="adam",
    meta_lr=1e-3,
    meta_batch_size=25,
    shots=10,
    queries=10,
    iterations=10_000,
)
# epsilon = 1 at the start (theta moves to the mean of the adapted parameters), annealed to 0
REPTILE_SGD_SETUP = dict(REPTILE_SETUP, meta_optimizer="sgd", meta_lr=1.0)
PRETRAIN_SETUP = dict(iterations=5_000, batch_size=25, shots=10, lr=1e-3)
REPTILE_WHY = (
    "Reptile's direction theta - mean(phi) has no query loss in it, and with inner lr 0.01 its "
    "length is only about 0.01 x inner steps x the gradient; with one inner step it is plain "
    "pretraining (scaled), so Reptile needs several inner steps. We use 5 at lr 0.01 (the "
    "test-time lr, so the initialization is shaped for the optimizer it will meet), a "
    "meta-batch of 25 tasks, 10 shots, and Adam 1e-3 at a constant rate as for MAML, for "
    "10,000 iterations (10,000 x 5 inner steps are about as many inner gradients as MAML's "
    "70,000 x 1). Beside it runs the outer loop of the batched Reptile of Nichol et al. "
    "(2018): plain SGD with epsilon = 1 (theta moves to the mean of the adapted parameters) "
    "annealed linearly to 0 over the run. Why both: expanding k inner steps to second order "
    "in alpha, Reptile's direction is alpha times the gradient of "
    "k L - alpha k(k-1)/4 |grad L|^2 (L the support loss), so besides lowering the loss it "
    "climbs towards larger support-loss gradients, and nothing in that objective stops the "
    "drift; a quick trial with Adam 1e-3 and 5 inner steps had given an initialization that "
    "diverged at test time with lr 0.01 for 5-10 steps, and an outer step annealed to 0 stops "
    "any drift. The tables count the test tasks whose loss blew up (MSE > 100); the sentence "
    "below compares the two runs."
)
LABELS = {
    "maml": f"{algorithm_label('maml')} (seed 0)",
    "fomaml": algorithm_label("fomaml"),
    "reptile": f"{algorithm_label('reptile')} (Adam 1e-3)",
    "reptile_sgd": f"{algorithm_label('reptile')} (SGD, eps 1 -> 0)",
    "pretrain": "pretrained",
}
DIVERGED = 100.0  # a query MSE above this (or not finite) counts as a diverged task
# The variants: the paper's MAML setup, changed only where the variant needs it.
VARIANT_SETUPS = {
    "imaml": dict(inner_steps=5, options={"lam": 2.0, "cg_steps": 5}),
    "anil": dict(inner_steps=1, options={}),
    "metasgd": dict(inner_steps=1, options={"init_lr": 0.01}),
    # "annealed": AnnealedStepWeights over the first half of the run (made in the worker).
    "mamlpp": dict(inner_steps=5, options={"step_weights": "annealed", "init_lr": 0.01}),
}
VARIANT_SEEDS = (0, 1, 2)
# MAML itself on the same three seeds: its blow-ups are what MAML++ is measured against.
MAML_SEEDS = VARIANT_SEEDS
for _seed in MAML_SEEDS[1:]:
    LABELS[f"maml_s{_seed}"] = f"{algorithm_label('maml')} (seed {_seed})"
for _variant in VARIANT_SETUPS:
    for _seed in VARIANT_SEEDS:
        LABELS[f"{_variant}_s{_seed}"] = f"{algorithm_label(_variant)} (seed {_seed})"
# Issue goal: some gradient-based method at or below these (K = 5, 1/5/10 steps) on every seed.
VARIANT_GOAL = {1: 0.50, 5: 0.28, 10: 0.26}


def jobs(quick: bool) -> list[dict]:
    """What to train, longest first (so two workers finish at about the same time)."""
    scale = (lambda n: 40) if quick else (lambda n: n)
    maml = dict(PAPER_SETUP, iterations=scale(PAPER_SETUP["iterations"]))
    reptile = dict(REPTILE_SETUP, iterations=scale(REPTILE_SETUP["iterations"]))
    reptile_sgd = dict(REPTILE_SGD_SETUP, iterations=scale(REPTILE_SGD_SETUP["iterations"]))
    pre = dict(PRETRAIN_SETUP, iterations=scale(PRETRAIN_SETUP["iterations"]))
    seeds = VARIANT_SEEDS[:1] if quick else VARIANT_SEEDS
    variants = [
        {
            "name": f"{name}_s{seed}",
            "kind": "meta",
            "budget": 1.0,
            "seed": seed,
            "settings": dict(maml, algorithm=name, **setup),
        }
        for name, setup in VARIANT_SETUPS.items()
        for seed in seeds
    ]
    more_maml = [
        {
            "name": f"maml_s{seed}",
            "kind": "meta",
            "budget": 0.72,
            "seed": seed,
            "settings": dict(maml, algorithm="maml"),
        }
        for seed in ([] if quick else MAML_SEEDS[1:])
    ]
    # budget: the share of --max-minutes by which the job must stop training. The paper's
    # table comes first (its wall time is reported on its own); the variants follow.
    return [
        {"name": "maml", "kind": "meta", "budget": 0.72, "settings": dict(maml, algorithm="maml")},
        *more_maml,
        {
            "name": "fomaml",
            "kind": "meta",
            "budget": 0.72,
            "settings": dict(maml, algorithm="fomaml"),
        },
        {"name": "pretrain", "kind": "pretrain", "budget": 1.0, "settings": pre},
        {
            "name": "reptile",
            "kind": "meta",
            "budget": 1.0,
            "settings": dict(reptile, algorithm="reptile"),
        },
        {
            "name": "reptile_sgd",
            "kind": "annealed",
            "budget": 1.0,
            "settings": dict(reptile_sgd, algorithm="reptile"),
        },
        *variants,
    ]


def train(model, tasks, settings: dict, seed: int, deadline: float | None, anneal: bool):
    """Meta-train through :func:`metalearn_lib.meta_train`, with a schedule and a deadline.

    ``anneal=True`` lets the (SGD) step size fall linearly from ``meta_lr`` to 0
    over the planned iterations (Reptile's schedule, :func:`~metalearn_lib.linear_decay`),
    and ``deadline`` (a ``time.time()`` value) stops training early when a time
    budget runs out; the caller reports how far it got.
    """

    def out_of_time(done: int, _params) -> bool:
        return deadline is not None and time.time() > deadline

    settings = dict(settings)
    options = dict(settings.pop("options", {}))
    if options.get("step_weights") == "annealed":
        options["step_weights"] = AnnealedStepWeights(max(1, settings["iterations"] // 2))
    return meta_train(
        model,
        tasks,
        options=options,
        seed=seed,
        schedule=linear_decay(settings["iterations"]) if anneal else None,
        callback=None if deadline is None else out_of_time,
        progress=False,
        **settings,
    )


def summarize(ev) -> dict:
    """Mean, CI and divergence count; non-finite numbers become None (JSON has no inf)."""
    finite = lambda x: x if math.isfinite(x) else None  # noqa: E731
    bad = (~torch.isfinite(ev.losses)) | (ev.losses > DIVERGED)
    ranked = ev.losses.nan_to_num(nan=float("inf"))  # a NaN task ranks as the worst, not as "?"
    worst = ranked.max(dim=-1).values
    return {
        "steps": list(ev.steps),
        "mean": [finite(m) for m in ev.mean],
        "ci95": [finite(c) for c in ev.ci95],
        "median": [finite(m) for m in ranked.median(dim=-1).values.tolist()],
        "worst_task": [finite(w) for w in worst.tolist()],
        "diverged_tasks": bad.sum(dim=-1).tolist(),
    }


def run_job(job: dict, num_tasks: int, deadline: float | None = None, seed: int = 0) -> dict:
    """Train one algorithm and evaluate it (runs in a worker process)."""
    torch.set_num_threads(1)
    tasks = SinusoidTasks()
    model = MLP(seed=seed)
    start, cpu = time.perf_counter(), time.process_time()
    if job["kind"] == "pretrain":
        params, history = pretrain(model, tasks, seed=seed, progress=False, **job["settings"])
    else:
        anneal = job["kind"] == "annealed"
        params, history = train(model, tasks, job["settings"], seed, deadline, anneal)
    train_seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu
    results, eval_cpu = {}, time.process_time()
    # Each algorithm adapts at test time its own way (ANIL the head only, learned rates, ...).
    algorithm = job["settings"].get("algorithm")
    options = {k: v for k, v in job["settings"].get("options", {}).items() if k != "step_weights"}
    for shots in SHOTS_EVAL:
        ev = evaluate(
            model,
            params,
            tasks,
            num_tasks=num_tasks,
            shots=shots,
            steps=STEPS_EVAL,
            seed=2017,
            algorithm=algorithm,
            options=options or None,
        )
        results[f"K{shots}"] = summarize(ev)
    eval_cpu = time.process_time() - eval_cpu
    smooth = history.smoothed(window=500 if len(history.loss) >= 5000 else 20)
    stride = max(1, len(smooth) // 200)
    return {
        "name": job["name"],
        "pid": os.getpid(),
        "eval_cpu_seconds": eval_cpu,
        "settings": job["settings"],
        "train_seconds": train_seconds,
        "train_cpu_seconds": cpu_seconds,
        "iterations_done": len(history.loss),
        # meta_train(compile=None) compiles a long run itself; the pretrained baseline is eager.
        "mode": history.settings.get("compile", "eager"),
        "compile_seconds": history.compile_seconds,
        "ms_per_iteration": 1000 * train_seconds / len(history.loss),
        "cpu_ms_per_iteration": 1000 * cpu_seconds / len(history.loss),
        "final_train_loss": smooth[-1] if math.isfinite(smooth[-1]) else None,
        "curve": {
            "iteration": list(range(0, len(smooth), stride)),
            "loss": [x if math.isfinite(x) else None for x in smooth[::stride]],
        },
        "evaluation": results,
        "params": {k: v.tolist() for k, v in params.items()},
    }


def fmt(mean: float | None, ci: float | None) -> str:
    return "diverged" if mean is None or ci is None else f"{mean:.3f} ± {ci:.3f}"


def nan(values: list) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def first_seed(name: str) -> bool:
    """Seed 0's run (the curves and the example plot show one run per algorithm)."""
    return not any(name.endswith(f"_s{seed}") for seed in VARIANT_SEEDS[1:])


def plots(out: Path, results: dict, params: dict, num_tasks: int) -> list[str]:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    links = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
    for ax, shots in zip(axes, SHOTS_EVAL):
        for name, r in results.items():
            ev = r["evaluation"][f"K{shots}"]
            ax.errorbar(
                ev["steps"],
                nan(ev["mean"]),
                yerr=nan(ev["ci95"]),
                marker="o",
                capsize=3,
                label=LABELS[name],
            )
        if shots == 5:
            for name, marker in (("maml", "*"), ("pretrain", "X")):
                steps = list(PAPER[name])
                ax.scatter(
                    steps,
                    [PAPER[name][s] for s in steps],
                    marker=marker,
                    s=90,
                    color="black",
                    zorder=5,
                    label=f"paper: {LABELS[name].split(' (')[0]}",
                )
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
        ax.set_xlabel("gradient steps at test time (lr 0.01)")
        ax.set_title(f"K = {shots} support points, {num_tasks} test tasks")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("query MSE after adaptation (log scale)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    links.append(savefig(fig, out, f"{NAME}_curves.png"))

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, r in results.items():
        if name != "pretrain" and first_seed(name):
            ax.plot(r["curve"]["iteration"], nan(r["curve"]["loss"]), label=LABELS[name])
    ax.set_yscale("log")
    ax.set_xlabel("meta-training iteration")
    ax.set_ylabel("query MSE after the inner steps (smoothed)")
    ax.set_title("Meta-training curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    links.append(savefig(fig, out, f"{NAME}_training.png"))

    if params is None:  # re-rendering from the JSON: the example plot is kept as it is
        links.append(f"![{NAME}_example.png]({NAME}_example.png)")
        return links
    # One test task: the fits after 10 steps from 5 points.
    batch = SinusoidTasks().sample(1, 5, 100, generator=torch.Generator().manual_seed(7))
    model = MLP()
    xs = torch.linspace(-5, 5, 200).unsqueeze(-1)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    truth = batch.functions(xs.unsqueeze(0).double())[0].float()
    ax.plot(xs, truth, "k--", label="true task")
    ax.scatter(batch.support_x[0], batch.support_y[0], color="black", zorder=5, label="5 points")
    for name, p in params.items():
        if not first_seed(name):
            continue
        theta = {k: torch.tensor(v) for k, v in p.items() if not k.startswith("meta.")}
        phi = adapt(model, theta, batch.support_x[0], batch.support_y[0], steps=10, lr=0.01)
        with torch.no_grad():
            y = torch.func.functional_call(model, phi, (xs,))
        if torch.isfinite(y).all():
            ax.plot(xs, y, label=f"{LABELS[name]}, 10 steps")
    ax.set_ylim(-1.5 * truth.abs().max() - 1, 1.5 * truth.abs().max() + 1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("One test task, K = 5, after 10 steps of lr 0.01")
    ax.legend(fontsize=7)
    links.append(savefig(fig, out, f"{NAME}_example.png"))
    return links


def reptile_comparison(results: dict, num_tasks: int) -> str:
    """A sentence comparing the two Reptile runs, from the numbers."""
    lines = []
    for shots in SHOTS_EVAL:
        cells = []
        for name in ("reptile", "reptile_sgd"):
            ev = results[name][f"K{shots}"]
            i = ev["steps"].index(10)
            worst = ev["worst_task"][i]
            cells.append(
                f"{LABELS[name]}: mean {fmt(ev['mean'][i], ev['ci95'][i])}, "
                f"worst task {'inf' if worst is None else f'{worst:.2f}'}, "
                f"{ev['diverged_tasks'][i]} of {num_tasks} tasks above MSE {DIVERGED:g}"
            )
        lines.append(f"K = {shots}, 10 steps: " + "; ".join(cells) + ".")
    blown = {n: sum(sum(ev["diverged_tasks"]) for ev in results[n].values()) for n in results}
    a, b = (results[n]["K5"]["mean"][-1] for n in ("reptile", "reptile_sgd"))
    if a is not None and b is not None:
        better = "reptile" if a < b else "reptile_sgd"
        lines.append(
            f"Test tasks above MSE {DIVERGED:g} over all step counts and both K: "
            f"{blown['reptile']} (Adam) and {blown['reptile_sgd']} (annealed SGD). "
            f"Lower loss after 10 steps at K = 5: {LABELS[better]}."
        )
    return " ".join(lines)


def divergence_note(results: dict, num_tasks: int) -> str:
    """Which models blew up on some test tasks, with the median task for scale."""
    notes = []
    for name, by_shots in results.items():
        for key, ev in by_shots.items():
            if not any(ev["diverged_tasks"]):
                continue
            cells = ", ".join(
                f"{d} after {s} steps (median task {m:.3f})" if m is not None else f"{d} after {s}"
                for s, d, m in zip(ev["steps"], ev["diverged_tasks"], ev["median"])
                if d
            )
            notes.append(f"{LABELS[name]} at K = {key[1:]}: {cells}")
    if not notes:
        return f"No model blew up on any test task (query MSE > {DIVERGED:g})."
    return (
        f"**Blow-ups.** Test tasks (of {num_tasks}) whose query MSE exceeded {DIVERGED:g}: "
        + "; ".join(notes)
        + ". The mean of such a row is dominated by those few tasks; the median shows the "
        "typical task."
        + (
            " MAML is trained with a single inner step, so nothing in its objective keeps "
            "5-10 steps of lr 0.01 stable; on a few 5-point support sets they diverge. The "
            "section *MAML across seeds* below follows this over training and seeds, and "
            "measures the curvature behind it."
            if any(any(ev["diverged_tasks"]) for ev in results["maml"].values())
            else ""
        )
    )


def variants_note(results: dict) -> str:
    """Per variant: its worst seed at K = 5 against the issue's goal, and its blown-up tasks."""
    cells = []
    for name in VARIANT_SETUPS:
        runs = [r for n, r in results.items() if n.startswith(f"{name}_s")]
        if not runs:
            continue
        worst = {}
        for s in VARIANT_GOAL:
            means = [r["K5"]["mean"][r["K5"]["steps"].index(s)] for r in runs]
            worst[s] = None if any(m is None for m in means) else max(means)
        blown = sum(sum(ev["diverged_tasks"]) for r in runs for ev in r.values())
        met = all(worst[s] is not None and worst[s] <= VARIANT_GOAL[s] for s in VARIANT_GOAL)
        shown = " / ".join("diverged" if w is None else f"{w:.3f}" for w in worst.values())
        cells.append(
            f"{algorithm_label(name)}: worst of {len(runs)} seed(s) {shown}, "
            f"{blown} blown-up test tasks ({'met' if met and blown == 0 else 'NOT met'})"
        )
    if not cells:
        return ""
    goal = " / ".join(f"{v:.2f}" for v in VARIANT_GOAL.values())
    return (
        f"**Variants**, goal: at or below {goal} at K = 5 after 1 / 5 / 10 steps on every "
        "seed with no test task above MSE 100: " + "; ".join(cells) + "."
    )


def paper_table_note(data: dict) -> str:
    """How long the paper's own table took (issue target: 15 minutes on 2 cores)."""
    if "paper_table_seconds" not in data:
        return ""
    names = [n for n in data["jobs"] if n.split("_s")[0] not in VARIANT_SETUPS]
    return (
        f"**The paper's table** ({', '.join(LABELS[n] for n in names)}; trained and "
        f"evaluated, two processes at a time) was complete after "
        f"**{data['paper_table_seconds'] / 60:.1f} min** of wall time (target: 15 min on 2 "
        "cores). `meta_train` compiles these long runs itself (`compile=None`): the column "
        "*ran* says how each one ran and what compiling cost."
    )


def blow_ups_by_seed(results: dict) -> str:
    """MAML's blown-up test tasks per seed beside MAML++'s on the same seeds."""
    rows = []
    for name, label in (("maml", "MAML"), ("mamlpp", "MAML++")):
        cells = []
        for seed in VARIANT_SEEDS:
            key = name if (name, seed) == ("maml", 0) else f"{name}_s{seed}"
            if key in results:
                blown = sum(ev["diverged_tasks"][-1] for ev in results[key].values())
                cells.append(f"seed {seed}: {blown}")
        if cells:
            rows.append(f"{label} {', '.join(cells)}")
    if len(rows) < 2:
        return ""
    return (
        "**MAML++ against MAML's blow-ups**, test tasks above MSE "
        f"{DIVERGED:g} after 10 steps (K = 5 and K = 10 together, same seeds): "
        + "; ".join(rows)
        + "."
    )


def training_blow_ups(jobs: dict) -> str:
    """Runs whose meta-training loss itself blew up (smoothed query loss above 100, or NaN)."""
    cells = []
    for name, job in jobs.items():
        curve = job["curve"]
        bad = [
            i
            for i, loss in zip(curve["iteration"], curve["loss"])
            if loss is None or not 0 <= loss <= DIVERGED
        ]
        if bad:
            cells.append(f"{LABELS[name]} from about iteration {bad[0]:,}")
    if not cells:
        return ""
    return (
        f"**Training that blew up.** In these runs the meta-training query loss itself "
        f"(smoothed) went above {DIVERGED:g} or to NaN, so their rows measure a broken "
        "initialization, not the method at its best: " + "; ".join(cells) + "."
    )


def iterations(job: dict) -> str:
    done, planned = job["iterations_done"], job["settings"]["iterations"]
    return f"{done:,}" if done == planned else f"{done:,} of {planned:,}"


def markdown(data: dict, links: list[str]) -> str:
    results = data["results"]
    cut = [n for n, j in data["jobs"].items() if j["iterations_done"] < j["settings"]["iterations"]]
    note = ""
    if cut:
        note = (
            f"\n> **Cut short**: this run had a budget of {data['max_minutes']:g} minutes of wall "
            "time (`--max-minutes`) on a machine shared with other work, and "
            + ", ".join(
                f"{LABELS[n]} stopped after {iterations(data['jobs'][n])} iterations" for n in cut
            )
            + ". `make bench` (no budget) runs every planned iteration.\n"
        )
    parts = [
        "## Sinusoid regression: the MAML paper's table",
        note,
        quick_note(data["quick"]),
        "Setup of Finn et al. (2017), section 5.1: amplitude U[0.1, 5.0], phase U[0, pi], "
        "x U[-5, 5]; MLP 1-40-40-1 ReLU; K = 10 support and 10 query points per task, "
        "meta-batch 25 tasks, inner SGD lr 0.01 with 1 step, Adam 1e-3, "
        f"{data['jobs']['maml']['settings']['iterations']:,} iterations for MAML and FOMAML; "
        f"the pretrained baseline: {data['jobs']['pretrain']['settings']['iterations']:,} Adam "
        "steps (lr 1e-3) on the pooled points of 25 tasks x 10 points (its loss is flat long "
        "before that: it learns the average task, which is close to y = 0). "
        f"Evaluation: the same {data['num_test_tasks']} fresh tasks for every model, "
        "K support points, 100 query points, plain gradient descent with lr 0.01; "
        "mean query MSE ± 95% confidence interval. Paper: Finn et al. (2017), appendix C, "
        "Table 2 (K = 5).",
        "",
    ]
    for shots in SHOTS_EVAL:
        rows = []
        for name, r in results.items():
            ev = r[f"K{shots}"]
            rows.append(
                [LABELS[name]]
                + [fmt(m, c) for m, c in zip(ev["mean"], ev["ci95"])]
                + [str(ev["diverged_tasks"][-1])]
            )
        if shots == 5:
            for name, paper in PAPER.items():
                rows.append(
                    [f"*paper: {LABELS[name].split(' (')[0]}*", "-"]
                    + [f"*{paper[s]:.2f}*" for s in (1, 5, 10)]
                    + ["-"]
                )
        headers = (
            ["model"]
            + [f"{s} step" if s == 1 else f"{s} steps" for s in STEPS_EVAL]
            + [f"tasks > {DIVERGED:g}"]
        )
        parts += [f"**K = {shots}**", "", md_table(headers, rows), ""]
    goal = data["goal"]
    verdict = ", ".join(
        f"{s} steps: {fmt(goal['maml_K5'][str(s)], 0).split(' ')[0]} vs {PAPER['maml'][s]:.2f} "
        f"({'met' if goal['met'][str(s)] else 'NOT met'})"
        for s in (1, 5, 10)
    )
    parts += [
        f"**Goal**, MAML at or below the paper at K = 5: {verdict}.",
        "",
        variants_note(results),
        "",
        blow_ups_by_seed(results),
        "",
        training_blow_ups(data["jobs"]),
        "",
        divergence_note(results, data["num_test_tasks"]),
        "",
        "**Reptile's settings.** " + data["reptile_why"],
        "",
        "**The two Reptile runs.** " + reptile_comparison(results, data["num_test_tasks"]),
        "",
        "**Training cost** (one process per model, one torch thread, two processes at a time; "
        "CPU time is what the process itself used, wall time includes waiting for a core on "
        "the shared machine):",
        "",
        md_table(
            [
                "model",
                "iterations",
                "ran",
                "CPU ms / iteration",
                "CPU time (s)",
                "wall time (s)",
                "final train loss",
            ],
            [
                [
                    LABELS[n],
                    iterations(j),
                    (
                        f"compiled ({j['compile_seconds']:.0f} s to compile)"
                        if j.get("mode") == "compiled"
                        else "eager"
                    ),
                    f"{j['cpu_ms_per_iteration']:.1f}",
                    f"{j['train_cpu_seconds']:.0f}",
                    f"{j['train_seconds']:.0f}",
                    "-" if j["final_train_loss"] is None else f"{j['final_train_loss']:.3f}",
                ]
                for n, j in data["jobs"].items()
            ],
        ),
        "",
        paper_table_note(data),
        "",
        f"Whole benchmark: {data['wall_seconds'] / 60:.1f} min of wall time; "
        f"{data['cpu_seconds_busiest_worker'] / 60:.1f} min of CPU time for the busier of the "
        "two worker processes, i.e. the wall time on an otherwise idle 2-core machine.",
        "",
        *links,
    ]
    return "\n".join(parts)


def render_only(out: Path) -> dict:
    """Redraw the tables and the plots that need no trained network from ``<out>/NAME.json``."""
    data = json.loads((out / f"{NAME}.json").read_text())
    data["reptile_why"] = REPTILE_WHY
    runs = {n: dict(job, evaluation=data["results"][n]) for n, job in data["jobs"].items()}
    links = plots(out, runs, None, data["num_test_tasks"])
    write_json(out, NAME, data)
    write_md(out, NAME, markdown(data, links))
    return data


def main(argv=None) -> dict:
    def extra(parser) -> None:
        parser.add_argument(
            "--max-minutes",
            type=float,
            default=None,
            help="stop training when this much wall time has passed (a shared machine); "
            "the results report the iterations actually done",
        )

    args = parse_args(NAME, __doc__.splitlines()[0], argv, extra, render_only=True)
    setup()
    if args.render_only:
        return render_only(args.out)
    budget = None if args.max_minutes is None else 60 * args.max_minutes
    begin = time.time()
    start = time.perf_counter()
    num_tasks = 50 if args.quick else 600
    todo = jobs(args.quick)
    info = machine()
    finished = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = {
            pool.submit(
                run_job,
                job,
                num_tasks,
                None if budget is None else begin + job["budget"] * budget,
                job.get("seed", 0),
            ): job["name"]
            for job in todo
        }
        print(f"{NAME}: training {', '.join(futures.values())} (2 processes)", flush=True)
        for future in as_completed(futures):
            r = future.result()
            r["finished_after"] = time.perf_counter() - start
            finished[r["name"]] = r
            print(f"  {r['name']}: {r['train_seconds']:.0f} s", flush=True)
    order = ["maml", *(f"maml_s{s}" for s in MAML_SEEDS[1:]), "fomaml", "reptile", "reptile_sgd"]
    order = [n for n in order + ["pretrain"] if n in finished]
    order += [job["name"] for job in todo if job["name"] not in order]
    runs = {n: finished[n] for n in order}
    params = {n: runs[n].pop("params") for n in order}
    per_worker: dict[int, float] = {}
    for r in runs.values():
        pid = r.pop("pid")
        per_worker[pid] = per_worker.get(pid, 0.0) + r["train_cpu_seconds"] + r["eval_cpu_seconds"]
    maml5 = runs["maml"]["evaluation"]["K5"]
    maml_k5 = {str(s): maml5["mean"][maml5["steps"].index(s)] for s in (1, 5, 10)}
    data = {
        "benchmark": NAME,
        "quick": args.quick,
        "machine": info,
        "num_test_tasks": num_tasks,
        "eval_shots": list(SHOTS_EVAL),
        "eval_steps": list(STEPS_EVAL),
        "eval_inner_lr": 0.01,
        "paper_K5": {n: {str(s): v for s, v in p.items()} for n, p in PAPER.items()},
        "reptile_why": REPTILE_WHY,
        "jobs": {n: {k: v for k, v in r.items() if k != "evaluation"} for n, r in runs.items()},
        "results": {n: r["evaluation"] for n, r in runs.items()},
        "goal": {
            "maml_K5": maml_k5,
            "met": {s: v is not None and v <= PAPER["maml"][int(s)] for s, v in maml_k5.items()},
        },
        "max_minutes": args.max_minutes,
        "wall_seconds": time.perf_counter() - start,
        # The paper's models go to the workers first: their table is done when the last ends.
        "paper_table_seconds": max(
            r["finished_after"] for n, r in runs.items() if n.split("_s")[0] not in VARIANT_SETUPS
        ),
        "cpu_seconds_busiest_worker": max(per_worker.values()),
    }
    links = plots(args.out, runs, params, num_tasks)
    write_json(args.out, NAME, data)
    write_md(args.out, NAME, markdown(data, links))
    print(f"{NAME}: wrote {args.out / NAME}.json/.md in {data['wall_seconds']:.0f} s")
    return data


if __name__ == "__main__":
    main()
