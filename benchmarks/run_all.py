"""Run every benchmark and write the index page (``docs/benchmarks.md`` by default).

Every ``benchmarks/*.py`` except this file and ``_``-prefixed helpers is a
benchmark with ``main(argv=None)``, ``--quick`` and ``--out``. Each runs in
its own subprocess. The index is written next to the output folder:
``<out>/../<out name>.md`` (so ``docs/benchmarks`` gives ``docs/benchmarks.md``)
with a header (machine, date, torch version, how to regenerate) followed by
each benchmark's markdown fragment, image links rewritten to point into the
output folder.

    python benchmarks/run_all.py            # full: make bench
    python benchmarks/run_all.py --quick    # seconds, into a temp folder: make bench-quick

Full runs go one script at a time (the timing benchmarks must not compete
with each other; the accuracy benchmark runs its own two processes). Quick
runs use two processes at once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import DEFAULT_OUT, ROOT, cpu_model  # noqa: E402

#: Fragments appear in this order; any other benchmark follows alphabetically.
ORDER = ("sinusoid_accuracy", "maml_stability", "speed", "memory", "directions")
QUICK_NOTE = "> **Quick mode**: tiny settings that check the scripts run; numbers mean nothing."


def discover() -> list[str]:
    """Names of the benchmark scripts in this folder."""
    this = Path(__file__).name
    names = [p.stem for p in HERE.glob("*.py") if p.name != this and not p.stem.startswith("_")]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def run_one(name: str, out: Path, quick: bool, logs: Path) -> dict:
    command = [sys.executable, str(HERE / f"{name}.py"), "--out", str(out)]
    if quick:
        command.append("--quick")
    start = time.perf_counter()
    log = logs / f"{name}.log"
    with open(log, "w") as handle:
        code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    seconds = time.perf_counter() - start
    status = "ok" if code == 0 else f"FAILED (exit {code})"
    print(f"  {name}: {status} in {seconds:.0f} s (log: {log})", flush=True)
    return {"name": name, "returncode": code, "seconds": seconds, "log": str(log)}


def previous_run(name: str, out: Path) -> dict:
    """A run record for a benchmark that already wrote its results into ``out``."""
    seconds = 0.0
    path = out / f"{name}.json"
    if path.exists():
        seconds = float(json.loads(path.read_text()).get("wall_seconds", 0.0))
    return {"name": name, "returncode": 0, "seconds": seconds, "log": "-"}


def _relink(fragment: str, folder: str) -> str:
    """Point relative image and file links of a fragment into ``folder``."""

    def fix(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^([a-z]+:|/|#)", target):
            return match.group(0)
        return f"{match.group(1)}({folder}/{target})"

    return re.sub(r"(!?\[[^\]]*\])\(([^)\s]+)\)", fix, fragment)


def write_index(out: Path, runs: list[dict], quick: bool, wall: float) -> Path:
    import torch

    index = out.parent / f"{out.name}.md"
    loads, dates = [], []  # 1-minute load average and date when each benchmark started
    for r in runs:
        path = out / f"{r['name']}.json"
        if path.exists():
            info = json.loads(path.read_text()).get("machine", {})
            if info.get("load_average_at_start"):
                loads.append(info["load_average_at_start"][0])
            if info.get("date"):
                dates.append(info["date"])
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    when = f"{min(dates)} to {max(dates)}" if dates and min(dates) != max(dates) else now
    rows = "\n".join(
        f"| `benchmarks/{r['name']}.py` | {'ok' if r['returncode'] == 0 else '**failed**'} "
        f"| {r['seconds']:.0f} |"
        for r in runs
    )
    if loads and max(loads) > 1.5 * (os.cpu_count() or 1):
        contention = (
            f"\n**The machine was busy with other work** while these numbers were measured: the "
            f"1-minute load average was {min(loads):.1f} to {max(loads):.1f} on "
            f"{os.cpu_count()} cores when the benchmarks started. Wall times are therefore "
            "inflated; the tables also give CPU time (what the process itself used), and the "
            "speed ratios come from interleaved calls in one process, which contention "
            "affects much less.\n"
        )
    else:
        contention = ""
    header = f"""# Benchmarks
{QUICK_NOTE if quick else ""}
Every number and plot on this page is written by the benchmark scripts, never by hand.
Regenerate everything with

    make bench          # full run, rewrites docs/benchmarks.md and docs/benchmarks/
    make bench-quick    # a seconds-long smoke run into a temporary folder (the tests run it)

or one benchmark with `.venv/bin/python benchmarks/NAME.py` (add `--quick --out DIR` for a
smoke run). Machine-readable results: `{out.name}/NAME.json`.
How many students one server holds (real accounts, as root, not part of `make bench`):
[{out.name}/classroom.md]({out.name}/classroom.md).

| | |
|:---|:---|
| machine | {cpu_model()}, {os.cpu_count()} cores, one torch thread per process |
| benchmarks started | {when} |
| torch | {torch.__version__} (Python {sys.version.split()[0]}) |
| wall time of the benchmarks | {wall / 60:.1f} min |
{contention}
| script | status | wall time (s) |
|:---|:---|---:|
{rows}
"""
    parts = [header]
    for r in runs:
        fragment = out / f"{r['name']}.md"
        if fragment.exists() and r["returncode"] == 0:
            parts.append(_relink(fragment.read_text(), out.name))
        else:
            parts.append(f"## {r['name']}\n\n**This benchmark failed**; see `{r['log']}`.\n")
    index.write_text("\n\n".join(p.strip() for p in parts) + "\n")
    return index


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings, seconds not minutes")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default docs/benchmarks; with --quick a fresh temporary folder)",
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="scripts at once (quick: 2, full: 1)"
    )
    parser.add_argument("--only", nargs="*", default=None, help="run only these benchmarks")
    parser.add_argument(
        "--index-only",
        action="store_true",
        help="run nothing: rebuild the index from the fragments already in --out",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        if args.quick:
            args.out = Path(tempfile.mkdtemp(prefix="bench-quick-")) / "benchmarks"
        else:
            args.out = DEFAULT_OUT
    out = args.out.resolve()
    if args.quick and out == DEFAULT_OUT.resolve():
        parser.error(f"--quick would overwrite the committed full results in {DEFAULT_OUT}")
    out.mkdir(parents=True, exist_ok=True)
    names = discover()
    if args.only is not None:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"unknown benchmarks {unknown}; known: {names}")
        names = [n for n in names if n in args.only]
    if args.index_only:
        runs = [previous_run(n, out) for n in names if (out / f"{n}.md").exists()]
        index = write_index(out, runs, args.quick, sum(r["seconds"] for r in runs))
        print(f"run_all: wrote {index} from {len(runs)} existing fragments")
        return 0
    jobs = args.jobs or (2 if args.quick else 1)
    print(
        f"run_all: {len(names)} benchmarks into {out} ({'quick' if args.quick else 'full'}, "
        f"{jobs} at a time)",
        flush=True,
    )
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(lambda n: run_one(n, out, args.quick, logs), names))
    index = write_index(out, runs, args.quick, time.perf_counter() - start)
    failed = [r["name"] for r in runs if r["returncode"] != 0]
    print(f"run_all: wrote {index}" + (f"; FAILED: {failed}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
