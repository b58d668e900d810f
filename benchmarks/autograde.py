"""Autograde time per submission: a batch of 30 notebooks through ``nbgrader autograde``.

A temporary course copy gets 10 right submissions of each assignment (30
notebooks; ``--per-assignment N`` for another number; ``--quick``: a single
quiz notebook, a few seconds, for the test suite), and one ``nbgrader
autograde "*"`` grades them all, in the bubblewrap sandbox, with every verdict decided in the
grader's process (reference outputs included). The time of each notebook is
the gap between the moments nbgrader finished writing consecutive autograded
notebooks; nbgrader's own start-up (measured separately) is subtracted from
the first. The CPU seconds of the whole batch (nbgrader, kernels, grader) are
reported beside the wall time, because the machine may be busy. Where the
time goes is measured apart, in this process: starting and stopping a
sandboxed kernel against a plain one, and recomputing every reference output
of each coding assignment (the grader's part of a verdict).
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _common import machine, md_table, parse_args, quick_note, savefig, write_json, write_md  # noqa: E402

NAME = "autograde"
ASSIGNMENTS = ("inner_loop", "first_order", "variants_quiz")


def _kernel_round_trip(sandboxed: bool) -> float:
    """Seconds to start a kernel, run one cell and shut it down."""
    from jupyter_client import AsyncKernelManager

    from metalearn_lib.grading.sandbox import SandboxedKernelManager

    async def run() -> float:
        folder = Path(tempfile.mkdtemp(prefix="bench-kernel-"))
        start = time.perf_counter()
        km = (SandboxedKernelManager if sandboxed else AsyncKernelManager)(kernel_name="python3")
        await km.start_kernel(cwd=str(folder))
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=120)
        await kc.execute_interactive("1 + 1", timeout=60)
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        shutil.rmtree(folder, ignore_errors=True)
        return time.perf_counter() - start

    return asyncio.run(run())


def _reference_seconds(course: Path) -> dict[str, float]:
    """Seconds to recompute every reference output of each coding assignment's hidden tests."""
    import nbformat

    from metalearn_lib.grading.coding import expected_outputs
    from metalearn_lib.grading.verdicts import grader_spec

    out = {}
    for assignment in ("inner_loop", "first_order"):
        nb = nbformat.read(course / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
        specs = [grader_spec(c.source) for c in nb.cells if c.cell_type == "code"]
        specs = [s for s in specs if s and s["kind"] == "coding"]
        start = time.perf_counter()
        for spec in specs:
            for case in spec["cases"]:
                expected_outputs(spec["check"], case)
        out[assignment] = time.perf_counter() - start
    return out


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes that were waited for.

    That is nbgrader and the grader in it; a sandboxed kernel runs in its own PID
    namespace and its CPU time does not come back to this process.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _machine_cpu_s() -> float:
    """CPU seconds the whole machine has been busy since boot (every process, every core)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _options(parser) -> None:
    parser.add_argument(
        "--per-assignment",
        type=int,
        default=10,
        help="right submissions per assignment (default 10; --quick: 1 quiz notebook only)",
    )


def main(argv=None) -> dict:
    args = parse_args(NAME, __doc__.splitlines()[0], argv, extra=_options)
    from grading_helpers import make_course, nbgrader, solved, submit

    if args.per_assignment < 1:
        raise ValueError(f"--per-assignment must be at least 1, got {args.per_assignment}")
    per_assignment = 1 if args.quick else args.per_assignment
    # The quick run (inside the test suite) grades one quiz notebook: no torch in its kernel.
    assignments = ("variants_quiz",) if args.quick else ASSIGNMENTS
    tmp = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    try:
        course = make_course(tmp)
        for assignment in assignments:
            result = nbgrader(course, "generate_assignment", assignment, "--force")
            assert result.returncode == 0, result.stderr[-3000:]
        for i in range(per_assignment):
            for assignment in assignments:
                submit(course, f"s{i:02d}", assignment, solved(assignment, course))
        start = time.time()
        nbgrader(course, "db", "student", "list")
        startup = time.time() - start
        load = os.getloadavg()[0]
        print(f"{NAME}: autograding {per_assignment * len(assignments)} notebooks", flush=True)
        start, cpu_start, busy_start = time.time(), _children_cpu_s(), _machine_cpu_s()
        result = nbgrader(course, "autograde", "*")
        total, cpu = time.time() - start, _children_cpu_s() - cpu_start
        busy = _machine_cpu_s() - busy_start
        assert result.returncode == 0, result.stderr[-3000:]
        done = sorted(
            (p.stat().st_mtime, p.parent.name) for p in (course / "autograded").rglob("*.ipynb")
        )
        times, previous = [], start + startup
        for mtime, assignment in done:
            times.append((assignment, mtime - previous))
            previous = mtime
        references = {} if args.quick else _reference_seconds(course)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # The quick run skips the parts measured apart (kernels, references): it only shows
    # that the batch is graded and the tables fill.
    repeats = 0 if args.quick else 3
    kernels = {
        "start a kernel, run one cell, stop it (plain)": False,
        "the same in the sandbox": True,
    }
    kernel_s = {
        what: statistics.median(_kernel_round_trip(sandboxed) for _ in range(repeats))
        for what, sandboxed in kernels.items()
        if repeats
    }

    seconds = [s for _, s in times]
    by_assignment = {
        a: {
            "mean_s": statistics.mean([s for b, s in times if b == a]),
            "max_s": max(s for b, s in times if b == a),
        }
        for a in assignments
    }
    worst = max(times, key=lambda item: item[1])
    data = {
        "machine": machine(),
        "quick": args.quick,
        "notebooks": len(times),
        "load_average_at_start": load,
        "nbgrader_startup_s": startup,
        "batch_wall_s": total,
        "batch_cpu_s_nbgrader_and_grader": cpu,
        "batch_cpu_s_whole_machine": busy,
        "machine_cpu_per_notebook_s": busy / len(times),
        "mean_per_notebook_s": statistics.mean(seconds),
        "worst_notebook_s": worst[1],
        "worst_assignment": worst[0],
        "by_assignment": by_assignment,
        "kernel_round_trip_s": kernel_s,
        "reference_outputs_s": references,
        "per_notebook_s": seconds,
    }
    write_json(args.out, NAME, data)

    fig, ax = plt.subplots(figsize=(7, 3.2))
    colors = {"inner_loop": "tab:blue", "first_order": "tab:orange", "variants_quiz": "tab:green"}
    ax.bar(range(len(times)), seconds, color=[colors[a] for a, _ in times])
    ax.axhline(3.0, color="grey", linestyle="--", linewidth=1, label="target 3 s")
    for a, c in colors.items():
        ax.bar([0], [0], color=c, label=a)
    ax.set_xlabel("notebook, in grading order")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=8)
    image = savefig(fig, args.out, f"{NAME}_per_notebook.png")

    rows = [[a, f"{v['mean_s']:.2f}", f"{v['max_s']:.2f}"] for a, v in by_assignment.items()] + [
        ["all", f"{data['mean_per_notebook_s']:.2f}", f"{worst[1]:.2f}"]
    ]
    text = f"""## Autograde time per submission

{quick_note(args.quick)}One `nbgrader autograde "*"` over {len(times)} right submissions
({per_assignment} per assignment), each in the bubblewrap sandbox, every verdict decided in the
grader's process. Load average when it started: {load:.1f} on {os.cpu_count()} cores.
Batch: {total:.1f} s wall, of which nbgrader's start-up {startup:.1f} s. CPU: nbgrader and the
grader used {cpu:.1f} s; the whole machine was busy for {busy:.1f} CPU seconds during the batch
({busy / len(times):.2f} per notebook; this includes the sandboxed kernels, and any other work on
the machine).

{md_table(["assignment", "mean s per notebook", "worst s"], rows)}

Where the time goes (measured apart, median of {repeats}; not in the quick run):

{
        md_table(
            ["part", "seconds"],
            [[what, f"{seconds:.2f}"] for what, seconds in kernel_s.items()]
            + [
                [f"all reference outputs of {a} (grader side)", f"{seconds:.2f}"]
                for a, seconds in references.items()
            ],
        )
    }

The rest of a coding notebook is the kernel's `import torch` and the student's own code on the
test cases; the grader imports torch once per batch.

{image}
"""
    write_md(args.out, NAME, text)
    return data


if __name__ == "__main__":
    main()
