"""JupyterHub for a class taking the MAML course (an example that the tests run).

Start it from the repository root, with the course environment built
(``make venv``) and the proxy installed from the npm registry
(see docs/classroom.md)::

    COURSE_HUB_PASSWORD='choose-a-password' COURSE_HUB_USERS=alice,bob \\
        .venv/bin/jupyterhub -f jupyterhub_config.py

then open http://127.0.0.1:8000 and log in as ``alice`` with that password.

What this file sets up
----------------------
* **Login**: one shared password for every student (JupyterHub's
  ``SharedPasswordAuthenticator``, the successor of ``DummyAuthenticator``'s
  password since JupyterHub 5.3). Fine for a workshop on a trusted network;
  a real class uses its institution's login (docs/classroom.md).
* **Servers**: each student gets their own JupyterLab, started from this
  repository's ``.venv`` (the same pinned requirements as the course), in
  their own home folder ``$COURSE_HUB_STATE/homes/<name>``. On first start the
  course notebooks are copied there, so each student edits their own copy;
  later starts never overwrite a student's work. Lab opens on ``course/``.
* **nbgrader**: everyone's ``~/.jupyter/nbgrader_config.py`` points at one shared
  exchange folder; students fetch and submit from Lab's Assignments tab,
  instructors (``COURSE_HUB_INSTRUCTORS``) grade in their formgrader.
* **Network**: hub, proxy and single-user servers listen on 127.0.0.1 only.
  Put a TLS-terminating reverse proxy in front to open it to a class.

The default (workshop) mode uses ``SimpleLocalProcessSpawner``: all servers
run as the operating-system user who started the hub, with a separate HOME
each. It needs no system accounts, so it runs on a laptop, in CI and in the
tests, but it does not isolate students from each other. For a real class use
the isolated mode below (one account per person), or containers on Kubernetes
(docs/classroom.md, sections 6 and 7).

Settings (environment variables)
--------------------------------
COURSE_HUB_PASSWORD      shared student password, at least 8 characters (required)
COURSE_HUB_USERS         comma-separated roster; empty: anyone with the password
COURSE_HUB_ADMINS        comma-separated hub admins (instructors), optional
COURSE_HUB_ADMIN_PASSWORD  their password, at least 32 characters
COURSE_HUB_PORT          public port of the proxy (default 8000)
COURSE_HUB_HUB_PORT      port of the hub itself (default 8081)
COURSE_HUB_API_PORT      port of the proxy's REST API (default 8001)
COURSE_HUB_STATE         folder for the hub database, secrets and student homes
                         (default: .hub-state/ in the repository, git-ignored)
COURSE_VENV              the course environment (default: .venv in the repository)
COURSE_HUB_INSTRUCTORS   comma-separated users who grade: they get the formgrader
                         (each gets the grading folder ~/maml-course-grading: a copy
                         of nbgrader_config.py and solutions/, their nbgrader course root)
COURSE_EXCHANGE          the nbgrader exchange folder, shared by everyone
                         (default: $COURSE_HUB_STATE/exchange)
COURSE_HUB_MODE          ``workshop`` (default: everything above) or ``isolated``

The isolated mode: one operating-system account per person
------------------------------------------------------------
``COURSE_HUB_MODE=isolated`` is for a real class on one server. Create the class
first, as root, from a roster (``classroom/class_setup.py create ROSTER``, or
``make class ROSTER=...``), then start the hub as root::

    COURSE_HUB_MODE=isolated COURSE_CLASS_ROOT=/srv/maml-class \\
        .venv/bin/jupyterhub -f jupyterhub_config.py

* **Login**: PAM (``PAMAuthenticator``) against the class's own accounts;
  only members of the class's students' and instructors' groups may log in,
  and the instructors' group are the hub's admins.
* **Servers**: ``LocalProcessSpawner``: the hub runs as root and starts each
  server as its user, in their private home (0700).
* **Files**: the class root (``class.json`` written by class_setup.py) gives the
  exchange, the instructors-only course root and the environment; every home
  was prepared by class_setup.py, so the hub writes nothing into homes.

It reads COURSE_CLASS_ROOT (default /srv/maml-class) and the port variables
above; COURSE_HUB_STATE defaults to ``$COURSE_CLASS_ROOT/hub`` (root only).
The password, roster, instructor and exchange variables do not apply: the
roster given to class_setup.py is the class.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

REPO = Path(__file__).resolve().parent
MODES = ("workshop", "isolated")
MODE = os.environ.get("COURSE_HUB_MODE", "").strip() or "workshop"
if MODE not in MODES:
    raise ValueError(f"COURSE_HUB_MODE must be one of {', '.join(MODES)}, got {MODE!r}")
GRADING = "maml-course-grading"  # an instructor's nbgrader course root, in their home
COURSE_ID = "maml-course"  # CourseDirectory.course_id in the course's nbgrader_config.py
LOOPBACK = "127.0.0.1"


def _class_info() -> dict:
    """The class that classroom/class_setup.py created (isolated mode only)."""
    root = Path(os.environ.get("COURSE_CLASS_ROOT") or "/srv/maml-class").resolve()
    try:
        return json.loads((root / "class.json").read_text())
    except OSError as err:
        raise ValueError(
            f"COURSE_CLASS_ROOT={root} holds no class.json ({err.strerror}): create the class "
            "first, as root: classroom/class_setup.py create ROSTER --root " + str(root)
        ) from err


if MODE == "isolated":
    if os.geteuid() != 0:
        raise ValueError(
            "COURSE_HUB_MODE=isolated starts each server as its own user: run the hub as root"
        )
    CLASS = _class_info()
    VENV = Path(CLASS["venv"])
    STATE = Path(os.environ.get("COURSE_HUB_STATE") or CLASS["hub"]).resolve()
    EXCHANGE = Path(CLASS["exchange"])
else:
    CLASS = {}
    VENV = Path(os.environ.get("COURSE_VENV") or REPO / ".venv").resolve()
    STATE = Path(os.environ.get("COURSE_HUB_STATE") or REPO / ".hub-state").resolve()
    EXCHANGE = Path(os.environ.get("COURSE_EXCHANGE") or STATE / "exchange").resolve()
HOMES = STATE / "homes"


def _port(name: str, default: int) -> int:
    """Read a TCP port from the environment, with a clear error if it is bad."""
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{name} must be a TCP port number (1-65535), got {raw!r}")
    return int(raw)


def _names(name: str) -> set[str]:
    """Read a comma-separated list of user names from the environment."""
    return {part.strip() for part in os.environ.get(name, "").split(",") if part.strip()}


password = os.environ.get("COURSE_HUB_PASSWORD", "")
if MODE == "workshop" and len(password) < 8:
    raise ValueError(
        "COURSE_HUB_PASSWORD must be set to the shared student password "
        f"(at least 8 characters), got {len(password)} characters"
    )
singleuser = VENV / "bin" / "jupyterhub-singleuser"
if not singleuser.exists():
    raise ValueError(
        f"COURSE_VENV={VENV} has no bin/jupyterhub-singleuser: build the course "
        "environment first (make venv), or point COURSE_VENV at it"
    )
STATE.mkdir(parents=True, exist_ok=True)
if MODE == "isolated":
    STATE.chmod(0o700)  # the hub's database and cookie secret: root only
else:
    HOMES.mkdir(exist_ok=True)
if MODE == "workshop" and not EXCHANGE.exists():
    # Every student writes submissions here: world-writable, like /tmp.
    EXCHANGE.mkdir(parents=True)
    EXCHANGE.chmod(0o1777)

# --- Network: everything on loopback ---------------------------------------------
c.JupyterHub.bind_url = f"http://{LOOPBACK}:{_port('COURSE_HUB_PORT', 8000)}"
c.JupyterHub.hub_bind_url = f"http://{LOOPBACK}:{_port('COURSE_HUB_HUB_PORT', 8081)}"
c.ConfigurableHTTPProxy.api_url = f"http://{LOOPBACK}:{_port('COURSE_HUB_API_PORT', 8001)}"
c.Spawner.ip = LOOPBACK

# The proxy: configurable-http-proxy from the npm registry, installed into the
# git-ignored .hub-node/ folder (docs/classroom.md), else the one on PATH.
local_proxy = REPO / ".hub-node" / "node_modules" / ".bin" / "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = [
    str(local_proxy) if local_proxy.exists() else "configurable-http-proxy"
]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")

# --- Hub state: database and cookie secret outside the repository's tracked files -
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
# Stopping the hub stops every student's server and the proxy.
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# --- Each user's JupyterLab, in both modes ---------------------------------------
c.Spawner.cmd = [str(singleuser)]
c.Spawner.notebook_dir = "~"
c.Spawner.default_url = "/lab/tree/course"
# nbgrader calls alembic and jupyter from PATH: the course environment comes first.
c.Spawner.environment = {"PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
# Starting JupyterLab and importing torch takes a while on a busy laptop.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120

if MODE == "isolated":
    # --- A class: PAM logins, each server as its own operating-system account ------
    # The accounts, groups, homes and permissions come from classroom/class_setup.py.
    c.JupyterHub.authenticator_class = "pam"
    c.PAMAuthenticator.allowed_groups = set(CLASS["groups"].values())
    c.PAMAuthenticator.admin_groups = {CLASS["groups"]["instructors"]}
    c.JupyterHub.spawner_class = "localprocess"
    # An absolute PATH for the root-run hub to find nothing of the users' own.
    c.Spawner.environment = {"PATH": f"{VENV / 'bin'}{os.pathsep}/usr/local/bin:/usr/bin:/bin"}

# --- Login and servers (workshop mode) --------------------------------------------
roster = _names("COURSE_HUB_USERS")
admins = _names("COURSE_HUB_ADMINS")
instructors = _names("COURSE_HUB_INSTRUCTORS")
if MODE == "workshop":
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = password
    if roster:
        # Instructors and admins can log in without being listed among the students.
        c.Authenticator.allowed_users = roster | instructors | admins
    else:
        c.Authenticator.allow_all = True
    if admins:
        c.Authenticator.admin_users = admins
        c.SharedPasswordAuthenticator.admin_password = os.environ.get(
            "COURSE_HUB_ADMIN_PASSWORD", ""
        )
    # SimpleLocalProcessSpawner: every server under the hub's own account (see the docstring).
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(HOMES / "{username}")
    if os.geteuid() == 0:
        # Containers and CI often run as root; Jupyter refuses that unless told.
        c.Spawner.args = ["--allow-root"]


# nbgrader's extensions that only graders use (docs: "Using nbgrader with JupyterHub").
INSTRUCTOR_ONLY_LAB = [
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
]
INSTRUCTOR_ONLY_SERVER = [
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
]


def _write_new(path: Path, text: str) -> None:
    """Write ``path`` unless it exists: a user's own edits are never overwritten."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def nbgrader_setup(name: str, home: Path) -> None:
    """Write ``~/.jupyter`` files that connect one user to the course's nbgrader exchange.

    Students: the course id, the shared exchange, fetched assignments under
    ``~/maml-course/<assignment>``, their hub name as nbgrader student id
    (every server here runs under one operating-system account, so nbgrader
    cannot take the login name), and the graders' extensions switched off.
    Instructors: their grading folder ``~/maml-course-grading`` (a copy of the
    course's nbgrader_config.py, loaded first, and solutions/) as course root,
    and the exchange; the formgrader stays on.
    """
    jupyter = home / ".jupyter"
    common = (
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.Exchange.root = {str(EXCHANGE)!r}\n"
    )
    if name in instructors:
        root = home / GRADING
        # The formgrader needs the course root inside the user's notebook folder.
        _copy_missing(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
        _copy_missing(REPO / "solutions", root / "solutions")
        _write_new(
            jupyter / "nbgrader_config.py",
            f"load_subconfig('nbgrader_config.py', path={str(root)!r})  # noqa: F821\n"
            + common
            + f"c.CourseDirectory.root = {str(root)!r}\n",
        )
        return
    _write_new(
        jupyter / "nbgrader_config.py",
        common
        + "c.Exchange.path_includes_course = True\n"
        + f"c.CourseDirectory.student_id = {name!r}\n",
    )
    lab = {"disabledExtensions": {ext: True for ext in INSTRUCTOR_ONLY_LAB}}
    _write_new(jupyter / "labconfig" / "page_config.json", json.dumps(lab, indent=2))
    server = {"ServerApp": {"jpserver_extensions": {ext: False for ext in INSTRUCTOR_ONLY_SERVER}}}
    _write_new(jupyter / "jupyter_server_config.json", json.dumps(server, indent=2))


def _copy_missing(source: Path, target: Path) -> None:
    """Copy a file, or a folder's files, that ``target`` does not have yet.

    Files already there are kept as they are, so a restart never overwrites a
    user's work; files added to the repository later are copied in.
    """
    if source.is_file():
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        return
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.rglob("*")):
        if ".ipynb_checkpoints" in path.parts or "__pycache__" in path.parts:
            continue
        if path.is_file():
            _copy_missing(path, target / path.relative_to(source))


def prepare_home(spawner) -> None:
    """Before a user's server starts: their nbgrader set-up and their copy of the course."""
    home = Path(spawner.home_dir)
    nbgrader_setup(spawner.user.name, home)
    _copy_missing(REPO / "course", home / "course")


if MODE == "workshop":
    c.Spawner.pre_spawn_hook = prepare_home
