"""Helpers shared by the benchmark scripts (not a benchmark itself: run_all skips ``_*.py``).

Every benchmark script ``benchmarks/<name>.py`` has ``main(argv=None)`` with
``--quick`` (a small version that checks the script works, in seconds) and
``--out DIR``, and writes into ``DIR``:

* ``<name>.json`` - every number, machine-readable;
* ``<name>.md`` - a markdown section (tables and ``![](<name>_*.png)`` links);
* ``<name>_*.png`` - the plots.

Full results go to ``docs/benchmarks`` by default. Quick runs never write
there: without ``--out`` they use a fresh temporary folder.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks"


def algorithm_labels() -> dict[str, str]:
    """How each registered algorithm is named in tables and legends (from the registry)."""
    from metalearn_lib import ALGORITHMS, algorithm_label

    return {name: algorithm_label(name) for name in ALGORITHMS}


def algorithm_color(name: str) -> str:
    """A fixed matplotlib colour per algorithm: its place in the registry ("C0", "C1", ...)."""
    from metalearn_lib import ALGORITHMS, check_algorithm

    return f"C{ALGORITHMS.index(check_algorithm(name)) % 10}"


def parse_args(
    name: str, description: str, argv: Sequence[str] | None, extra=None, render_only: bool = False
) -> argparse.Namespace:
    """Parse ``--quick`` and ``--out``; quick runs may not write into the committed folder.

    ``render_only=True`` adds ``--render-only`` for scripts that can redraw their
    tables and plots from the JSON of an earlier run.
    """
    parser = argparse.ArgumentParser(prog=f"benchmarks/{name}.py", description=description)
    parser.add_argument("--quick", action="store_true", help="tiny settings: seconds, not minutes")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output folder (default: {DEFAULT_OUT.relative_to(ROOT)}; "
        "with --quick a fresh temporary folder)",
    )
    if render_only:
        parser.add_argument(
            "--render-only",
            action="store_true",
            help="only redraw the tables and plots from the JSON already in --out",
        )
    if extra is not None:  # a script's own options: extra(parser) adds them
        extra(parser)
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = (
            Path(tempfile.mkdtemp(prefix=f"bench-quick-{name}-")) if args.quick else DEFAULT_OUT
        )
    args.out = args.out.resolve()
    if args.quick and args.out == DEFAULT_OUT.resolve():
        parser.error(
            f"--quick would overwrite the committed full results in {DEFAULT_OUT}; "
            "pass another --out"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def setup() -> None:
    """One torch thread (as fast as two for these small models, and repeatable), headless plots."""
    torch.set_num_threads(1)
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where available."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Where and with what the numbers were measured."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _check_finite(value, where: str = "result") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is not finite: {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]")


def write_json(out: Path, name: str, data: dict) -> Path:
    """Write ``<out>/<name>.json``; a NaN or infinity anywhere is an error, not a silent hole."""
    _check_finite(data, name)
    path = out / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    return path


def write_md(out: Path, name: str, text: str) -> Path:
    path = out / f"{name}.md"
    path.write_text(text.rstrip() + "\n")
    return path


def md_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub markdown table; the first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|")
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def savefig(fig, out: Path, filename: str) -> str:
    """Save a matplotlib figure into ``out`` and return the markdown image link."""
    if not fig.get_layout_engine():
        fig.tight_layout()
    fig.savefig(out / filename, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f"![{filename}]({filename})"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def quick_note(quick: bool) -> str:
    return (
        "\n> **Quick mode**: tiny settings that only check the script runs; "
        "these numbers mean nothing.\n"
        if quick
        else ""
    )
