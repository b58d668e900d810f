"""The course on JupyterHub: the example jupyterhub_config.py, run for real.

A hub starts on free loopback ports with the repository's jupyterhub_config.py
and configurable-http-proxy from the npm registry. A student (alice) and an
instructor (ines) log in through the hub's REST API with the shared password;
each gets a single-user JupyterLab from the course environment, in which
``metalearn_lib`` imports in a kernel and the course notebooks are listed in
the user's own copy. Neither can reach the other's server; the formgrader
opens as a page of its own for the instructor and not at all for the
student; an assignment goes from the instructor's formgrader through the
exchange to the student's Lab and back; everything stops cleanly. Every
process the test starts is ended by PID (and process group) at the end,
whatever happens.

Without Node.js/npm the hub tests are skipped with the reason, unless
``REQUIRE_HUB=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _hub_support import (
    CHP_VERSION,
    REPO,
    _alive,
    ensure_proxy,
    free_ports,
    hub_command,
    kill_all,
    log_tail,
    pids_mentioning,
    run_in_kernel,
)
from traitlets.config import Config

PASSWORD = "maml-class-password"
STUDENT, INSTRUCTOR = "alice", "ines"
USERS = (STUDENT, INSTRUCTOR)
CONFIG = REPO / "jupyterhub_config.py"
COURSE_ID, QUIZ = "maml-course", "variants_quiz"


def _pinned(name: str) -> str:
    text = (REPO / "requirements.txt").read_text()
    match = re.search(rf"^{re.escape(name)}==(\S+)$", text, flags=re.M)
    assert match, f"requirements.txt must pin {name}=="
    return match.group(1)


# ---------------------------------------------------------------------------
# The config file alone (fast)
# ---------------------------------------------------------------------------


def _load_config(monkeypatch, tmp_path, **env) -> Config:
    base = {
        "COURSE_HUB_PASSWORD": PASSWORD,
        "COURSE_HUB_STATE": str(tmp_path / "state"),
        "COURSE_HUB_USERS": "",
        "COURSE_HUB_ADMINS": "",
    }
    for key, value in {**base, **env}.items():
        monkeypatch.setenv(key, value)
    config = Config()
    runpy.run_path(str(CONFIG), init_globals={"get_config": lambda: config})
    return config


def test_config_keeps_everything_on_loopback(monkeypatch, tmp_path):
    c = _load_config(
        monkeypatch,
        tmp_path,
        COURSE_HUB_PORT="18000",
        COURSE_HUB_USERS="alice, bob",
        COURSE_HUB_INSTRUCTORS="ines",
    )
    assert c.JupyterHub.bind_url == "http://127.0.0.1:18000"
    assert c.JupyterHub.hub_bind_url.startswith("http://127.0.0.1:")
    assert c.ConfigurableHTTPProxy.api_url.startswith("http://127.0.0.1:")
    assert c.Spawner.ip == "127.0.0.1"
    assert c.Spawner.default_url == "/lab/tree/course"
    assert c.Authenticator.allowed_users == {"alice", "bob", "ines"}
    assert c.Spawner.cmd == [str(REPO / ".venv" / "bin" / "jupyterhub-singleuser")]
    # Hub state lives in the state folder, not in tracked files.
    assert str(tmp_path / "state") in c.JupyterHub.db_url


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COURSE_HUB_PASSWORD": "short"}, "COURSE_HUB_PASSWORD"),
        ({"COURSE_HUB_PORT": "80a"}, "COURSE_HUB_PORT"),
        ({"COURSE_HUB_HUB_PORT": "70000"}, "COURSE_HUB_HUB_PORT"),
        ({"COURSE_VENV": "/nonexistent-venv"}, "COURSE_VENV"),
    ],
)
def test_config_rejects_bad_settings(monkeypatch, tmp_path, env, message):
    with pytest.raises(ValueError, match=message):
        _load_config(monkeypatch, tmp_path, **env)


def test_config_names_its_modes(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="COURSE_HUB_MODE must be one of workshop, isolated"):
        _load_config(monkeypatch, tmp_path, COURSE_HUB_MODE="classroom")
    # The default is the workshop mode: one shared password, one account for all servers.
    c = _load_config(monkeypatch, tmp_path, COURSE_HUB_MODE="")
    assert c.JupyterHub.authenticator_class == "shared-password"
    assert c.JupyterHub.spawner_class == "simple"


def _isolated_config(monkeypatch, tmp_path) -> Config:
    root = tmp_path / "class"
    root.mkdir()
    info = {
        "groups": {"students": "maml-students", "instructors": "maml-instructors"},
        "venv": str(REPO / ".venv"),
        "hub": str(root / "hub"),
        "exchange": str(root / "exchange"),
    }
    (root / "class.json").write_text(json.dumps(info))
    monkeypatch.delenv("COURSE_HUB_STATE", raising=False)
    monkeypatch.setenv("COURSE_HUB_MODE", "isolated")
    monkeypatch.setenv("COURSE_CLASS_ROOT", str(root))
    config = Config()
    runpy.run_path(str(CONFIG), init_globals={"get_config": lambda: config})
    return config


@pytest.mark.skipif(os.geteuid() != 0, reason="the isolated mode runs the hub as root")
def test_isolated_mode_uses_pam_and_one_account_per_server(monkeypatch, tmp_path):
    c = _isolated_config(monkeypatch, tmp_path)
    assert c.JupyterHub.authenticator_class == "pam"
    assert c.JupyterHub.spawner_class == "localprocess"
    assert c.PAMAuthenticator.allowed_groups == {"maml-students", "maml-instructors"}
    assert c.PAMAuthenticator.admin_groups == {"maml-instructors"}
    # No shared password, no --allow-root: every server runs as its own user.
    assert "user_password" not in c.SharedPasswordAuthenticator
    assert "args" not in c.Spawner
    assert "pre_spawn_hook" not in c.Spawner
    assert c.Spawner.ip == "127.0.0.1" and c.JupyterHub.bind_url.startswith("http://127.0.0.1:")
    state = tmp_path / "class" / "hub"
    assert str(state) in c.JupyterHub.db_url
    assert state.stat().st_mode & 0o777 == 0o700


def test_isolated_mode_needs_a_class(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_HUB_MODE", "isolated")
    monkeypatch.setenv("COURSE_CLASS_ROOT", str(tmp_path / "nowhere"))
    expected = "COURSE_CLASS_ROOT" if os.geteuid() == 0 else "run the hub as root"
    with pytest.raises(ValueError, match=expected):
        runpy.run_path(str(CONFIG), init_globals={"get_config": Config})


def test_docs_quote_the_pins():
    doc = (REPO / "docs" / "classroom.md").read_text()
    assert f"configurable-http-proxy@{CHP_VERSION}" in doc
    assert f"jupyterhub=={_pinned('jupyterhub')}" in doc
    assert f"CHP_VERSION := {CHP_VERSION}\n" in (REPO / "Makefile").read_text()


# ---------------------------------------------------------------------------
# A running hub with a student and an instructor (slow: see docs/classroom.md)
# ---------------------------------------------------------------------------


@dataclass
class Hub:
    url: str
    state: Path
    log: Path
    proc: subprocess.Popen
    version: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    pids: dict[str, dict[str, int]] = field(default_factory=dict)

    def api(self, method: str, path: str, user: str | None = None, **kwargs):
        import requests

        headers = {"Authorization": f"token {self.tokens[user]}"} if user else {}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)


def _wait(what: str, hub: Hub, check, timeout: float = 150.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.proc.poll() is not None:
            pytest.fail(
                f"the hub exited ({hub.proc.returncode}) while waiting for {what}:\n"
                + log_tail(hub.log)
            )
        result = check()
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n" + log_tail(hub.log))


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    import requests

    ensure_proxy()
    state = tmp_path_factory.mktemp("hub-state")
    port, hub_port, api_port = free_ports(3)
    env = dict(os.environ)
    env.update(
        COURSE_HUB_PASSWORD=PASSWORD,
        COURSE_HUB_USERS=",".join(USERS),
        COURSE_HUB_INSTRUCTORS=INSTRUCTOR,
        COURSE_HUB_ADMINS="",
        COURSE_HUB_STATE=str(state),
        COURSE_HUB_PORT=str(port),
        COURSE_HUB_HUB_PORT=str(hub_port),
        COURSE_HUB_API_PORT=str(api_port),
        PATH=f"{Path(hub_command()[0]).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    log = state / "hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            hub_command(),
            cwd=state,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    the_hub = Hub(url=f"http://127.0.0.1:{port}", state=state, log=log, proc=proc)
    try:

        def up():
            try:
                r = requests.get(the_hub.url + "/hub/api/", timeout=5)
            except requests.ConnectionError:
                return None
            return r.json() if r.status_code == 200 else None

        the_hub.version = _wait("the hub's REST API", the_hub, up, timeout=120)["version"]
        yield the_hub
    finally:
        # Whatever happened: end the hub, the proxy, both servers and their kernels.
        kill_all([proc.pid, *pids_mentioning(str(state))])
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_hub_runs_the_pinned_jupyterhub(hub):
    assert hub.version == _pinned("jupyterhub")


@pytest.mark.slow
def test_students_log_in_with_the_shared_password(hub):
    wrong = hub.api(
        "POST",
        "/hub/api/users/alice/tokens",
        json={"auth": {"username": "alice", "password": "not-the-password"}},
    )
    assert wrong.status_code == 403
    stranger = hub.api(
        "POST",
        "/hub/api/users/mallory/tokens",
        json={"auth": {"username": "mallory", "password": PASSWORD}},
    )
    assert stranger.status_code == 403, "a name that is not on the roster must not log in"
    for name in USERS:
        r = hub.api(
            "POST",
            f"/hub/api/users/{name}/tokens",
            json={
                "auth": {"username": name, "password": PASSWORD},
                "note": "test login",
                "expires_in": 900,
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["user"] == name
        hub.tokens[name] = r.json()["token"]


@pytest.mark.slow
def test_each_student_gets_a_jupyterlab(hub):
    assert set(hub.tokens) == set(USERS), "the login test must run first"
    for name in USERS:  # start both, then wait for both
        r = hub.api("POST", f"/hub/api/users/{name}/server", user=name)
        assert r.status_code in (201, 202), r.text

    def ready(name):
        model = hub.api("GET", f"/hub/api/users/{name}", user=name).json()
        server = model["servers"].get("")
        return server if server and server["ready"] else None

    for name in USERS:
        server = _wait(f"{name}'s server", hub, lambda name=name: ready(name))
        assert server["url"] == f"/user/{name}/"
        r = hub.api("GET", f"/user/{name}/api/status", user=name)
        assert r.status_code == 200, r.text


@pytest.mark.slow
def test_course_notebooks_are_listed_in_each_students_copy(hub):
    expected = sorted(p.name for p in (REPO / "course").glob("*.ipynb"))
    assert expected, "course/ holds no notebooks"
    for name in USERS:
        r = hub.api("GET", f"/user/{name}/api/contents/course", user=name)
        assert r.status_code == 200, r.text
        listed = sorted(item["name"] for item in r.json()["content"] if item["type"] == "notebook")
        assert listed == expected
        # Each student works on their own copy, in their own home folder.
        assert (hub.state / "homes" / name / "course" / expected[0]).is_file()


@pytest.mark.slow
def test_metalearn_lib_imports_in_each_students_kernel(hub):
    code = (
        "import json, os, sys\n"
        "import metalearn_lib, metalearn_lib.algorithms\n"
        "print(json.dumps({'lib': metalearn_lib.__file__, 'prefix': sys.prefix,\n"
        "    'home': os.environ['HOME'], 'user': os.environ.get('JUPYTERHUB_USER'),\n"
        "    'kernel': os.getpid(), 'server': os.getppid()}))\n"
    )

    for name in USERS:
        r = hub.api("POST", f"/user/{name}/api/kernels", user=name, json={"name": "python3"})
        assert r.status_code == 201, r.text
        kernel_id = r.json()["id"]
        ws = hub.url.replace("http://", "ws://") + f"/user/{name}/api/kernels/{kernel_id}/channels"
        result = run_in_kernel(ws, hub.tokens[name], code)
        assert result["status"] == "ok", result["stderr"]
        info = json.loads(result["stdout"])
        hub.pids[name] = {"kernel": info["kernel"], "server": info["server"]}
        assert Path(info["lib"]).resolve().parent == (REPO / "metalearn_lib").resolve()
        assert Path(info["prefix"]).resolve() == (REPO / ".venv").resolve()
        assert Path(info["home"]) == hub.state / "homes" / name
        assert info["user"] == name


@pytest.mark.slow
def test_students_cannot_reach_each_others_server(hub):
    r = hub.api("GET", "/user/ines/api/contents", user="alice", allow_redirects=False)
    assert r.status_code == 403
    r = hub.api(
        "POST",
        "/user/alice/api/kernels",
        user="ines",
        json={"name": "python3"},
        allow_redirects=False,
    )
    assert r.status_code == 403


@pytest.mark.slow
def test_formgrader_opens_in_its_own_tab_for_instructors_only(hub):
    # Since JupyterHub 4.1 single-user pages forbid being framed, so nbgrader's
    # formgrader panel inside Lab stays blank; the page itself works in a tab.
    r = hub.api("GET", f"/user/{INSTRUCTOR}/formgrader", user=INSTRUCTOR)
    assert r.status_code == 200
    assert r.url.endswith(f"/user/{INSTRUCTOR}/formgrader/manage_assignments")
    assert "<title>nbgrader formgrade" in r.text
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    # It sees the course: the assignments in the course folder's solutions/.
    r = hub.api("GET", f"/user/{INSTRUCTOR}/formgrader/api/assignments", user=INSTRUCTOR)
    assert r.status_code == 200, r.text
    names = {a["name"] for a in r.json()}
    assert names == {p.name for p in (REPO / "solutions").iterdir() if p.is_dir()}
    # Students do not get the formgrader at all: not the server side...
    r = hub.api("GET", f"/user/{STUDENT}/formgrader", user=STUDENT, allow_redirects=False)
    assert r.status_code == 404
    # ...and not the Lab side (JupyterLab's page config lists disabled extensions).
    for user, hidden in [(STUDENT, True), (INSTRUCTOR, False)]:
        r = hub.api("GET", f"/user/{user}/lab", user=user)
        assert r.status_code == 200, r.text
        page = re.search(r'<script id="jupyter-config-data"[^>]*>(.*?)</script>', r.text, re.S)
        disabled = json.loads(page[1]).get("disabledExtensions", [])
        assert ("@jupyter/nbgrader:formgrader" in disabled) is hidden, (user, disabled)


@pytest.mark.slow
def test_an_assignment_goes_round_through_the_hub(hub):
    # The instructor generates and releases from the formgrader; the student
    # fetches and submits from Lab's assignment list; the instructor collects.
    course = hub.state / "homes" / INSTRUCTOR / "maml-course-grading"
    api = f"/user/{INSTRUCTOR}/formgrader/api/assignment/{QUIZ}"
    for step in ("assign", "release"):
        r = hub.api("POST", f"{api}/{step}", user=INSTRUCTOR)
        assert r.status_code == 200 and r.json()["success"], (step, r.text)
    listing = f"/user/{STUDENT}/assignments"
    args = {"course_id": COURSE_ID, "assignment_id": QUIZ}
    r = hub.api("GET", listing, user=STUDENT, params={"course_id": COURSE_ID})
    assert r.status_code == 200 and r.json()["success"], r.text
    assert [(a["assignment_id"], a["status"]) for a in r.json()["value"]] == [(QUIZ, "released")]
    for action in ("fetch", "submit"):
        r = hub.api("POST", f"{listing}/{action}", user=STUDENT, data=args)
        assert r.status_code == 200 and r.json()["success"], (action, r.text)
    fetched = hub.state / "homes" / STUDENT / COURSE_ID / QUIZ / f"{QUIZ}.ipynb"
    assert fetched.is_file()
    assert "BEGIN SOLUTION" not in fetched.read_text()
    # nbgrader files the submission under the student's hub name.
    inbound = [p.name for p in (hub.state / "exchange" / COURSE_ID / "inbound").iterdir()]
    assert [name.split("+")[:2] for name in inbound] == [[STUDENT, QUIZ]]
    r = hub.api("POST", f"{api}/collect", user=INSTRUCTOR)
    assert r.status_code == 200 and r.json()["success"], r.text
    assert (course / "submitted" / STUDENT / QUIZ / f"{QUIZ}.ipynb").is_file()


@pytest.mark.slow
def test_everything_stops_cleanly(hub):
    assert set(hub.pids) == set(USERS), "the kernel test must run first"
    for name in USERS:
        r = hub.api("DELETE", f"/hub/api/users/{name}/server", user=name)
        assert r.status_code in (202, 204), r.text
    for name in USERS:
        _wait(
            f"{name}'s server to stop",
            hub,
            lambda name=name: (
                hub.api("GET", f"/hub/api/users/{name}", user=name).json()["servers"] == {}
            ),
        )
        for role, pid in hub.pids[name].items():
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _alive(pid), f"{name}'s {role} (pid {pid}) outlived its server"
    hub.proc.terminate()
    assert hub.proc.wait(timeout=60) == 0, log_tail(hub.log)
    deadline = time.monotonic() + 15
    while pids_mentioning(str(hub.state)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pids_mentioning(str(hub.state)) == [], "the proxy or a server outlived the hub"
