"""Time per meta-training iteration: eager before and after, compiled, per-task loop, and JAX.

The paper's setup (MLP 1-40-40-1, 25 sinusoid tasks of 10 support + 10 query
points, inner lr 0.01, Adam 1e-3) for MAML, FOMAML and Reptile at 1, 5 and 10
inner steps. One training iteration is everything ``meta_train`` does per
update: sample the tasks, compute the direction, take the Adam step, read the
loss. Five ways, each in its own process with one thread:

* **eager before**: ``meta_train`` of the library at commit ``fa3ce7f``
  (before the registry, with argument checks and two probe forward passes
  every iteration), unpacked from git into a temporary folder;
* **eager now**: ``meta_train(..., compile=False)``;
* **compiled**: ``meta_train(..., compile=True)``; the compile time is
  reported apart (its first iteration minus an eager one);
* **per-task loop**: the same training loop with
  ``metalearn_lib.reference.loop_meta_gradient`` (one task at a time);
* **JAX**: the same step written with ``jax.jit`` and optax's Adam, sampling
  included (``requirements-bench.txt``; "not installed" without it).

ms per iteration is the median over the timed iterations (robust to a busy
machine); CPU ms is the process's CPU time per iteration.

    python benchmarks/training_speed.py                # full, into docs/benchmarks
    python benchmarks/training_speed.py --quick        # seconds, no compiling, into a temp folder
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    ROOT,
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

NAME = "training_speed"
BASELINE_COMMIT = "fa3ce7f"
ALGORITHMS = ("maml", "fomaml", "reptile")
STEPS = (1, 5, 10)
SETUP = dict(meta_batch_size=25, shots=10, queries=10, inner_lr=0.01, meta_lr=1e-3)
WAYS = ("eager_before", "eager_now", "compiled", "loop", "jax")
TITLES = {
    "eager_before": "eager before",
    "eager_now": "eager now",
    "compiled": "compiled",
    "loop": "per-task loop",
    "jax": "JAX (jit)",
}
# Timed iterations (after WARMUP untimed ones) per number of inner steps.
FULL = {"iterations": {1: 300, 5: 100, 10: 50}, "loop_iterations": {1: 20, 5: 8, 10: 5}}
QUICK = {"iterations": {1: 4, 5: 3, 10: 2}, "loop_iterations": {1: 2, 5: 2, 10: 2}}
WARMUP = 3


# ---------------------------------------------------------------------------
# The parts, each run in its own process (``--part``), printing one JSON line.
# ---------------------------------------------------------------------------


def _median_step(times: list[float], warmup: int) -> float:
    return 1000 * statistics.median(b - a for a, b in zip(times[warmup - 1 : -1], times[warmup:]))


def _per_iteration(elapsed: list[float], cpu: list[float], warmup: int) -> dict:
    """Median wall and CPU ms per iteration after ``warmup`` (cumulative time stamps)."""
    return {
        "ms": _median_step(elapsed, warmup),
        "cpu_ms": _median_step(cpu, warmup),
        "timed_iterations": len(elapsed) - warmup,
    }


def part_meta_train(algorithm: str, steps: int, iterations: int, compile: bool | None) -> dict:
    """Eager before (run with the old library on PYTHONPATH), eager now, or compiled.

    A short run first pays for imports, first calls and compiling (the compiled
    step is cached per model and reused); then the timed run, with no callback
    (it would copy theta every iteration) and its CPU time read around it.
    """
    import torch

    torch.set_num_threads(1)
    from metalearn_lib import MLP, SinusoidTasks, meta_train

    kwargs = dict(SETUP, algorithm=algorithm, inner_steps=steps, progress=False)
    if compile is not None:
        kwargs["compile"] = compile
    model, result = MLP(seed=0), {}
    _, warm = meta_train(model, SinusoidTasks(), iterations=WARMUP, **kwargs)
    if compile:
        result["compile_seconds"] = warm.compile_seconds
    cpu = time.process_time()
    _, history = meta_train(model, SinusoidTasks(), iterations=iterations, **kwargs)
    cpu = time.process_time() - cpu
    if compile:
        result["mode"] = history.settings["compile"]
    return result | {
        "ms": _median_step(history.elapsed, 1),
        "cpu_ms": 1000 * cpu / iterations,
        "timed_iterations": iterations,
    }


def part_loop(algorithm: str, steps: int, iterations: int) -> dict:
    """``meta_train``'s loop around the per-task reference implementation."""
    import torch

    torch.set_num_threads(1)
    from metalearn_lib import MLP, SinusoidTasks, parameters_of
    from metalearn_lib.reference import loop_meta_gradient

    model, tasks = MLP(seed=0), SinusoidTasks()
    theta = parameters_of(model)
    optimizer = torch.optim.Adam(list(theta.values()), lr=SETUP["meta_lr"])
    generator = torch.Generator().manual_seed(0)
    start, cpu, elapsed = time.perf_counter(), [], []
    for _ in range(WARMUP + iterations):
        batch = tasks.sample(
            SETUP["meta_batch_size"], SETUP["shots"], SETUP["queries"], generator=generator
        )
        direction = loop_meta_gradient(
            model, theta, batch, algorithm=algorithm, inner_steps=steps, inner_lr=SETUP["inner_lr"]
        )
        optimizer.zero_grad(set_to_none=False)
        for name, p in theta.items():
            p.grad = direction[name]
        optimizer.step()
        elapsed.append(time.perf_counter() - start)
        cpu.append(time.process_time())
    return _per_iteration(elapsed, cpu, WARMUP)


def part_jax(algorithm: str, steps: int, iterations: int) -> dict:
    """The same training iteration in JAX: sampling, direction and Adam in one ``jax.jit``."""
    try:
        import jax
        import jax.numpy as jnp
        import optax
    except ImportError:
        return {"not_installed": True}

    def init(key):
        sizes, params = [1, 40, 40, 1], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            key, k1, k2 = jax.random.split(key, 3)
            bound = 1 / fan_in**0.5  # torch.nn.Linear's default initialization
            w = jax.random.uniform(k1, (fan_in, fan_out), minval=-bound, maxval=bound)
            b = jax.random.uniform(k2, (fan_out,), minval=-bound, maxval=bound)
            params.append((w, b))
        return params

    def forward(params, x):
        for i, (w, b) in enumerate(params):
            x = x @ w + b
            if i < len(params) - 1:
                x = jax.nn.relu(x)
        return x

    def loss(params, x, y):
        return jnp.mean((forward(params, x) - y) ** 2)

    def adapt(params, x, y, first_order):
        for _ in range(steps):
            g = jax.grad(loss)(params, x, y)
            if first_order:
                g = jax.lax.stop_gradient(g)
            params = jax.tree_util.tree_map(lambda p, gi: p - SETUP["inner_lr"] * gi, params, g)
        return params

    def sample(key):
        n, k = SETUP["meta_batch_size"], SETUP["shots"] + SETUP["queries"]
        ka, kp, kx = jax.random.split(key, 3)
        amplitude = jax.random.uniform(ka, (n, 1, 1), minval=0.1, maxval=5.0)
        phase = jax.random.uniform(kp, (n, 1, 1), minval=0.0, maxval=jnp.pi)
        x = jax.random.uniform(kx, (n, k, 1), minval=-5.0, maxval=5.0)
        y = amplitude * jnp.sin(x - phase)
        s = SETUP["shots"]
        return x[:, :s], y[:, :s], x[:, s:], y[:, s:]

    def direction(params, batch):
        sx, sy, qx, qy = batch

        def query_loss_after(theta, first_order):
            def one(a, b, c, d):
                return loss(adapt(theta, a, b, first_order), c, d)

            return jnp.mean(jax.vmap(one)(sx, sy, qx, qy))

        if algorithm == "maml":
            value, g = jax.value_and_grad(lambda t: query_loss_after(t, False))(params)
            return g, value
        phi = jax.vmap(lambda a, b: adapt(params, a, b, True))(sx, sy)
        losses, grads = jax.vmap(jax.value_and_grad(loss))(phi, qx, qy)
        if algorithm == "fomaml":
            return jax.tree_util.tree_map(lambda g: g.mean(0), grads), losses.mean()
        return jax.tree_util.tree_map(lambda t, p: t - p.mean(0), params, phi), losses.mean()

    optimizer = optax.adam(SETUP["meta_lr"])

    @jax.jit
    def step(params, opt_state, key):
        key, sub = jax.random.split(key)
        g, value = direction(params, sample(sub))
        updates, opt_state = optimizer.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, key, value

    params = init(jax.random.PRNGKey(0))
    opt_state, key = optimizer.init(params), jax.random.PRNGKey(1)
    compile_start = time.perf_counter()
    params, opt_state, key, value = step(params, opt_state, key)
    float(value)
    compile_seconds = time.perf_counter() - compile_start
    start, cpu, elapsed = time.perf_counter(), [], []
    for _ in range(WARMUP + iterations):
        params, opt_state, key, value = step(params, opt_state, key)
        float(value)  # meta_train reads the loss every iteration too
        elapsed.append(time.perf_counter() - start)
        cpu.append(time.process_time())
    result = _per_iteration(elapsed, cpu, WARMUP)
    result["compile_seconds"] = compile_seconds
    result["jax"] = jax.__version__
    return result


# ---------------------------------------------------------------------------
# Orchestration.
# ---------------------------------------------------------------------------


def baseline_tree() -> Path | None:
    """The library at BASELINE_COMMIT, unpacked from git into a temporary folder."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", BASELINE_COMMIT, "metalearn_lib"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    folder = Path(tempfile.mkdtemp(prefix="baseline-"))
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def run_part(way: str, algorithms: list[str], iterations: dict, baseline: Path | None) -> dict:
    """Measure ``way`` for ``algorithms`` at every entry of ``iterations`` in one new process."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    env["JAX_PLATFORMS"] = "cpu"
    if way == "eager_before":
        if baseline is None:
            return {"not_available": f"git archive {BASELINE_COMMIT} failed"}
        # The old library first on the path: it wins over the editable install of the new one.
        env["PYTHONPATH"] = str(baseline)
    plan = json.dumps({"way": way, "algorithms": algorithms, "iterations": iterations})
    command = [sys.executable, __file__, "--part", plan]
    completed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if completed.returncode != 0:
        raise RuntimeError(f"{way} {algorithms}: {completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_one(way: str, algorithm: str, steps: int, iterations: int) -> dict:
    if way == "eager_before":
        result = part_meta_train(algorithm, steps, iterations, compile=None)
        import metalearn_lib

        result["library"] = str(Path(metalearn_lib.__file__).parent)
        return result
    if way == "eager_now":
        return part_meta_train(algorithm, steps, iterations, compile=False)
    if way == "compiled":
        return part_meta_train(algorithm, steps, iterations, compile=True)
    if way == "loop":
        return part_loop(algorithm, steps, iterations)
    return part_jax(algorithm, steps, iterations)


def main_part(plan: str) -> None:
    plan = json.loads(plan)
    result = {
        a: {k: measure_one(plan["way"], a, int(k), n) for k, n in plan["iterations"].items()}
        for a in plan["algorithms"]
    }
    print(json.dumps(result))


def plot(out: Path, data: dict) -> str:
    import matplotlib.pyplot as plt

    labels, results = algorithm_labels(), data["results"]
    fig, axes = plt.subplots(1, len(ALGORITHMS), figsize=(12, 3.8), sharey=True)
    styles = {"eager_before": ":", "eager_now": "--", "compiled": "-", "loop": "-.", "jax": "-"}
    markers = {"eager_before": "x", "eager_now": "s", "compiled": "o", "loop": "v", "jax": "^"}
    for ax, a in zip(axes, ALGORITHMS):
        for way in WAYS:
            points = [(k, results[a][str(k)][way].get("ms")) for k in data["inner_steps"]]
            points = [(k, ms) for k, ms in points if ms is not None]
            if points:
                color = {"compiled": algorithm_color(a), "jax": "black"}.get(way, "grey")
                ax.plot(
                    *zip(*points),
                    ls=styles[way],
                    marker=markers[way],
                    color=color,
                    label=TITLES[way],
                )
        ax.set(title=labels[a], xlabel="inner steps", yscale="log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("ms per training iteration (median)")
    axes[-1].legend(fontsize=7)
    return savefig(fig, out, f"{NAME}.png")


def cell(entry: dict) -> str:
    if entry.get("not_installed"):
        return "not installed"
    if "not_available" in entry or "skipped" in entry:
        return entry.get("skipped", "n/a")
    return f"{entry['ms']:.2f}"


def load_note(data: dict) -> str:
    load = (data["machine"].get("load_average_at_start") or [0])[0]
    cores = data["machine"].get("cores") or 1
    if load <= 1.5 * cores:
        return ""
    return (
        f"**This run shared the machine**: load average {load:.1f} on {cores} cores at the "
        f"start, {data['jobs']} parts at a time. Wall times are inflated many times over and "
        "were taken at different moments, so compare rows measured back to back (below) and "
        "the CPU table, not columns across the big table.\n"
    )


def back_to_back(data: dict) -> list[str]:
    """The paper's setup (MAML, 1 inner step), every way measured one after the other."""
    paper = data.get("paper_back_to_back") or {}
    if not paper:
        return []
    rows = [[TITLES[w], cell(paper[w]), cpu_cell(paper[w])] for w in WAYS if w in paper]
    lines = [
        "The paper's setup (MAML, 1 inner step), every way measured back to back:",
        "",
        md_table(["way", "ms per iteration", "CPU ms per iteration"], rows),
        "",
    ]
    if all("ms" in paper.get(w, {}) for w in ("eager_before", "compiled", "jax")):
        before, fast, jax = (paper[w]["ms"] for w in ("eager_before", "compiled", "jax"))
        lines += [
            f"**Compiled: {before / fast:.1f}x faster per iteration than `meta_train` before "
            f"this change (target 6x), {fast / jax:.2f}x the time of JAX (target 1.3x).**",
            "",
        ]
        cpu = [paper[w].get("cpu_ms") for w in ("eager_before", "compiled", "jax")]
        if None not in cpu:
            lines += [
                f"By CPU time: {cpu[0] / cpu[1]:.1f}x faster than before, {cpu[1] / cpu[2]:.2f}x "
                "the time of JAX.",
                "",
            ]
    return lines


def cpu_cell(entry: dict) -> str:
    value = entry.get("cpu_ms")
    return cell(entry) if "ms" not in entry else ("n/a" if value is None else f"{value:.2f}")


def markdown(data: dict, link: str) -> str:
    labels, results = algorithm_labels(), data["results"]
    rows = []
    for a in ALGORITHMS:
        for k in data["inner_steps"]:
            r = results[a][str(k)]
            compiled = r["compiled"]
            rows.append(
                [labels[a], k]
                + [cell(r[way]) for way in WAYS]
                + [f"{compiled['compile_seconds']:.0f}" if "compile_seconds" in compiled else "-"]
            )
    cpu_rows = [
        [labels[a], k] + [cpu_cell(results[a][str(k)][way]) for way in WAYS]
        for a in ALGORITHMS
        for k in data["inner_steps"]
    ]
    paper = results["maml"]["1"]
    summary = []
    if "ms" in paper["compiled"] and "ms" in paper["eager_before"] and not back_to_back(data):
        summary.append(
            f"At the paper's setup (MAML, 1 inner step) a compiled iteration takes "
            f"**{paper['compiled']['ms']:.2f} ms**: "
            f"**{paper['eager_before']['ms'] / paper['compiled']['ms']:.1f}x** faster than "
            f"`meta_train` before this change ({paper['eager_before']['ms']:.2f} ms; target 6x)"
        )
        if "ms" in paper["jax"]:
            summary[-1] += (
                f", and {paper['compiled']['ms'] / paper['jax']['ms']:.2f}x the time of JAX "
                f"({paper['jax']['ms']:.2f} ms; target within 1.3x)"
            )
        summary[-1] += "."
    if "compile_seconds" in paper["compiled"] and "ms" in paper["eager_now"]:
        saving = (paper["eager_now"]["ms"] - paper["compiled"]["ms"]) / 1000
        summary.append(
            f"In this run compiling took {paper['compiled']['compile_seconds']:.0f} s, so it paid "
            "after about "
            f"{paper['compiled']['compile_seconds'] / saving:,.0f} iterations: "
            "`meta_train(compile=None)` makes that choice itself, from the eager time of its "
            "first iterations and the compile costs in `metalearn_lib.compiled.BREAK_EVEN`."
        )
    # On a busy machine the gain (two probe passes and the checks, well under a millisecond)
    # drowns in the noise: it is stated only from a quiet run.
    quiet = not load_note(data)
    if quiet and "ms" in paper["eager_now"] and "ms" in paper["eager_before"]:
        gains = [
            results[a][str(k)]["eager_before"]["ms"] / results[a][str(k)]["eager_now"]["ms"]
            for a in ALGORITHMS
            for k in data["inner_steps"]
            if "ms" in results[a][str(k)]["eager_before"]
        ]
        summary.append(
            "Checking the arguments and probing the model once per run instead of every "
            f"iteration makes eager `meta_train` {min(gains):.2f}x to {max(gains):.2f}x "
            f"as fast as before ({paper['eager_before']['ms']:.2f} -> "
            f"{paper['eager_now']['ms']:.2f} ms at the paper's setup)."
        )
    return "\n".join(
        [
            "## Speed of a training iteration: eager, compiled, per-task loop, JAX",
            quick_note(data["quick"]),
            f"One `meta_train` iteration (sample {SETUP['meta_batch_size']} sinusoid tasks of "
            f"{SETUP['shots']} + {SETUP['queries']} points, the direction, an Adam step, read "
            "the loss), MLP 1-40-40-1, one thread per process, median ms over "
            f"{data['iterations']['1']}/{data['iterations']['5']}/{data['iterations']['10']} "
            "timed iterations at 1/5/10 inner steps (per-task loop: "
            f"{data['loop_iterations']['1']}/{data['loop_iterations']['5']}/"
            f"{data['loop_iterations']['10']}). *eager before*: the library at commit "
            f"`{BASELINE_COMMIT}`; *compiled*: `meta_train(compile=True)`, compile time apart "
            f"(inductor cache {data['inductor_cache']}); *JAX*: `jax.jit` of sampling, "
            "direction and optax Adam together.",
            "",
            load_note(data),
            md_table(
                ["algorithm", "inner steps"] + [f"{TITLES[w]} ms" for w in WAYS] + ["compile s"],
                rows,
            ),
            "",
            "CPU ms per iteration (the process's own CPU time; a busy machine inflates it "
            "much less than wall time; *n/a* where this run did not record it):",
            "",
            md_table(
                ["algorithm", "inner steps"] + [f"{TITLES[w]} CPU ms" for w in WAYS],
                cpu_rows,
            ),
            "",
            *back_to_back(data),
            *summary,
            "",
            link,
            "",
        ]
    )


def options(parser) -> None:
    parser.add_argument(
        "--jobs", type=int, default=1, help="processes measuring at once (1: most accurate)"
    )
    parser.add_argument(
        "--compile-steps",
        type=int,
        nargs="*",
        default=list(STEPS),
        help="inner-step counts that get a compiled column (each one compiles for minutes)",
    )


def main(argv=None) -> dict:
    args = parse_args(
        NAME,
        __doc__.splitlines()[0],
        argv,
        extra=options,
        render_only=True,
    )
    setup()
    if args.render_only:  # redraw the table and plot from an earlier run's JSON
        data = json.loads((args.out / f"{NAME}.json").read_text())
        write_md(args.out, NAME, markdown(data, plot(args.out, data)))
        return data
    settings = QUICK if args.quick else FULL
    start = time.perf_counter()
    baseline = baseline_tree()
    # One process per way (quick) or per way and algorithm (full): importing torch and
    # compiling are the slow parts, and each way needs its own library on the path.
    groups = [[a] for a in ALGORITHMS] if not args.quick else [list(ALGORITHMS)]
    jobs = [(way, group) for way in WAYS for group in groups]

    def measure(job):
        way, group = job
        kind = "loop_iterations" if way == "loop" else "iterations"
        iterations = {str(k): settings[kind][k] for k in STEPS}
        if way == "compiled":
            if args.quick:
                return way, {
                    a: {str(k): {"skipped": "skipped (--quick)"} for k in STEPS} for a in group
                }
            iterations = {str(k): n for k, n in iterations.items() if int(k) in args.compile_steps}
        print(f"{way} {group} ...", flush=True)
        measured = run_part(way, group, iterations, baseline)
        for a in group:
            for k in STEPS:
                measured[a].setdefault(str(k), {"skipped": "not run"})
        return way, measured

    results = {a: {str(k): {} for k in STEPS} for a in ALGORITHMS}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for way, measured in pool.map(measure, jobs):
            for a, per_steps in measured.items():
                for k, result in per_steps.items():
                    results[a][k][way] = result
    # The headline comparison again, one way after the other with nothing else of ours
    # running, so that all five see the same machine.
    paper = {}
    for way in WAYS:
        if way == "compiled" and args.quick:
            continue
        n = settings["loop_iterations" if way == "loop" else "iterations"][1]
        print(f"back to back: {way} ...", flush=True)
        paper[way] = run_part(way, ["maml"], {"1": n}, baseline)["maml"]["1"]
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR", "default")
    data = {
        "machine": machine(),
        "quick": args.quick,
        "setup": SETUP,
        "inner_steps": list(STEPS),
        "iterations": {str(k): v for k, v in settings["iterations"].items()},
        "loop_iterations": {str(k): v for k, v in settings["loop_iterations"].items()},
        "jobs": args.jobs,
        "compile_steps": args.compile_steps,
        "baseline_commit": BASELINE_COMMIT,
        "inductor_cache": "cold (fresh folder)" if cache != "default" else "as found",
        "results": results,
        "paper_back_to_back": paper,
        "wall_seconds": time.perf_counter() - start,
    }
    write_json(args.out, NAME, data)
    write_md(args.out, NAME, markdown(data, plot(args.out, data)))
    print(f"{NAME}: wrote {args.out} in {data['wall_seconds']:.0f} s")
    return data


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--part":
        main_part(sys.argv[2])
    else:
        main()
