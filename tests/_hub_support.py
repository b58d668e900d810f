"""Helpers for tests/test_jupyterhub.py: the proxy install, the hub process, a kernel call.

Kept out of the test file so the test reads as the story it checks: a hub
starts, two students log in, each gets a JupyterLab, everything stops.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Exact configurable-http-proxy release from the npm registry (needs Node.js >= 20).
#: docs/classroom.md quotes the same pin; a test checks they agree.
CHP_VERSION = "5.2.0"
CHP_MIN_NODE = 20
HUB_NODE = REPO / ".hub-node"
CHP_BIN = HUB_NODE / "node_modules" / ".bin" / "configurable-http-proxy"


def _unavailable(reason: str) -> None:
    """Skip, or fail when the environment says the hub must be tested (REQUIRE_HUB=1)."""
    if os.environ.get("REQUIRE_HUB") == "1":
        pytest.fail(f"REQUIRE_HUB=1 but the JupyterHub test cannot run: {reason}")
    pytest.skip(reason)


def _chp_version() -> str | None:
    if not CHP_BIN.exists():
        return None
    out = subprocess.run(
        [str(CHP_BIN), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    return out.stdout.strip() or None


def ensure_proxy() -> Path:
    """Return the pinned configurable-http-proxy, installing it into .hub-node/ if needed.

    Skips (or fails under ``REQUIRE_HUB=1``) with the reason when Node.js or
    npm is missing or too old, or the npm registry cannot be reached.
    """
    node = shutil.which("node")
    if node is None:
        _unavailable("Node.js is not installed (configurable-http-proxy runs on it)")
    raw = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.match(r"v(\d+)\.", raw.strip())
    if not match or int(match.group(1)) < CHP_MIN_NODE:
        _unavailable(
            f"configurable-http-proxy {CHP_VERSION} needs Node.js >= {CHP_MIN_NODE}, "
            f"found {raw.strip() or 'an unknown version'}"
        )
    if _chp_version() == CHP_VERSION:
        return CHP_BIN
    npm = shutil.which("npm")
    if npm is None:
        _unavailable(
            "npm is not installed, so configurable-http-proxy cannot be installed "
            f"(npm install --prefix .hub-node configurable-http-proxy@{CHP_VERSION})"
        )
    cmd = [npm, "install", "--prefix", str(HUB_NODE), "--no-audit", "--no-fund"]
    cmd += ["--no-save", "--no-package-lock", f"configurable-http-proxy@{CHP_VERSION}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 or _chp_version() != CHP_VERSION:
        _unavailable(
            f"npm could not install configurable-http-proxy@{CHP_VERSION}: "
            f"{(done.stderr or done.stdout)[-800:]}"
        )
    return CHP_BIN


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on the loopback interface."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def pids_mentioning(marker: str) -> list[int]:
    """PIDs of our processes whose command line or environment contains ``marker``.

    The hub, the proxy, every single-user server and every kernel the test
    starts carry the test's unique state folder in one of the two, so this
    finds exactly them (and nothing a colleague started).
    """
    found = []
    me = os.getpid()
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in blob and _alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def kill_all(pids: Iterable[int], grace: float = 10.0) -> list[int]:
    """SIGTERM each process group, wait up to ``grace`` s, SIGKILL what is left.

    Returns the PIDs that had to be killed with SIGKILL.
    """
    pids = [p for p in set(pids) if _alive(p)]
    for pid in pids:
        try:
            os.killpg(os.getpgid(pid), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    forced = [p for p in pids if _alive(p)]
    for pid in forced:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return forced


def log_tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def run_in_kernel(ws_url: str, token: str, code: str, timeout: float = 120.0) -> dict:
    """Execute ``code`` in a running kernel over its websocket; return stdout and status.

    Speaks the Jupyter messaging protocol directly (JSON messages on the
    ``/channels`` websocket of the Jupyter server REST API), the same way
    JupyterLab does.
    """
    import websocket  # websocket-client, a dependency of jupyter_server

    msg_id = uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": msg_id,
            "session": uuid.uuid4().hex,
            "username": "test",
            "msg_type": "execute_request",
            "version": "5.3",
            "date": "",
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "buffers": [],
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    }
    conn = websocket.create_connection(
        ws_url, header=[f"Authorization: token {token}"], timeout=timeout
    )
    stdout, stderr, status, idle = [], [], None, False
    deadline = time.monotonic() + timeout
    try:
        conn.send(json.dumps(request))
        while not (idle and status) and time.monotonic() < deadline:
            msg = json.loads(conn.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                (stdout if content["name"] == "stdout" else stderr).append(content["text"])
            elif kind == "error":
                stderr.append("\n".join(content.get("traceback", [])))
            elif kind == "execute_reply":
                status = content["status"]
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
    finally:
        conn.close()
    return {"stdout": "".join(stdout), "stderr": "".join(stderr), "status": status}


def hub_command() -> list[str]:
    """The hub as a classroom starts it: jupyterhub from the course environment."""
    return [
        str(Path(sys.executable).parent / "jupyterhub"),
        "-f",
        str(REPO / "jupyterhub_config.py"),
    ]
