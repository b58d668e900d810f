"""A class on one server: one operating-system account per person, run for real.

``classroom/class_setup.py`` creates a throwaway class from a roster: an
instructor and two students with the prefix ``mamlt``, their groups, private
homes, the instructors-only nbgrader course root, the exchange and the
read-only course. A hub from ``jupyterhub_config.py`` in its isolated mode
(``COURSE_HUB_MODE=isolated``: PAM logins, ``LocalProcessSpawner``) starts as
root on loopback ports; each server runs as its own account. Through the
hub's API and each person's own kernel the tests check:

* logins go through PAM against those accounts (a wrong password and an
  account outside the class are refused); the instructors' group are admins;
* a student cannot reach another's server, the formgrader or the hub's
  admin API;
* the quiz goes round across accounts: the instructor releases, both students
  fetch and submit, the instructor collects, autogrades, generates and
  releases feedback, each student fetches their own feedback only, and the
  export has both rows;
* every forbidden read or listing gives PermissionError in a student's kernel;
* in Chromium a student logs in on the hub's login page and sees the quiz on
  the Assignments tab.

Everything the tests create (accounts, groups, homes, the class root, the
repository's modes) is removed or put back at the end, even on failure, and
every process of the test accounts is killed. Needs root (CI runs as root);
otherwise skipped, or failed under ``REQUIRE_HUB=1``.

The files for Kubernetes (``classroom/k8s/values.yaml``, ``classroom/Dockerfile``)
cannot run here: a fast test parses them and checks that the image installs
exactly ``requirements.txt``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from _exchange_support import quiz_key
from _hub_support import (
    REPO,
    _unavailable,
    ensure_proxy,
    free_ports,
    hub_command,
    kill_all,
    log_tail,
    pids_mentioning,
    run_in_kernel,
)

sys.path.insert(0, str(REPO / "classroom"))
import class_setup  # noqa: E402

INSTRUCTOR, ADA, BEN = "mamlt-ines", "mamlt-ada", "mamlt-ben"
STUDENTS = (ADA, BEN)
PEOPLE = (INSTRUCTOR, *STUDENTS)
OUTSIDER = "mamlt-out"  # a real account, not in the class
LATE = "mamlt-cy"  # joins the class when `create` runs again
GROUPS = ("mamlt-students", "mamlt-instructors")
COURSE_ID, QUIZ = "maml-course", "variants_quiz"
SETUP = REPO / "classroom" / "class_setup.py"
ROSTER = (
    "username,role,first_name,last_name,email\n"
    f"{INSTRUCTOR},instructor,Ines,Grader,ines@example.org\n"
    f"{ADA},student,Ada,Student,ada@example.org\n"
    f"{BEN},student,Ben,Student,ben@example.org\n"
)


# ---------------------------------------------------------------------------
# Fast checks: the roster, the refusals, the Kubernetes files
# ---------------------------------------------------------------------------


def test_roster_is_read_with_roles(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    people = class_setup.read_roster(roster)
    assert [(p.username, p.role) for p in people] == [
        (INSTRUCTOR, "instructor"),
        (ADA, "student"),
        (BEN, "student"),
    ]
    assert people[1].first_name == "Ada"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("username,role\nAda Smith,student\nines,instructor\n", "line 2: username 'Ada Smith'"),
        ("username,role\nada,teacher\nines,instructor\n", "line 2: role 'teacher'"),
        ("username,role\nada,student\nada,instructor\n", "line 3: username 'ada' appears twice"),
        ("username,role\nada,student\n", "names no instructor"),
        ("name,role\nada,student\n", "missing ['username']"),
        ("username,role\nada+x,student\nines,instructor\n", "line 2: username 'ada+x'"),
    ],
)
def test_roster_refuses_bad_lines(tmp_path, text, message):
    roster = tmp_path / "roster.csv"
    roster.write_text(text)
    with pytest.raises(class_setup.SetupError, match=re.escape(message)):
        class_setup.read_roster(roster)


def test_setup_refuses_a_run_that_is_not_root(tmp_path, monkeypatch, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    monkeypatch.setattr(class_setup.os, "geteuid", lambda: 1000)
    code = class_setup.main(["create", str(roster), "--root", str(tmp_path / "class")])
    assert code == 2
    err = capsys.readouterr().err
    assert "must run as root" in err and "Nothing was changed" in err
    assert not (tmp_path / "class").exists()


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    )
    return [
        (m[1].upper(), " ".join(m[2].split()))
        for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, flags=re.M)
    ]


def test_image_installs_exactly_the_pinned_requirements():
    steps = _dockerfile_instructions((REPO / "classroom" / "Dockerfile").read_text())
    copies = [args for kind, args in steps if kind == "COPY"]
    assert any(args.split()[0] == "requirements.txt" for args in copies), copies
    installs = [args for kind, args in steps if kind == "RUN" for args in re.split(r"&&", args)]
    pip = [cmd.strip() for cmd in installs if re.search(r"\bpip install\b", cmd)]
    # One install of the pinned file, and the course library itself without dependencies.
    from_file = [cmd for cmd in pip if "-r requirements.txt" in cmd]
    assert len(from_file) == 1, pip
    assert "--no-deps" in "".join(c for c in pip if c not in from_file) or len(pip) == 1
    for cmd in pip:
        words = [w for w in cmd.split() if not w.startswith("-") and "/" not in w]
        extra = [
            w for w in words[words.index("install") + 1 :] if w not in {".", "requirements.txt"}
        ]
        assert extra == [], f"the image installs something besides requirements.txt: {cmd}"
    # The same interpreter line as the course: Python 3.11.
    assert any(kind == "FROM" and "python:3.11" in args for kind, args in steps), steps


def test_zero_to_jupyterhub_values_parse_and_match_the_course():
    values = yaml.safe_load((REPO / "classroom" / "k8s" / "values.yaml").read_text())
    single = values["singleuser"]
    assert single["defaultUrl"] == "/lab/tree/course"
    assert single["storage"]["type"] == "dynamic"  # one volume per user
    mounts = {m["name"]: m for m in single["storage"]["extraVolumeMounts"]}
    volumes = {v["name"]: v for v in single["storage"]["extraVolumes"]}
    assert mounts["nbgrader-exchange"]["mountPath"] == "/srv/nbgrader/exchange"
    assert volumes["nbgrader-exchange"]["persistentVolumeClaim"]["claimName"]
    # The course root is mounted only in the instructors' profile.
    profiles = {p["slug"]: p for p in single["profileList"]}
    assert set(profiles) == {"student", "instructor"}
    assert "course-root" not in {m["name"] for m in single["storage"]["extraVolumeMounts"]}
    grading = profiles["instructor"]["kubespawner_override"]["volume_mounts"]
    assert any(m["name"] == "course-root" for m in grading)
    # The hub keeps students off the instructor profile.
    assert "instructor" in values["hub"]["extraConfig"]["profiles"]
    claims = [
        doc
        for doc in yaml.safe_load_all((REPO / "classroom" / "k8s" / "storage.yaml").read_text())
        if doc
    ]
    modes = {doc["metadata"]["name"]: doc["spec"]["accessModes"] for doc in claims}
    assert modes[volumes["nbgrader-exchange"]["persistentVolumeClaim"]["claimName"]] == [
        "ReadWriteMany"
    ]


# ---------------------------------------------------------------------------
# A class with real accounts (root, slow)
# ---------------------------------------------------------------------------


def _sh(*cmd: str, check: bool = True, stdin: str | None = None):
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=check)


def _account_exists(name: str) -> bool:
    return _sh("getent", "passwd", name, check=False).returncode == 0


def _repo_modes() -> dict[str, int]:
    paths = [REPO, *REPO.iterdir()]
    return {str(p): stat.S_IMODE(p.lstat().st_mode) for p in paths if not p.is_symlink()}


@dataclass
class Class:
    base: Path
    root: Path
    info: dict
    passwords: dict[str, str]

    def home(self, name: str) -> Path:
        return self.base / "home" / name


def _remove_everything(base: Path, modes: dict[str, int]) -> None:
    """Belt and braces after ``class_setup.py remove``: nothing of the test may remain."""
    for name in (*PEOPLE, OUTSIDER, LATE):
        _sh("pkill", "-KILL", "-u", name, check=False)
    for name in (*PEOPLE, OUTSIDER, LATE):
        if _account_exists(name):
            _sh("userdel", "--remove", name, check=False)
    for group in (*GROUPS, *PEOPLE, OUTSIDER, LATE):
        if _sh("getent", "group", group, check=False).returncode == 0:
            _sh("groupdel", group, check=False)
    for path, mode in modes.items():
        if os.path.lexists(path):
            os.chmod(path, mode)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def klass():
    if os.geteuid() != 0:
        _unavailable("the classroom tests create OS accounts: they need root")
    leftovers = [n for n in (*PEOPLE, OUTSIDER, LATE) if _account_exists(n)]
    if leftovers:
        pytest.fail(f"accounts from an earlier run exist: {leftovers}; remove them (userdel -r)")
    modes = _repo_modes()
    venv_python = REPO / ".venv" / "bin" / "python"
    for path in [
        *class_setup.closed_parents(venv_python),
        *class_setup.closed_parents(REPO.parent),
    ]:
        modes[str(path)] = stat.S_IMODE(path.stat().st_mode)
    # Not under pytest's tmp folder: that is 0700, and every account must reach the homes.
    # Nor under /tmp: the grading sandbox hides it. /var/tmp is the class's /srv here.
    base = Path(tempfile.mkdtemp(prefix="mamlt-class-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        (base / "roster.csv").write_text(ROSTER)
        done = _sh(
            sys.executable, str(SETUP), "create", str(base / "roster.csv"),
            "--root", str(base / "class"), "--home-base", str(base / "home"),
            "--students-group", GROUPS[0], "--instructors-group", GROUPS[1],
            # CI's Python may come from pyenv under /root: let the accounts run it.
            "--open-parents", check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        root = base / "class"
        lines = (root / "passwords.txt").read_text().split()
        passwords = dict(line.split(":", 1) for line in lines)
        # An account outside the class, with a password that PAM accepts.
        _sh("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", OUTSIDER)
        _sh("chpasswd", stdin=f"{OUTSIDER}:outsider-password-1\n")
        info = json.loads((root / "class.json").read_text())
        yield Class(base=base, root=root, info=info, passwords=passwords)
    finally:
        removed = _sh(
            sys.executable, str(SETUP), "remove", "--root", str(base / "class"), check=False
        )
        left = [n for n in PEOPLE if _account_exists(n)]
        _remove_everything(base, modes)
        assert removed.returncode == 0 and not left, f"remove left {left}: {removed.stderr}"
        assert not any(_account_exists(n) for n in (*PEOPLE, OUTSIDER, LATE))
        now = {p: stat.S_IMODE(os.lstat(p).st_mode) for p in modes if os.path.lexists(p)}
        assert now == {p: m for p, m in modes.items() if p in now}, "modes were not put back"


def test_setup_refuses_a_bad_roster_line_and_changes_nothing(tmp_path):
    if os.geteuid() != 0:
        _unavailable("needs root")
    tmp_path.chmod(0o755)
    roster = tmp_path / "roster.csv"
    roster.write_text(f"username,role\n{ADA},student\n{INSTRUCTOR},teacher\n")
    before = _repo_modes()
    done = _sh(
        sys.executable, str(SETUP), "create", str(roster), "--root", str(tmp_path / "class"),
        "--students-group", GROUPS[0], "--instructors-group", GROUPS[1], check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "line 3: role 'teacher'" in done.stderr and "Nothing was changed" in done.stderr
    assert not _account_exists(ADA)
    assert _sh("getent", "group", GROUPS[0], check=False).returncode != 0
    assert not (tmp_path / "class").exists()
    after = _repo_modes()
    assert {p: after.get(p) for p in before} == before


def test_setup_refuses_an_interpreter_other_accounts_cannot_run(tmp_path):
    if os.geteuid() != 0:
        _unavailable("needs root")
    closed = class_setup.closed_parents(REPO / ".venv" / "bin" / "python")
    if not closed:
        pytest.skip("the course environment's Python is open to every account here")
    tmp_path.chmod(0o755)
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    done = _sh(
        sys.executable, str(SETUP), "create", str(roster), "--root", str(tmp_path / "class"),
        "--students-group", GROUPS[0], "--instructors-group", GROUPS[1], check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"other accounts cannot enter {closed[0]}" in done.stderr
    assert "--open-parents" in done.stderr and "Nothing was changed" in done.stderr
    assert not _account_exists(INSTRUCTOR) and not (tmp_path / "class").exists()


@dataclass
class Hub:
    url: str
    proc: subprocess.Popen
    log: Path
    klass: Class
    tokens: dict[str, str] = field(default_factory=dict)
    kernels: dict[str, str] = field(default_factory=dict)

    def api(self, method: str, path: str, user: str | None = None, **kwargs):
        import requests

        headers = {"Authorization": f"token {self.tokens[user]}"} if user else {}
        kwargs.setdefault("allow_redirects", False)
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def wait(self, what: str, check, timeout: float = 150.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the hub exited while waiting for {what}:\n{log_tail(self.log)}")
            result = check()
            if result:
                return result
            time.sleep(0.5)
        pytest.fail(f"timed out waiting for {what}:\n{log_tail(self.log)}")

    def run(self, name: str, code: str, timeout: float = 300.0) -> str:
        """Run ``code`` in ``name``'s own kernel (started on first use); return its stdout."""
        if name not in self.kernels:
            r = self.api("POST", f"/user/{name}/api/kernels", user=name, json={"name": "python3"})
            assert r.status_code == 201, r.text
            self.kernels[name] = r.json()["id"]
        ws = self.url.replace("http://", "ws://") + (
            f"/user/{name}/api/kernels/{self.kernels[name]}/channels"
        )
        result = run_in_kernel(ws, self.tokens[name], code, timeout=timeout)
        assert result["status"] == "ok", f"{name}: {result['stderr']}"
        return result["stdout"]


def form_login(url: str, name: str, password: str):
    """Log in on the hub's login page, as a browser does; return (status, session)."""
    import requests

    session = requests.Session()
    session.get(f"{url}/hub/login", timeout=30)
    r = session.post(
        f"{url}/hub/login",
        data={"username": name, "password": password, "_xsrf": session.cookies.get("_xsrf")},
        allow_redirects=False,
        timeout=60,
    )
    return r.status_code, session


@pytest.fixture(scope="module")
def hub(klass):
    import requests

    ensure_proxy()
    port, hub_port, api_port = free_ports(3)
    env = dict(os.environ)
    env.update(
        COURSE_HUB_MODE="isolated",
        COURSE_CLASS_ROOT=str(klass.root),
        COURSE_HUB_PORT=str(port),
        COURSE_HUB_HUB_PORT=str(hub_port),
        COURSE_HUB_API_PORT=str(api_port),
    )
    for var in ("COURSE_HUB_STATE", "COURSE_VENV", "COURSE_EXCHANGE"):
        env.pop(var, None)
    log = klass.base / "hub.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            hub_command(), cwd=klass.root / "hub", env=env, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    the_hub = Hub(url=f"http://127.0.0.1:{port}", proc=proc, log=log, klass=klass)
    try:

        def up():
            try:
                return requests.get(the_hub.url + "/hub/api/", timeout=5).status_code == 200
            except requests.ConnectionError:
                return False

        the_hub.wait("the hub's REST API", up, timeout=120)
        print(f"hub up in {time.monotonic() - started:.1f} s")
        yield the_hub
    finally:
        kill_all([proc.pid, *pids_mentioning(str(klass.root))])
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_logins_go_through_pam_and_instructors_are_admins(hub):
    password = hub.klass.passwords
    status, _ = form_login(hub.url, ADA, password[ADA] + "x")
    assert status == 403, "a wrong password must not log in"
    status, _ = form_login(hub.url, OUTSIDER, "outsider-password-1")
    assert status == 403, "an account outside the class's groups must not log in"
    for name in PEOPLE:
        status, session = form_login(hub.url, name, password[name])
        assert status == 302, f"{name} could not log in with their own password"
        assert "jupyterhub-session-id" in session.cookies or session.cookies
        r = hub.api(
            "POST",
            f"/hub/api/users/{name}/tokens",
            json={"auth": {"username": name, "password": password[name]}, "note": "test"},
        )
        assert r.status_code == 201, r.text
        hub.tokens[name] = r.json()["token"]
    for name in PEOPLE:
        model = hub.api("GET", f"/hub/api/users/{name}", user=name).json()
        assert model["admin"] is (name == INSTRUCTOR)


@pytest.mark.slow
def test_each_server_runs_as_its_own_account_on_loopback(hub):
    for name in PEOPLE:
        r = hub.api("POST", f"/hub/api/users/{name}/server", user=name)
        assert r.status_code in (201, 202), r.text
    for name in PEOPLE:

        def ready(name=name):
            server = hub.api("GET", f"/hub/api/users/{name}", user=name).json()["servers"].get("")
            return server if server and server["ready"] else None

        hub.wait(f"{name}'s server", ready)
    code = (
        "import json, os, pwd, sys, metalearn_lib\n"
        "print(json.dumps({'user': pwd.getpwuid(os.getuid()).pw_name, 'home': os.environ['HOME'],"
        " 'lib': metalearn_lib.__file__, 'uid': os.getuid()}))\n"
    )
    uids = set()
    for name in PEOPLE:
        info = json.loads(hub.run(name, code))
        assert info["user"] == name
        assert info["home"] == str(hub.klass.home(name))
        assert Path(info["lib"]).parent == REPO / "metalearn_lib"
        uids.add(info["uid"])
        assert stat.S_IMODE(hub.klass.home(name).stat().st_mode) == 0o700
    # Every socket that the test accounts listen on is on 127.0.0.1.
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and int(parts[7]) in uids:  # state LISTEN, owner uid
                listening.append(parts[1].split(":")[0])
    assert listening, "no listening socket found for the users' servers and kernels"
    assert set(listening) == {"0100007F"}, listening


@pytest.mark.slow
def test_a_student_reaches_neither_another_server_nor_grading_nor_the_admin_api(hub):
    assert hub.api("GET", f"/user/{BEN}/api/contents", user=ADA).status_code == 403
    r = hub.api("POST", f"/user/{BEN}/api/kernels", user=ADA, json={"name": "python3"})
    assert r.status_code == 403
    assert hub.api("GET", f"/user/{INSTRUCTOR}/formgrader", user=ADA).status_code == 403
    # A student's own server has no formgrader at all.
    assert hub.api("GET", f"/user/{ADA}/formgrader", user=ADA).status_code == 404
    # The hub's admin API: listing, reading, starting or deleting other users.
    assert hub.api("GET", "/hub/api/users", user=ADA).status_code == 403
    assert hub.api("GET", f"/hub/api/users/{BEN}", user=ADA).status_code in (403, 404)
    assert hub.api("POST", f"/hub/api/users/{BEN}/server", user=ADA).status_code in (403, 404)
    assert hub.api("DELETE", f"/hub/api/users/{BEN}", user=ADA).status_code in (403, 404)
    assert hub.api("POST", "/hub/api/users", user=ADA, json={"usernames": ["x"]}).status_code == 403
    # The instructor's formgrader works, on the course root of the class.
    r = hub.api("GET", f"/user/{INSTRUCTOR}/formgrader/api/assignments", user=INSTRUCTOR)
    assert r.status_code == 200, r.text
    assert QUIZ in {a["name"] for a in r.json()}


# Runs a list of nbgrader commands (COMMANDS) one after the other in one fresh
# process, the way tests/_exchange_support.py does in the test process: one
# interpreter start and one import of nbgrader instead of one per command
# (about 3 s of CPU each on this machine).
NBGRADER_BATCH = """
import io, json, logging, sys
from jupyter_core.application import NoStart
from nbgrader.apps import NbGraderApp
logs = []
for args in json.loads(sys.argv[1]):
    log, app, code = io.StringIO(), NbGraderApp.instance(), 0
    try:
        app.initialize(list(args))
        app.init_logging(logging.StreamHandler, [log], color=False, subapps=True)
        app.start()
    except NoStart:
        code = 0
    except SystemExit as exit_:
        code = exit_.code or 0
    finally:
        app.reset()
        NbGraderApp.clear_instance()
    logs.append([args, code, log.getvalue()[-4000:]])
    if code:
        break
print(json.dumps(logs))
"""


def _nbgrader(hub: Hub, name: str, folder: str, *commands: list[str]) -> list[str]:
    """Run nbgrader commands from ``name``'s own kernel, in ``~/folder``; return their logs.

    The kernel starts one process (as its account, with its environment and
    nbgrader configuration) that runs the commands in order and stops at the
    first failure.
    """
    code = (
        "import json, os, subprocess, sys\n"
        f"batch = [sys.executable, '-c', {NBGRADER_BATCH!r}, {json.dumps(commands)!r}]\n"
        "p = subprocess.run(batch,\n"
        f"    cwd=os.path.expanduser({('~/' + folder)!r}), capture_output=True, text=True)\n"
        "print(json.dumps([p.returncode, p.stdout, p.stderr[-4000:]]))\n"
    )
    returncode, stdout, stderr = json.loads(hub.run(name, code))
    assert returncode == 0 and stdout.strip(), f"{name}: nbgrader batch failed\n{stderr}"
    logs = json.loads(stdout.strip().splitlines()[-1])
    assert len(logs) == len(commands), f"{name}: stopped after {logs[-1][0]}\n{logs[-1][2]}"
    for args, returncode, text in logs:
        assert returncode == 0, f"{name}: nbgrader {' '.join(args)} exited {returncode}\n{text}"
    return [text for _, _, text in logs]


GRADING = "maml-course-grading"


@pytest.mark.slow
def test_the_instructor_releases_the_quiz(hub):
    _nbgrader(
        hub,
        INSTRUCTOR,
        GRADING,
        ["db", "student", "import", "roster.csv"],
        ["generate_assignment", QUIZ, "--force"],
        ["release_assignment", QUIZ],
    )
    outbound = hub.klass.root / "exchange" / COURSE_ID / "outbound" / QUIZ
    assert (outbound / f"{QUIZ}.ipynb").is_file()


@pytest.mark.slow
def test_a_student_logs_in_in_chromium_and_sees_the_quiz(hub):
    from conftest import CHROMIUM, CHROMIUM_FLAGS, browser_or_skip

    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(90_000)
            page.goto(f"{hub.url}/hub/login")
            page.fill("#username_input", BEN)
            page.fill("#password_input", hub.klass.passwords[BEN])
            page.click("#login_submit")
            page.wait_for_url(re.compile(rf"/user/{BEN}/lab"))
            page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
            page.get_by_role("menuitem", name="Assignment List").click()
            released = page.locator("#released_assignments_list")
            released.get_by_text(QUIZ).first.wait_for()
            assert COURSE_ID in released.inner_text()
            artifacts = REPO / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "classroom-assignment-list.png"))
        finally:
            browser.close()


def _answer_code(name: str, source: str) -> str:
    """Code for a student's kernel: put ``source`` into answer_1 of their fetched quiz."""
    return (
        "import nbformat, os\n"
        f"path = os.path.expanduser('~/{COURSE_ID}/{QUIZ}/{QUIZ}.ipynb')\n"
        "nb = nbformat.read(path, as_version=4)\n"
        "[cell] = [c for c in nb.cells\n"
        "          if c.metadata.get('nbgrader', {}).get('grade_id') == 'answer_1']\n"
        f"cell.source = {source!r}\n"
        "nbformat.write(nb, path)\n"
    )


@pytest.mark.slow
def test_the_quiz_goes_round_across_accounts(hub):
    key, letters = quiz_key(REPO / "solutions" / QUIZ / f"{QUIZ}.ipynb")[1]
    answers = {
        ADA: sorted(key),  # right: full points for question 1
        BEN: sorted(set(letters) - key),  # every letter wrong: no points
    }
    for name in STUDENTS:
        _nbgrader(hub, name, "", ["fetch_assignment", QUIZ])
        letters_set = "{" + ", ".join(repr(x) for x in answers[name]) + "}"
        hub.run(name, _answer_code(name, f"# answered by {name}\nanswer_1 = {letters_set}"))
        _nbgrader(hub, name, "", ["submit", QUIZ])
    inbound = hub.klass.root / "exchange" / COURSE_ID / "inbound"
    assert sorted(p.name.split("+")[0] for p in inbound.iterdir()) == sorted(STUDENTS)
    _nbgrader(
        hub,
        INSTRUCTOR,
        GRADING,
        ["collect", QUIZ],
        ["autograde", QUIZ],
        ["generate_feedback", QUIZ],
        ["release_feedback", QUIZ],
        ["export", "--to", "grades.csv"],
    )
    for name in STUDENTS:
        _nbgrader(hub, name, "", ["fetch_feedback", QUIZ])
        code = (
            "import glob, json, os\n"
            f"pattern = os.path.expanduser('~/{COURSE_ID}/{QUIZ}/feedback/*/{QUIZ}.html')\n"
            "print(json.dumps([open(p).read() for p in glob.glob(pattern)]))\n"
        )
        pages = json.loads(hub.run(name, code))
        assert len(pages) == 1, f"{name} fetched {len(pages)} feedback pages"
        other = next(s for s in STUDENTS if s != name)
        assert f"answered by {name}" in pages[0]
        assert f"answered by {other}" not in pages[0]
    grades = hub.run(
        INSTRUCTOR, f"print(open('{hub.klass.home(INSTRUCTOR)}/{GRADING}/grades.csv').read())"
    )
    rows = {row["student_id"]: row for row in csv.DictReader(io.StringIO(grades))}
    assert set(rows) == set(STUDENTS), rows
    assert float(rows[ADA]["raw_score"]) > 0.0
    assert float(rows[BEN]["raw_score"]) == 0.0


FORBIDDEN = r"""
import json, os, sqlite3
def attempt(action, path):
    try:
        if action == "list":
            os.listdir(path)
        elif action == "read":
            open(path, "rb").read(1)
        elif action == "write":
            open(path, "a").close()
        return "allowed"
    except PermissionError:
        return "PermissionError"
    except Exception as err:
        return type(err).__name__
print(json.dumps({f"{a} {p}": attempt(a, p) for a, p in CHECKS}))
"""


@pytest.mark.slow
def test_a_student_cannot_read_what_is_not_theirs(hub):
    k = hub.klass
    grading, exchange = Path(k.info["grading"]), k.root / "exchange" / COURSE_ID
    other = k.home(BEN)
    site = next(Path(k.info["venv"]).glob("lib/python3*/site-packages"))
    forbidden = [
        ("list", other),
        ("read", other / "course" / "01_few_shot_tasks.ipynb"),
        ("read", other / COURSE_ID / QUIZ / f"{QUIZ}.ipynb"),
        ("list", exchange / "inbound"),
        ("list", exchange / "feedback"),
        ("list", grading),
        ("read", grading / "solutions" / QUIZ / f"{QUIZ}.ipynb"),
        ("read", grading / "gradebook.db"),
        ("list", grading / "autograded" / BEN / QUIZ),
        ("read", grading / "autograded" / BEN / QUIZ / f"{QUIZ}.ipynb"),
        ("read", grading / "feedback" / BEN / QUIZ / f"{QUIZ}.html"),
        ("read", grading / "submitted" / BEN / QUIZ / f"{QUIZ}.ipynb"),
        ("read", k.home(INSTRUCTOR) / GRADING / "solutions" / QUIZ / f"{QUIZ}.ipynb"),
        # The repository behind the environment: its solutions and its history.
        ("read", REPO / "solutions" / QUIZ / f"{QUIZ}.ipynb"),
        ("list", REPO / ".git"),
        ("list", REPO),
        # The shared environment and the course: readable, not writable.
        ("write", site / "mamlt-planted.pth"),
        ("write", REPO / "metalearn_lib" / "__init__.py"),
        ("write", Path(k.info["venv"]) / "bin" / "mamlt-planted"),
        ("write", Path(k.info["course"]) / "01_few_shot_tasks.ipynb"),
        ("write", exchange / "outbound" / QUIZ / f"{QUIZ}.ipynb"),
    ]
    allowed = [
        ("read", Path(k.info["course"]) / "01_few_shot_tasks.ipynb"),
        ("read", exchange / "outbound" / QUIZ / f"{QUIZ}.ipynb"),
        ("read", REPO / "metalearn_lib" / "__init__.py"),
        ("write", k.home(ADA) / "course" / "01_few_shot_tasks.ipynb"),
    ]
    # The instructor-only files exist, so a refusal is about permissions, not absence.
    for _, path in forbidden[5:13]:
        assert path.exists(), path
    checks = [(a, str(p)) for a, p in forbidden + allowed]
    results = json.loads(hub.run(ADA, f"CHECKS = {checks!r}\n" + FORBIDDEN))
    for action, path in forbidden:
        assert results[f"{action} {path}"] == "PermissionError", (action, path, results)
    for action, path in allowed:
        assert results[f"{action} {path}"] == "allowed", (action, path, results)
    # The exchange has nbgrader's own modes.
    assert stat.S_IMODE((exchange / "inbound").stat().st_mode) == 0o2733
    assert stat.S_IMODE((exchange / "feedback").stat().st_mode) == 0o711
    assert stat.S_IMODE((exchange / "outbound").stat().st_mode) == 0o755
    assert stat.S_IMODE(grading.stat().st_mode) == 0o2770


@pytest.mark.slow
def test_create_again_adds_people_and_keeps_the_class_as_it_was(hub):
    k = hub.klass
    gradebook = Path(k.info["grading"]) / "gradebook.db"
    before = gradebook.stat().st_mtime_ns
    roster = k.base / "roster.csv"
    late = LATE
    roster.write_text(ROSTER + f"{late},student,Cy,Student,cy@example.org\n")
    try:
        done = _sh(
            sys.executable, str(SETUP), "create", str(roster), "--root", str(k.root),
            "--home-base", str(k.base / "home"), "--students-group", GROUPS[0],
            "--instructors-group", GROUPS[1], "--open-parents", check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "1 new accounts" in done.stdout
        passwords = dict(
            line.split(":", 1) for line in (k.root / "passwords.txt").read_text().split()
        )
        assert {n: passwords[n] for n in PEOPLE} == k.passwords  # the others keep theirs
        assert late in json.loads((k.root / "class.json").read_text())["accounts"]
        assert (k.home(late) / ".jupyter" / "nbgrader_config.py").is_file()
        assert gradebook.stat().st_mtime_ns == before  # the instructors' files untouched
    finally:
        _sh("pkill", "-KILL", "-u", late, check=False)
        _sh("userdel", "--remove", late, check=False)
        _sh("groupdel", late, check=False)
