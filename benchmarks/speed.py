"""Speed of one meta-iteration: the batched torch.func implementation against a per-task loop.

For MAML, FOMAML and Reptile at 1, 5, 10 and 20 inner steps (25 sinusoid
tasks, 10 support and 10 query points, the paper's 1-40-40-1 MLP), time
``metalearn_lib.meta_gradient`` (all tasks at once with ``vmap``) and
``metalearn_lib.reference.loop_meta_gradient`` (one task at a time with
``torch.autograd.grad``, the way most tutorials and learn2learn write it).

Both run in the same process, interleaved (batched, loop, batched, loop,
...), after a warm-up, with one torch thread; the median of many calls is
reported, as wall time and as process CPU time (CPU time is what other
programs on a busy machine cannot inflate).
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
    median,
    parse_args,
    quick_note,
    savefig,
    setup,
    write_json,
    write_md,
)

from metalearn_lib import ALGORITHMS, MLP, SinusoidTasks, meta_gradient, parameters_of  # noqa: E402
from metalearn_lib.reference import loop_meta_gradient  # noqa: E402

NAME = "speed"
LABELS = algorithm_labels()
IMPLEMENTATIONS = {"batched": meta_gradient, "loop": loop_meta_gradient}


def time_call(fn) -> tuple[float, float]:
    """(wall ms, CPU ms) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return 1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu)


def measure(steps: tuple[int, ...], repeats: int, tasks: int, shots: int) -> dict:
    model = MLP(seed=0)
    params = parameters_of(model)
    batch = SinusoidTasks().sample(tasks, shots, shots, generator=torch.Generator().manual_seed(0))
    pairs = [(a, k) for a in ALGORITHMS for k in steps]
    samples = {(a, k, impl): ([], []) for a, k in pairs for impl in IMPLEMENTATIONS}

    def call(algorithm, k, impl):
        fn = IMPLEMENTATIONS[impl]
        return lambda: fn(model, params, batch, algorithm=algorithm, inner_steps=k, inner_lr=0.01)

    for a, k in pairs:  # warm-up
        for impl in IMPLEMENTATIONS:
            call(a, k, impl)()
    for r in range(repeats):
        for a, k in pairs:
            order = ("batched", "loop") if r % 2 == 0 else ("loop", "batched")
            for impl in order:
                wall, cpu = time_call(call(a, k, impl))
                samples[a, k, impl][0].append(wall)
                samples[a, k, impl][1].append(cpu)
    table = {}
    for a, k in pairs:
        row = {}
        for impl in IMPLEMENTATIONS:
            wall, cpu = samples[a, k, impl]
            row[f"{impl}_ms"] = median(wall)
            row[f"{impl}_cpu_ms"] = median(cpu)
        row["speedup"] = row["loop_ms"] / row["batched_ms"]
        row["speedup_cpu"] = row["loop_cpu_ms"] / row["batched_cpu_ms"]
        table.setdefault(a, {})[str(k)] = row
    return table


def measure_convnet(steps: tuple[int, ...], repeats: int, tasks: int) -> dict:
    """Batched time per meta-gradient of every algorithm on the ConvNet (5-way 1-shot digits)."""
    import torch.nn.functional as F

    from metalearn_lib import ConvNet, FewShotTasks, digits_meta_split

    model = ConvNet(out_features=5, image_size=8, seed=0)
    params = parameters_of(model)
    episodes = FewShotTasks(digits_meta_split()[0], ways=5)
    batch = episodes.sample(tasks, 1, 5, generator=torch.Generator().manual_seed(0))
    samples = {(a, k): [] for a in ALGORITHMS for k in steps}

    def call(algorithm, k):
        kw = dict(algorithm=algorithm, inner_steps=k, inner_lr=0.4, loss_fn=F.cross_entropy)
        return lambda: meta_gradient(model, params, batch, **kw)

    for a, k in samples:  # warm-up
        call(a, k)()
    for _ in range(repeats):
        for a, k in samples:
            samples[a, k].append(time_call(call(a, k))[0])
    return {a: {str(k): median(samples[a, k]) for k in steps} for a in ALGORITHMS}


def plot(out: Path, table: dict, steps: tuple[int, ...]) -> str:
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for a in ALGORITHMS:
        line = left.plot(
            steps,
            [table[a][str(k)]["batched_ms"] for k in steps],
            "o-",
            color=algorithm_color(a),
            label=f"{LABELS[a]}, batched",
        )
        left.plot(
            steps,
            [table[a][str(k)]["loop_ms"] for k in steps],
            "s--",
            color=line[0].get_color(),
            label=f"{LABELS[a]}, per-task loop",
        )
        right.plot(
            steps,
            [table[a][str(k)]["speedup"] for k in steps],
            "o-",
            color=algorithm_color(a),
            label=LABELS[a],
        )
    left.set_yscale("log")
    left.set_xlabel("inner steps")
    left.set_ylabel("ms per meta-iteration (median)")
    left.set_title("Time of one meta-gradient, 25 tasks")
    left.legend(fontsize=7)
    right.axhline(4, color="grey", linestyle=":", label="goal: 4x")
    right.set_xlabel("inner steps")
    right.set_ylabel("loop time / batched time")
    right.set_title("Speed-up of the batched implementation")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return savefig(fig, out, f"{NAME}_batched_vs_loop.png")


def convnet_lines(data: dict) -> list[str]:
    conv, steps = data["convnet"], data["convnet_inner_steps"]
    rows = [[LABELS[a]] + [f"{conv[a][str(k)]:.1f}" for k in steps] for a in ALGORITHMS]
    speedups = ", ".join(
        f"{conv['maml'][str(k)] / conv['anil'][str(k)]:.1f}x at {k} steps" for k in steps
    )
    return [
        "### Time per iteration on the ConvNet",
        "",
        f"Batched meta-gradient, {data['convnet_tasks']} tasks of 5-way 1-shot digits (5 query "
        "images per class), ConvNet 3 blocks x 32 filters with batch norm, cross-entropy, "
        f"median wall ms of {data['convnet_repeats']} calls after a warm-up:",
        "",
        md_table(["algorithm"] + [f"{k} steps" for k in steps], rows),
        "",
        f"**ANIL (head-only inner loop) against MAML: {speedups}.**",
        "",
    ]


def markdown(data: dict, link: str) -> str:
    table, steps = data["results"], data["inner_steps"]
    rows = []
    for a in ALGORITHMS:
        for k in steps:
            r = table[a][str(k)]
            rows.append(
                [
                    LABELS[a],
                    k,
                    f"{r['batched_ms']:.1f}",
                    f"{r['loop_ms']:.1f}",
                    f"**{r['speedup']:.1f}x**",
                    f"{r['batched_cpu_ms']:.1f}",
                    f"{r['loop_cpu_ms']:.1f}",
                    f"{r['speedup_cpu']:.1f}x",
                ]
            )
    goal = data["goal"]
    return "\n".join(
        [
            "## Speed: batched torch.func against a per-task loop",
            quick_note(data["quick"]),
            f"One meta-gradient for {data['tasks']} tasks ({data['shots']} support + "
            f"{data['shots']} query points, MLP 1-40-40-1), one torch thread. `batched` is "
            "`metalearn_lib.meta_gradient` (`vmap` over tasks); `loop` is "
            "`metalearn_lib.reference.loop_meta_gradient` (one task at a time, "
            "`torch.autograd.grad`, `create_graph=True` for MAML). Both are timed in the same "
            f"process, interleaved, after a warm-up; median of {data['repeats']} calls each. "
            "Wall time is what you wait; CPU time of the process is what other programs "
            "on a busy machine cannot inflate.",
            "",
            md_table(
                [
                    "algorithm",
                    "inner steps",
                    "batched ms",
                    "loop ms",
                    "speed-up",
                    "batched CPU ms",
                    "loop CPU ms",
                    "speed-up (CPU)",
                ],
                rows,
            ),
            "",
            *convnet_lines(data),
            "Goal (MAML, FOMAML, Reptile), at least 4x from 5 inner steps on: "
            f"smallest speed-up from 5 steps on is "
            f"{goal['min_speedup_from_5']:.1f}x (wall) / {goal['min_speedup_cpu_from_5']:.1f}x "
            f"(CPU): **{'met' if goal['met'] else 'NOT met'}**.",
            "",
            link,
        ]
    )


def main(argv=None) -> dict:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    setup()
    start = time.perf_counter()
    steps = (1, 5, 10, 20)
    repeats = 2 if args.quick else 7
    tasks, shots = (25, 10)
    if args.quick:
        steps = (1, 5)  # 5: the goal is stated from 5 inner steps on
    info = machine()
    print(
        f"{NAME}: {len(steps) * len(ALGORITHMS)} settings x {repeats} interleaved repeats",
        flush=True,
    )
    table = measure(steps, repeats, tasks, shots)
    conv_steps, conv_tasks, conv_repeats = ((1,), 2, 1) if args.quick else ((1, 5, 10), 8, 7)
    convnet = measure_convnet(conv_steps, conv_repeats, conv_tasks)
    # The goal was set for the first three algorithms (the variants came later).
    from_5 = [table[a][str(k)] for a in ("maml", "fomaml", "reptile") for k in steps if k >= 5]
    data = {
        "benchmark": NAME,
        "quick": args.quick,
        "machine": info,
        "tasks": tasks,
        "shots": shots,
        "inner_steps": list(steps),
        "repeats": repeats,
        "results": table,
        "convnet": convnet,
        "convnet_inner_steps": list(conv_steps),
        "convnet_tasks": conv_tasks,
        "convnet_repeats": conv_repeats,
        "goal": {
            "min_speedup_from_5": min(r["speedup"] for r in from_5),
            "min_speedup_cpu_from_5": min(r["speedup_cpu"] for r in from_5),
            "met": min(r["speedup"] for r in from_5) >= 4,
        },
        "wall_seconds": time.perf_counter() - start,
    }
    link = plot(args.out, table, steps)
    write_json(args.out, NAME, data)
    write_md(args.out, NAME, markdown(data, link))
    print(f"{NAME}: wrote {args.out / NAME}.json/.md in {data['wall_seconds']:.0f} s")
    return data


if __name__ == "__main__":
    main()
