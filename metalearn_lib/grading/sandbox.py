"""Run each submission's kernel in a bubblewrap sandbox during ``nbgrader autograde``.

The kernel that executes a submission sees:

* its own working copy of the submission folder (read-write, on a tmpfs of
  ``tmpfs_mb``; notebooks are copied with their test cells emptied, so hidden
  tests and keys stay outside), and a private home and ``/tmp`` (tmpfs);
* the course environment read-only: ``/usr``, a few files of ``/etc``, the
  Python installation, the ``.venv`` and the ``metalearn_lib`` package;
* nothing else: no course root (``solutions/``, ``gradebook.db``,
  ``submitted/``, ``autograded/``, ``feedback/``), no other student's files,
  no network (own network namespace; the grader talks to the kernel over
  unix sockets in a private folder bound into the sandbox, jupyter_client's
  ``ipc`` transport), no other process (own PID namespace).

It runs as an unprivileged user: when autograde runs as root, the kernel
drops to ``nobody`` (``setpriv``; its real uid outside the sandbox is 65534);
otherwise it keeps the instructor's own uid inside an unprivileged user
namespace, which must be allowed on the server. ``prlimit`` caps its address
space, CPU time, processes and file size.

Where bubblewrap cannot start, :class:`SandboxedExecute` refuses to grade and
names the fix. ``METALEARN_SANDBOX=off`` (or ``c.SandboxedExecute.sandbox =
False``) grades without it, for a trusted single-user setting, and writes a
warning into the grading log.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Int

__all__ = ["SandboxUnavailable", "SandboxedKernelManager", "sandbox_problem"]

NOBODY = 65534
_ETC = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/hosts",
)
FIX = (
    "Install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; it needs Linux). "
    "When autograde does not run as root, unprivileged user namespaces must be allowed "
    "(`sysctl kernel.unprivileged_userns_clone=1`; on Ubuntu 24.04 also "
    "`sysctl kernel.apparmor_restrict_unprivileged_userns=0`). Only for a trusted "
    "single-user setting: set METALEARN_SANDBOX=off to grade without the sandbox "
    "(see docs/instructor_guide.md)."
)


class SandboxUnavailable(RuntimeError):
    """bubblewrap cannot start a sandbox here."""


def _tool(name: str) -> str:
    """Absolute path of a system tool (the kernel's launch environment may lack /usr/bin).

    ``METALEARN_BWRAP`` names the bubblewrap program where it is not on PATH.
    """
    if name == "bwrap" and os.environ.get("METALEARN_BWRAP"):
        return shutil.which(os.environ["METALEARN_BWRAP"]) or "bwrap"
    return shutil.which(name) or shutil.which(name, path="/usr/bin:/bin:/usr/sbin") or name


def _library_folder() -> str:
    """The folder of the ``metalearn_lib`` package this process imported."""
    import metalearn_lib

    return str(Path(metalearn_lib.__file__).resolve().parent)


def _read_only_paths() -> list[str]:
    """The course environment: Python, the venv, the library (deduplicated, existing)."""
    paths = ["/usr", sys.base_prefix, sys.prefix, _library_folder()]
    paths += [p for p in _ETC if os.path.exists(p)]
    out: list[str] = []
    for path in sorted({str(Path(p).resolve()) for p in paths if p}, key=len):
        if not any(path == q or path.startswith(q + "/") for q in out):
            out.append(path)
    return out


def _parents(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def bwrap_command(box: Path, *, as_root: bool, tmpfs_mb: int) -> list[str]:
    """The bubblewrap command line (without the program to run)."""
    cmd = [_tool("bwrap"), "--die-with-parent", "--clearenv"]
    cmd += [
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]
    if not as_root:
        cmd += ["--unshare-user"]
    for link in ("/bin", "/lib", "/lib64", "/sbin"):
        if os.path.islink(link):
            cmd += ["--symlink", os.readlink(link), link]
    # Private tmpfs first: binds below may lie under /tmp (the sandbox folder itself).
    size = str(tmpfs_mb * 1024 * 1024)
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    cmd += ["--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
    cmd += ["--perms", "1777", "--size", size, "--tmpfs", "/home/student"]
    made = {"/", "/tmp", "/home", "/home/student", "/proc", "/dev"}
    mounts = [(p, p, "--ro-bind") for p in _read_only_paths()]
    mounts += [(str(box / "run"), str(box / "run"), "--bind")]
    mounts += [(str(box / "submission"), "/submission", "--ro-bind")]
    for source, target, how in mounts:
        for parent in _parents(target):
            if parent not in made:
                cmd += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        cmd += [how, source, target]
        made.add(target)
    env = {
        "HOME": "/home/student",
        "PATH": f"{sys.prefix}/bin:/usr/bin:/bin",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/mpl",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "NBGRADER_EXECUTION": "autograde",
        "LANG": "C.UTF-8",
        "JPY_PARENT_PID": "1",  # no parent poller (its pid is meaningless here), no banner
        # The kernel imports the very library copy the grader imported (and mounted), also
        # when the venv's editable install points at another checkout (a git worktree).
        "PYTHONPATH": str(Path(_library_folder()).parent),
    }
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    cmd += ["--chdir", "/home/student"]
    return cmd


def _limits(*, memory_mb: int, cpu_s: int, nproc: int, fsize_mb: int) -> list[str]:
    return [
        _tool("prlimit"),
        f"--as={memory_mb * 1024 * 1024}",
        f"--cpu={cpu_s}",
        f"--nproc={nproc}",
        f"--fsize={fsize_mb * 1024 * 1024}",
        "--core=0",
        "--",
    ]


def _tasks_of(uid: int) -> int:
    """Threads (what RLIMIT_NPROC counts) of all processes whose real uid is ``uid``."""
    count = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            status = (proc / "status").read_text()
            real = int(next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1])
            if real == uid:
                count += sum(1 for _ in (proc / "task").iterdir())
        except (OSError, StopIteration, ValueError):
            continue
    return count


def _inner(program: list[str], *, as_root: bool) -> list[str]:
    """Inside the sandbox: drop to nobody (as root), copy the submission, run ``program``."""
    drop = (
        [_tool("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        if as_root
        else []
    )
    script = (
        'cp -R /submission/. /home/student/work/ 2>/dev/null; cd /home/student/work && exec "$@"'
    )
    return [*drop, "/bin/sh", "-c", "mkdir -p /home/student/work && " + script, "sh", *program]


@lru_cache(maxsize=1)
def sandbox_problem() -> str:
    """ "" if a sandbox starts here, else why not (with the fix)."""
    if not sys.platform.startswith("linux"):
        return f"the grading sandbox needs Linux (this is {sys.platform}). {FIX}"
    if not os.path.isabs(_tool("bwrap")):
        return f"bubblewrap (bwrap) is not installed. {FIX}"
    for tool in ("prlimit", "setpriv") if os.geteuid() == 0 else ("prlimit",):
        if not os.path.isabs(_tool(tool)):
            return f"{tool} (util-linux) is not installed."
    box = Path(tempfile.mkdtemp(prefix="metalearn-sandbox-probe-"))
    try:
        _prepare_box(box, None)
        as_root = os.geteuid() == 0
        cmd = bwrap_command(box, as_root=as_root, tmpfs_mb=16) + ["--"]
        cmd += _inner([sys.executable, "-c", "import os; print(os.getuid())"], as_root=as_root)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            return f"bubblewrap could not start a sandbox ({result.stderr.strip()[:300]}). {FIX}"
        return ""
    except (OSError, subprocess.SubprocessError) as error:
        return f"bubblewrap could not start a sandbox ({error}). {FIX}"
    finally:
        shutil.rmtree(box, ignore_errors=True)


def _clean_notebook(source: Path, target: Path) -> None:
    """Copy a notebook with every autograder test cell emptied and no outputs."""
    try:
        nb = json.loads(source.read_text())
        for cell in nb.get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                cell["source"] = ""
            if "outputs" in cell:
                cell["outputs"] = []
        target.write_text(json.dumps(nb))
    except (OSError, ValueError, AttributeError):
        pass  # an unreadable notebook is simply not copied


def _prepare_box(box: Path, folder: Path | None) -> None:
    """``box/run`` (sockets, writable by the kernel) and ``box/submission`` (its files)."""
    box.chmod(0o755)
    (box / "run").mkdir()
    submission = box / "submission"
    submission.mkdir()
    if folder is not None and folder.is_dir():
        for item in folder.iterdir():
            if item.is_symlink():
                continue
            if item.suffix == ".ipynb":
                _clean_notebook(item, submission / item.name)
            elif item.is_file() and item.stat().st_size <= 50 * 1024 * 1024:
                shutil.copy(item, submission / item.name)
            elif item.is_dir() and item.name != ".ipynb_checkpoints":
                shutil.copytree(
                    item, submission / item.name, symlinks=False, ignore_dangling_symlinks=True
                )
    if os.geteuid() == 0:
        for path in (box / "run", submission, *submission.rglob("*")):
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
        for path in submission.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel inside bubblewrap (see the module docstring)."""

    memory_mb = Int(4096, help="Address-space limit of the kernel, MiB.").tag(config=True)
    cpu_seconds = Int(300, help="CPU-time limit of one kernel, seconds.").tag(config=True)
    max_processes = Int(64, help="Processes the kernel may run (as nobody).").tag(config=True)
    file_size_mb = Int(64, help="Largest file the kernel may write, MiB.").tag(config=True)
    tmpfs_mb = Int(256, help="Size of the kernel's private /tmp and home, MiB each.").tag(
        config=True
    )
    keep_box = Bool(False, help="Keep the sandbox folder after the kernel (debugging).").tag(
        config=True
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._box = Path(tempfile.mkdtemp(prefix="metalearn-sandbox-"))
        self._prepared = False
        self.transport = "ipc"
        self.ip = str(self._box / "run" / "kernel")
        self.connection_file = str(self._box / "run" / "kernel.json")

    async def _async_pre_start_kernel(self, **kw):
        if not self._prepared:
            folder = kw.get("cwd")
            _prepare_box(self._box, Path(folder) if folder else None)
            self._prepared = True
        kw["cwd"] = str(self._box)
        return await super()._async_pre_start_kernel(**kw)

    pre_start_kernel = _async_pre_start_kernel

    def write_connection_file(self, **kwargs) -> None:
        super().write_connection_file(**kwargs)
        if os.geteuid() == 0:  # the kernel runs as nobody and must read it
            os.chown(self.connection_file, NOBODY, NOBODY)

    def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
        program = super().format_kernel_cmd(extra_arguments)
        as_root = os.geteuid() == 0
        nproc = self.max_processes if as_root else _tasks_of(os.getuid()) + self.max_processes
        limits = _limits(
            memory_mb=self.memory_mb,
            cpu_s=self.cpu_seconds,
            nproc=nproc,
            fsize_mb=self.file_size_mb,
        )
        box = bwrap_command(self._box, as_root=as_root, tmpfs_mb=self.tmpfs_mb)
        return [*limits, *box, "--", *_inner(program, as_root=as_root)]

    async def _async_start_kernel(self, **kw) -> None:
        try:
            await super()._async_start_kernel(**kw)
        except BaseException:  # a kernel that never started leaves no sandbox folder behind
            shutil.rmtree(self._box, ignore_errors=True)
            raise

    start_kernel = _async_start_kernel

    async def _async_interrupt_kernel(self) -> None:
        # A signal from outside does not reach the kernel in its own PID namespace
        # (measured: a `while True: pass` cell ran on); ipykernel's interrupt_request,
        # on the control channel, makes the kernel signal itself.
        msg = self.session.msg("interrupt_request", content={})
        self._connect_control_socket()
        self.session.send(self._control_socket, msg)

    interrupt_kernel = _async_interrupt_kernel

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and not self.keep_box:
            shutil.rmtree(self._box, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources
