"""Autograde time per submission: a batch of 30 notebooks through ``nbgrader autograde``.

A temporary course copy gets 10 right submissions of each assignment (30
notebooks; ``--quick``: 1 of each), and one ``nbgrader autograde "*"`` grades
them all, in the bubblewrap sandbox, with every verdict decided in the
grader's process (reference outputs included). The time of each notebook is
the gap between the moments nbgrader finished writing consecutive autograded
notebooks; nbgrader's own start-up (measured separately) is subtracted from
the first. Where the time goes is measured apart, in this process: starting
and stopping a sandboxed kernel against a plain one, and recomputing every
reference output of each coding assignment (the grader's part of a verdict).
"""

from __future__ import annotations

import asyncio
import os
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


def main(argv=None) -> dict:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    from grading_helpers import make_course, nbgrader, solved, submit

    per_assignment = 1 if args.quick else 10
    tmp = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    try:
        course = make_course(tmp)
        result = nbgrader(course, "generate_assignment", "*", "--force")
        assert result.returncode == 0, result.stderr[-3000:]
        for i in range(per_assignment):
            for assignment in ASSIGNMENTS:
                submit(course, f"s{i:02d}", assignment, solved(assignment, course))
        start = time.time()
        nbgrader(course, "db", "student", "list")
        startup = time.time() - start
        load = os.getloadavg()[0]
        print(f"{NAME}: autograding {per_assignment * 3} notebooks", flush=True)
        start = time.time()
        result = nbgrader(course, "autograde", "*")
        total = time.time() - start
        assert result.returncode == 0, result.stderr[-3000:]
        done = sorted(
            (p.stat().st_mtime, p.parent.name) for p in (course / "autograded").rglob("*.ipynb")
        )
        times, previous = [], start + startup
        for mtime, assignment in done:
            times.append((assignment, mtime - previous))
            previous = mtime
        references = _reference_seconds(course)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    repeats = 1 if args.quick else 3
    kernel_plain = statistics.median(_kernel_round_trip(False) for _ in range(repeats))
    kernel_sandboxed = statistics.median(_kernel_round_trip(True) for _ in range(repeats))

    seconds = [s for _, s in times]
    by_assignment = {
        a: {
            "mean_s": statistics.mean([s for b, s in times if b == a]),
            "max_s": max(s for b, s in times if b == a),
        }
        for a in ASSIGNMENTS
    }
    worst = max(times, key=lambda item: item[1])
    data = {
        "machine": machine(),
        "quick": args.quick,
        "notebooks": len(times),
        "load_average_at_start": load,
        "nbgrader_startup_s": startup,
        "batch_wall_s": total,
        "mean_per_notebook_s": statistics.mean(seconds),
        "worst_notebook_s": worst[1],
        "worst_assignment": worst[0],
        "by_assignment": by_assignment,
        "kernel_round_trip_plain_s": kernel_plain,
        "kernel_round_trip_sandboxed_s": kernel_sandboxed,
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
Batch: {total:.1f} s wall, of which nbgrader's start-up {startup:.1f} s.

{md_table(["assignment", "mean s per notebook", "worst s"], rows)}

Where the time goes (measured apart, median of 3):

{
        md_table(
            ["part", "seconds"],
            [
                ["start a kernel, run one cell, stop it (plain)", f"{kernel_plain:.2f}"],
                ["the same in the sandbox", f"{kernel_sandboxed:.2f}"],
                [
                    "all reference outputs of inner_loop (grader side)",
                    f"{references['inner_loop']:.2f}",
                ],
                [
                    "all reference outputs of first_order (grader side)",
                    f"{references['first_order']:.2f}",
                ],
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
