"""How many students one server holds: the isolated hub measured with real accounts.

Run as root from the repository (about 5 minutes for 20 students on 2 cores)::

    sudo .venv/bin/python classroom/capacity_benchmark.py --students 20

It creates a throwaway class (``classroom/class_setup.py``; accounts
``mamlt-b00``... and ``mamlt-bi``, groups ``mamlt-bench-*``) under /var/tmp,
starts the hub of ``jupyterhub_config.py`` in its isolated mode on loopback
ports and measures:

* the hub's start: from the process start until its REST API answers;
* one user's first server start: from the request until the hub reports the
  server ready, and the first kernel start in it;
* every student's server with one idle kernel: the start times, and the memory
  per user (resident set and proportional set size, PSS, of all of the
  account's processes: PSS splits shared pages fairly, so the sum over users is
  what the machine really spends), and the machine's available memory before
  and after;
* the same after each kernel imported ``metalearn_lib`` and torch (what a
  student's kernel holds once a chapter starts);
* the CPU time the idle servers and kernels use in 30 s.

It then removes the class (accounts, homes, groups, files, the repository's
modes) whatever happens, and writes ``docs/benchmarks/classroom.md`` and
``.json`` (``--out`` to change). This is a benchmark, not a test: it lives
here rather than in benchmarks/ because it needs root and creates accounts,
which ``make bench-quick`` (run by the test suite) must not do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "classroom"))

import class_setup  # noqa: E402
from _hub_support import (  # noqa: E402
    ensure_proxy,
    free_ports,
    hub_command,
    kill_all,
    pids_mentioning,
    run_in_kernel,
)

PREFIX = "mamlt-b"
GROUPS = ("mamlt-bench-students", "mamlt-bench-instructors")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def _processes(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _memory(uid: int) -> dict[str, float]:
    """RSS and PSS (MiB) of all processes of one account, and how many there are."""
    rss = pss = 0
    pids = _processes(uid)
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return {"rss_mib": rss / 1024, "pss_mib": pss / 1024, "processes": len(pids)}


def _cpu_seconds(uids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for uid in uids:
        for pid in _processes(uid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError):
                pass
    return total / ticks


class Bench:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path):
        self.url, self.proc, self.log = url, proc, log
        self.tokens: dict[str, str] = {}
        self.kernels: dict[str, str] = {}

    def api(self, method, path, user=None, **kw):
        import requests

        headers = {"Authorization": f"token {self.tokens[user]}"} if user else {}
        return requests.request(method, self.url + path, headers=headers, timeout=120, **kw)

    def wait(self, what, check, timeout=300.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited while waiting for {what}")
            result = check()
            if result:
                return result
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}")

    def login(self, name: str, password: str) -> None:
        import requests

        session = requests.Session()
        session.get(f"{self.url}/hub/login", timeout=60)
        r = session.post(
            f"{self.url}/hub/login",
            data={"username": name, "password": password, "_xsrf": session.cookies.get("_xsrf")},
            allow_redirects=False,
            timeout=60,
        )
        if r.status_code != 302:
            raise RuntimeError(f"{name} could not log in ({r.status_code})")
        auth = {"auth": {"username": name, "password": password}}
        r = self.api("POST", f"/hub/api/users/{name}/tokens", json=auth)
        r.raise_for_status()
        self.tokens[name] = r.json()["token"]

    def start_server(self, name: str) -> float:
        started = time.monotonic()
        r = self.api("POST", f"/hub/api/users/{name}/server", user=name)
        if r.status_code not in (201, 202):
            raise RuntimeError(f"{name}'s server: {r.status_code} {r.text}")

        def ready():
            server = self.api("GET", f"/hub/api/users/{name}", user=name).json()["servers"]
            return server.get("", {}).get("ready")

        self.wait(f"{name}'s server", ready)
        return time.monotonic() - started

    def run(self, name: str, code: str) -> tuple[str, float]:
        """Run code in the user's kernel (started on first use); stdout and seconds."""
        started = time.monotonic()
        if name not in self.kernels:
            r = self.api("POST", f"/user/{name}/api/kernels", user=name, json={"name": "python3"})
            r.raise_for_status()
            self.kernels[name] = r.json()["id"]
        ws = self.url.replace("http://", "ws://")
        ws += f"/user/{name}/api/kernels/{self.kernels[name]}/channels"
        result = run_in_kernel(ws, self.tokens[name], code, timeout=300)
        if result["status"] != "ok":
            raise RuntimeError(f"{name}'s kernel: {result['stderr']}")
        return result["stdout"], time.monotonic() - started


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def measure(students: int, base: Path) -> dict:
    names = [f"{PREFIX}{i:02d}" for i in range(students)]
    instructor = f"{PREFIX}i"
    roster = base / "roster.csv"
    roster.write_text(
        "username,role\n" + f"{instructor},instructor\n" + "".join(f"{n},student\n" for n in names)
    )
    root = base / "class"
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(REPO / "classroom" / "class_setup.py"), "create", str(roster),
         "--root", str(root), "--home-base", str(base / "home"), "--students-group", GROUPS[0],
         "--instructors-group", GROUPS[1], "--open-parents"],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    setup_s = time.monotonic() - t0
    passwords = dict(line.split(":", 1) for line in (root / "passwords.txt").read_text().split())
    uids = {n: int(subprocess.check_output(["id", "-u", n], text=True)) for n in names}

    ensure_proxy()
    port, hub_port, api_port = free_ports(3)
    env = dict(os.environ, COURSE_HUB_MODE="isolated", COURSE_CLASS_ROOT=str(root))
    env.update(
        COURSE_HUB_PORT=str(port), COURSE_HUB_HUB_PORT=str(hub_port),
        COURSE_HUB_API_PORT=str(api_port),
    )  # fmt: skip
    available_before = _mem_available()
    log = base / "hub.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            hub_command(), cwd=root / "hub", env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    bench = Bench(f"http://127.0.0.1:{port}", proc, log)
    try:
        import requests

        def up():
            try:
                return requests.get(bench.url + "/hub/api/", timeout=5).status_code == 200
            except requests.ConnectionError:
                return False

        bench.wait("the hub", up)
        hub_start_s = time.monotonic() - started
        logins = []
        for name in names:
            t = time.monotonic()
            bench.login(name, passwords[name])
            logins.append(time.monotonic() - t)
        server_starts, kernel_starts = [], []
        for name in names:
            server_starts.append(bench.start_server(name))
            _, seconds = bench.run(name, "pass")
            kernel_starts.append(seconds)
            print(f"{name}: server {server_starts[-1]:.1f} s, kernel {kernel_starts[-1]:.1f} s")
        time.sleep(10)  # let start-up work settle
        idle = {n: _memory(uids[n]) for n in names}
        available_idle = _mem_available()
        cpu_before = _cpu_seconds(list(uids.values()))
        time.sleep(30)
        idle_cpu_s = _cpu_seconds(list(uids.values())) - cpu_before
        imports = []
        for name in names:
            _, seconds = bench.run(name, "import metalearn_lib, torch\nmetalearn_lib.MLP(seed=0)")
            imports.append(seconds)
        time.sleep(5)
        loaded = {n: _memory(uids[n]) for n in names}
        available_loaded = _mem_available()
        load = os.getloadavg()
    finally:
        kill_all([proc.pid, *pids_mentioning(str(root))])
        subprocess.run(
            [sys.executable, str(REPO / "classroom" / "class_setup.py"), "remove", "--root",
             str(root)], capture_output=True, text=True,
        )  # fmt: skip
    return {
        "students": students,
        "class_setup_s": setup_s,
        "hub_start_s": hub_start_s,
        "first_server_start_s": server_starts[0],
        "first_kernel_start_s": kernel_starts[0],
        "login_s": _summary(logins),
        "server_start_s": _summary(server_starts),
        "kernel_start_s": _summary(kernel_starts),
        "import_metalearn_lib_s": _summary(imports),
        "idle": {
            "pss_mib": _summary([m["pss_mib"] for m in idle.values()]),
            "rss_mib": _summary([m["rss_mib"] for m in idle.values()]),
            "processes_per_user": _summary([m["processes"] for m in idle.values()]),
            "available_drop_mib": (available_before - available_idle) / 2**20,
        },
        "torch_loaded": {
            "pss_mib": _summary([m["pss_mib"] for m in loaded.values()]),
            "rss_mib": _summary([m["rss_mib"] for m in loaded.values()]),
            "available_drop_mib": (available_before - available_loaded) / 2**20,
        },
        "idle_cpu_s_per_30s_all_users": idle_cpu_s,
        "mem_total_mib": os.sysconf("SC_PHYS_PAGES") * PAGE / 2**20,
        "mem_available_before_mib": available_before / 2**20,
        "load_average_at_end": load,
    }


def _capacity(result: dict, key: str, reserve_mib: float = 2048) -> int:
    """Users whose median PSS fits in the memory available before the hub started.

    ``reserve_mib`` is kept back for the system, the hub and the proxy. PSS,
    not the drop in available memory: other work on a shared machine moves
    the latter by more than a few users' worth.
    """
    return int(
        (result["mem_available_before_mib"] - reserve_mib) // result[key]["pss_mib"]["median"]
    )


def _span(values: dict[str, float], digits: int = 1) -> str:
    return f"{values['median']:.{digits}f} ({values['min']:.{digits}f}-{values['max']:.{digits}f})"


def write_markdown(result: dict, path: Path) -> None:
    n = result["students"]
    idle, loaded = result["idle"], result["torch_loaded"]
    cap_idle, cap_loaded = _capacity(result, "idle"), _capacity(result, "torch_loaded")
    machine = (
        f"{result['cpus']} cores, {result['mem_total_mib'] / 1024:.1f} GiB memory, "
        f"Python {result['python']}"
    )
    rows = [
        (f"`class_setup.py create` for {n + 1} accounts", f"{result['class_setup_s']:.1f}"),
        ("hub start (process start to REST API answering)", f"{result['hub_start_s']:.1f}"),
        ("first user's first server start (request to ready)",
         f"{result['first_server_start_s']:.1f}"),
        ("first kernel start in it", f"{result['first_kernel_start_s']:.1f}"),
        (f"server start, median (min-max) over {n}", _span(result["server_start_s"])),
        ("kernel start, median (min-max)", _span(result["kernel_start_s"])),
        ("PAM login on the login page, median (min-max)", _span(result["login_s"], 2)),
        ("`import metalearn_lib, torch` in a kernel, median (min-max)",
         _span(result["import_metalearn_lib_s"])),
    ]  # fmt: skip
    times = "\n".join(f"| {what} | {value} |" for what, value in rows)
    memory = "\n".join(
        f"| {state} | {m['pss_mib']['median']:.0f} ({m['pss_mib']['min']:.0f}-"
        f"{m['pss_mib']['max']:.0f}) | {m['rss_mib']['median']:.0f} |"
        for state, m in [
            ("server + idle kernel", idle),
            ("the kernel after `import metalearn_lib, torch`", loaded),
        ]
    )
    text = f"""## A class on one server: how many students it holds

`classroom/capacity_benchmark.py`, run {result["date"]} as root on this machine ({machine}):
a class of {n} students and an instructor created by `classroom/class_setup.py`, the hub of
`jupyterhub_config.py` in its isolated mode (PAM, `LocalProcessSpawner`, every server as its
own account), each student's server started one after the other, with one kernel each. The
machine was shared with other work (load average {result["load_average_at_end"][0]:.1f} at the
end of the run), so the times are upper bounds.

| what | seconds |
|:---|---:|
{times}

Memory per student: all processes of the account (its JupyterLab server and its kernel), in
MiB. PSS (proportional set size) splits the pages that processes share (the Python
interpreter, torch's libraries) fairly among them, so PSS summed over users is what the
machine really spends; RSS counts shared pages in full for every user.

| state | PSS per user, median (min-max) | RSS per user, median |
|:---|---:|---:|
{memory}

The {n} idle servers with their idle kernels used {result["idle_cpu_s_per_30s_all_users"]:.2f} s
of CPU in 30 s, all together.

**How many this machine holds.** With {result["mem_available_before_mib"] / 1024:.1f} GiB
available before the hub started and 2 GiB kept back for the system, the hub and the proxy,
memory allows about **{cap_idle} students with an idle kernel each**, or about
**{cap_loaded} whose kernels have imported the course library and torch** (the realistic
number once a chapter runs, before any training, which adds its own tensors; this run
trained nothing). Memory is not the limit that bites first: the 2 cores are. Idle servers
cost almost no CPU, but a student who runs a chapter's training cell keeps one core busy
(one torch thread) for as long as it trains, so at most two students train at full speed at
the same moment on this machine, and every further one slows all of them down in proportion.
Size a server for a class by the number of students who train at the same time, one core
each; beyond one server, Kubernetes (docs/classroom.md, section 7).
"""
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    if args.students < 1:
        raise ValueError(f"--students must be at least 1, got {args.students}")
    if os.geteuid() != 0:
        print("capacity_benchmark.py must run as root (it creates accounts)", file=sys.stderr)
        return 2
    clashes = [
        line.split(":")[0]
        for line in Path("/etc/passwd").read_text().splitlines()
        if line.startswith(PREFIX)
    ]
    if clashes:
        print(f"accounts from an earlier run exist: {clashes}", file=sys.stderr)
        return 2
    # The modes that class_setup.py changes, put back below even if its `remove` fails.
    entries = [REPO, *REPO.iterdir()]
    entries += class_setup.closed_parents(REPO / ".venv" / "bin" / "python")
    entries += class_setup.closed_parents(REPO.parent)
    modes = {p: os.lstat(p).st_mode & 0o7777 for p in entries if not p.is_symlink()}
    base = Path(tempfile.mkdtemp(prefix="mamlt-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        result = measure(args.students, base)
    finally:
        for line in Path("/etc/passwd").read_text().splitlines():
            if line.startswith(PREFIX):
                name = line.split(":")[0]
                subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
                subprocess.run(["userdel", "--remove", name], capture_output=True)
        for group in GROUPS:
            subprocess.run(["groupdel", group], capture_output=True)
        subprocess.run(["rm", "-rf", str(base)])
        for path, mode in modes.items():
            if os.path.lexists(path):
                os.chmod(path, mode)
    result.update(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=os.cpu_count(),
        python=platform.python_version(),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "classroom.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, args.out / "classroom.md")
    print((args.out / "classroom.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
