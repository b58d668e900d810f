"""How good are the first-order directions? Cosine similarity to the true MAML meta-gradient.

For a batch of 25 sinusoid tasks, compute the meta-update directions of
MAML (second order, the exact gradient of the post-adaptation query loss),
FOMAML and Reptile with the same number of inner steps and the same inner
learning rate, and measure the cosine of the angle between each first-order
direction and MAML's. Repeated over many batches (mean and 95% confidence
interval), for several numbers of inner steps, at two points of the
parameter space: the random initialization, and after MAML meta-training
(the point where the algorithms spend most of their time, near a solution).

A cosine of 1 means the cheap direction points exactly where MAML's does; 0
means it is no better than a random direction for MAML's objective.
Directions are computed in float64.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _common import (  # noqa: E402
    algorithm_color,
    algorithm_labels,
    machine,
    md_table,
    parse_args,
    quick_note,
    savefig,
    setup,
    write_json,
    write_md,
)

from metalearn_lib import ALGORITHMS, MLP, SinusoidTasks, meta_gradient, meta_train  # noqa: E402
from metalearn_lib.checks import ci95, flatten  # noqa: E402

NAME = "directions"
# The directions compared with MAML's: every other registered algorithm.
FIRST_ORDER = tuple(a for a in ALGORITHMS if a != "maml")
LABELS = algorithm_labels()
INNER_LR = 0.01


def cosines(model, theta, steps, batches, seed) -> dict:
    """Mean and 95% CI over batches of cos(first-order direction, MAML direction)."""
    tasks = SinusoidTasks()
    generator = torch.Generator().manual_seed(seed)
    values = {a: {k: [] for k in steps} for a in FIRST_ORDER}
    norms = {a: {k: [] for k in steps} for a in FIRST_ORDER}
    for _ in range(batches):
        batch = tasks.sample(25, 10, 10, generator=generator, dtype=torch.float64)
        for k in steps:
            d = {
                a: flatten(
                    meta_gradient(
                        model, theta, batch, algorithm=a, inner_steps=k, inner_lr=INNER_LR
                    )
                )
                for a in ("maml", *FIRST_ORDER)
            }
            for a in FIRST_ORDER:
                cos = torch.nn.functional.cosine_similarity(d[a], d["maml"], dim=0)
                values[a][k].append(cos.item())
                norms[a][k].append((d[a].norm() / d["maml"].norm()).item())
    out = {}
    for a in FIRST_ORDER:
        out[a] = {}
        for k in steps:
            v = torch.tensor(values[a][k], dtype=torch.float64)
            ci = ci95(v).item()
            out[a][str(k)] = {
                "cosine_mean": v.mean().item(),
                "cosine_ci95": ci,
                "cosine_min": v.min().item(),
                "norm_ratio_mean": sum(norms[a][k]) / len(norms[a][k]),
            }
    return out


def plot(out: Path, data: dict) -> str:
    import matplotlib.pyplot as plt

    steps = data["inner_steps"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, where in zip(axes, ("init", "trained")):
        for a in FIRST_ORDER:
            r = data["results"][where][a]
            ax.errorbar(
                steps,
                [r[str(k)]["cosine_mean"] for k in steps],
                yerr=[r[str(k)]["cosine_ci95"] for k in steps],
                marker="o",
                capsize=3,
                label=LABELS[a],
                color=algorithm_color(a),
            )
        ax.axhline(1, color="grey", linestyle=":")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xticks(steps)
        ax.set_xticklabels([str(k) for k in steps])
        ax.set_xlabel("inner steps (lr 0.01)")
        ax.set_title(data["where"][where])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cosine similarity to the MAML direction")
    axes[0].legend()
    return savefig(fig, out, f"{NAME}_cosine.png")


def markdown(data: dict, link: str) -> str:
    steps = data["inner_steps"]
    rows = []
    for where in ("init", "trained"):
        for a in FIRST_ORDER:
            r = data["results"][where][a]
            rows.append(
                [f"{LABELS[a]}, {where}"]
                + [
                    f"{r[str(k)]['cosine_mean']:.3f} ± {r[str(k)]['cosine_ci95']:.3f}"
                    for k in steps
                ]
            )
    return "\n".join(
        [
            "## How good are the first-order directions?",
            quick_note(data["quick"]),
            "Cosine similarity between the FOMAML or Reptile update direction and the exact MAML "
            "meta-gradient, computed on the same batch of 25 sinusoid tasks (10 support + 10 query "
            f"points) with the same inner steps and inner lr {INNER_LR}; mean ± 95% CI over "
            f"{data['batches']} batches, float64. *init*: {data['where']['init']}; *trained*: "
            f"{data['where']['trained']}.",
            "",
            md_table(["direction, where"] + [f"{k} steps" for k in steps], rows),
            "",
            "Reptile's direction is built from the support set only, and its length grows with the "
            "number of steps (mean norm ratio to MAML's direction, trained, at "
            f"{steps[0]} / {steps[-1]} steps: "
            f"{data['results']['trained']['reptile'][str(steps[0])]['norm_ratio_mean']:.3g} / "
            f"{data['results']['trained']['reptile'][str(steps[-1])]['norm_ratio_mean']:.3g}); "
            "cosine ignores length, which an optimizer like Adam mostly rescales anyway.",
            "",
            link,
        ]
    )


def main(argv=None) -> dict:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    setup()
    start = time.perf_counter()
    if args.quick:
        steps, batches, train_iterations = (1, 3), 2, 20
    else:
        steps, batches, train_iterations = (1, 2, 3, 5, 10, 20), 20, 5000
    info = machine()
    model = MLP(seed=0)
    print(f"{NAME}: MAML meta-training for {train_iterations} iterations", flush=True)
    trained, _ = meta_train(
        model,
        SinusoidTasks(),
        algorithm="maml",
        inner_steps=1,
        iterations=train_iterations,
        seed=1,
        progress=not args.quick,
    )
    model64 = MLP(seed=0).double()
    init = {n: p.detach().double() for n, p in model64.named_parameters()}
    trained = {n: p.double() for n, p in trained.items()}
    results = {
        where: cosines(model64, theta, steps, batches, seed=99)
        for where, theta in (("init", init), ("trained", trained))
    }
    data = {
        "benchmark": NAME,
        "quick": args.quick,
        "machine": info,
        "inner_steps": list(steps),
        "inner_lr": INNER_LR,
        "batches": batches,
        "where": {
            "init": "random initialization (MLP(seed=0))",
            "trained": f"after {train_iterations:,} iterations of MAML (paper setup, 1 inner step)",
        },
        "results": results,
        "wall_seconds": time.perf_counter() - start,
    }
    link = plot(args.out, data)
    write_json(args.out, NAME, data)
    write_md(args.out, NAME, markdown(data, link))
    print(f"{NAME}: wrote {args.out / NAME}.json/.md in {data['wall_seconds']:.0f} s")
    return data


if __name__ == "__main__":
    main()
