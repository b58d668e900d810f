"""Create (or remove) a class on one server: one operating-system account per person.

Run as root, from the repository, after ``make venv``::

    sudo .venv/bin/python classroom/class_setup.py create classroom/roster.example.csv
    sudo COURSE_HUB_MODE=isolated .venv/bin/jupyterhub -f jupyterhub_config.py

``create`` reads a roster (CSV with the columns ``username,role`` and
optionally ``first_name,last_name,email``; ``role`` is ``student`` or
``instructor``) and sets up, under the class root (default ``/srv/maml-class``):

* one account per person (``useradd``), in the students' or the instructors'
  group, with a private home (mode 0700) and a random password written to a
  root-only file (``--passwords``, mode 0600) for you to hand out;
* ``course/``: the course notebooks, readable by all, writable by nobody but
  root; each person also gets a copy of their own in ``~/course``;
* ``grading/``: the nbgrader course root (``nbgrader_config.py``,
  ``solutions/``, and later ``gradebook.db``, ``submitted/``, ``autograded/``,
  ``feedback/``), group instructors, mode 2770: nobody else can even list it.
  Each instructor reaches it as ``~/maml-course-grading``;
* ``exchange/``: the nbgrader exchange with the modes nbgrader itself uses:
  the root 1777 (sticky), ``maml-course/`` 0755 and ``outbound/`` 0755 owned
  by the first instructor, ``inbound/`` 2733 (students can write into it but
  not list it) and ``feedback/`` 0711 (a student can open only the file named
  by the hash of their own submission);
* ``hub/``: the hub's database and cookie secret, root only;
* ``class.json``: what the hub configuration (``COURSE_HUB_MODE=isolated``)
  reads.

The shared environment (``.venv``) and ``metalearn_lib`` stay readable by all
and lose any write bit for others. Every account must be able to run the
environment's interpreter: a venv built from a Python under a closed folder
(pyenv under ``/root``, say) is refused, unless ``--open-parents`` lets other
accounts enter (x, not list) those folders; ``remove`` closes them again.
The rest of the repository (``solutions/``, ``.git`` with its history, ...)
is closed to other accounts: the repository folder becomes 0711 (enter, not
list) and every other top-level entry loses its bits for others. ``remove`` puts those modes back.

Everything is checked before anything changes: a run that is not root, a bad
roster line or an account that exists outside the class stops with a message
and changes nothing. ``create`` may be run again with a longer roster: people
already in the class, their homes and the course root are left as they are
(root never writes where another account can write: a planted link there
could redirect its writes), and only new people are set up.

``remove`` ends every process of the class's accounts, deletes the accounts
it created (with their homes), the two groups and the class root, and puts
the repository's modes back.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COURSE_ID = "maml-course"  # CourseDirectory.course_id in nbgrader_config.py
GRADING_LINK = "maml-course-grading"  # the course root as instructors see it in their home
ROLES = ("student", "instructor")
# A portable login name; no "+" (nbgrader separates the parts of a submission name with it).
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
#: Top-level repository entries that students need: the environment and the editable library.
STUDENT_READABLE = (".venv", "metalearn_lib")
INSTRUCTOR_ONLY_LAB = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
)
INSTRUCTOR_ONLY_SERVER = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
)


class SetupError(Exception):
    """A reason to stop before changing anything."""


@dataclass(frozen=True)
class Person:
    username: str
    role: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""


# ---------------------------------------------------------------------------
# Checks (nothing changes on the machine until all of them pass)
# ---------------------------------------------------------------------------


def read_roster(path: Path) -> list[Person]:
    """Parse a roster CSV; raise SetupError naming every bad line.

    Required columns: ``username``, ``role`` (``student`` or ``instructor``);
    optional: ``first_name``, ``last_name``, ``email``. At least one instructor.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SetupError(f"cannot read the roster {path}: {err}") from err
    rows = csv.DictReader(text.splitlines())
    missing = {"username", "role"} - set(rows.fieldnames or [])
    if missing:
        raise SetupError(
            f"roster {path}: the header must name the columns username,role "
            f"(optional: first_name,last_name,email); missing {sorted(missing)}"
        )
    people, problems, seen = [], [], set()
    for line, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            problems.append(f"line {line}: expected {len(rows.fieldnames)} columns")
            continue
        name, role = row["username"].strip(), row["role"].strip().lower()
        if not NAME.fullmatch(name):
            problems.append(
                f"line {line}: username {name!r} must be 1-31 characters: a lower-case "
                "letter, then lower-case letters, digits, '-' or '_'"
            )
        elif name in seen:
            problems.append(f"line {line}: username {name!r} appears twice")
        if role not in ROLES:
            problems.append(f"line {line}: role {row['role']!r} must be one of {', '.join(ROLES)}")
        seen.add(name)
        extra = {k: (row.get(k) or "").strip() for k in ("first_name", "last_name", "email")}
        people.append(Person(username=name, role=role, **extra))
    if problems:
        raise SetupError(f"roster {path} has bad lines:\n  " + "\n  ".join(problems))
    if not any(p.role == "instructor" for p in people):
        raise SetupError(f"roster {path} names no instructor (role 'instructor')")
    return people


def _group_members(group: str) -> set[str]:
    import grp

    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return set()
    members = set(entry.gr_mem)
    members |= {p.pw_name for p in pwd.getpwall() if p.pw_gid == entry.gr_gid}
    return members


def check_accounts(people: list[Person], groups: tuple[str, str], home_base: Path) -> None:
    """Refuse accounts that exist but are not part of this class (e.g. ``root``)."""
    in_class = _group_members(groups[0]) | _group_members(groups[1])
    clashes = []
    for person in people:
        try:
            pwd.getpwnam(person.username)
        except KeyError:
            if (home_base / person.username).exists():
                clashes.append(f"{person.username} (its home {home_base / person.username} exists)")
            continue
        if person.username not in in_class:
            clashes.append(person.username)
    if clashes:
        raise SetupError(
            f"these accounts or their homes exist already outside the groups {groups[0]} "
            f"and {groups[1]}: {', '.join(clashes)}; pick other names"
        )


def closed_parents(path: Path) -> list[Path]:
    """Folders on the way to ``path`` (resolved) that other accounts cannot enter."""
    real = path.resolve()
    return [p for p in [*reversed(real.parents), real] if not p.stat().st_mode & stat.S_IXOTH]


def check_paths(venv: Path, repo: Path, home_base: Path) -> None:
    """Students' servers must reach the environment and the library through every parent."""
    if not (venv / "bin" / "jupyterhub-singleuser").exists():
        raise SetupError(f"{venv} has no bin/jupyterhub-singleuser: run `make venv` first")
    for path in reversed(home_base.parents):
        if path.exists() and not path.stat().st_mode & stat.S_IXOTH:
            raise SetupError(
                f"{path} is closed to other accounts (no x bit for others), so nobody "
                f"could enter their home under {home_base}; choose another --home-base"
            )


# ---------------------------------------------------------------------------
# Changes
# ---------------------------------------------------------------------------


def _run(*cmd: str, stdin: str | None = None) -> None:
    subprocess.run(cmd, input=stdin, text=True, check=True, capture_output=True)


def _ids(name: str) -> tuple[int, int]:
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.lchown(path, uid, gid)
    for item in path.rglob("*"):
        os.lchown(item, uid, gid)


def _copy_missing(source: Path, target: Path) -> list[Path]:
    """Copy files of ``source`` that ``target`` lacks; return what was copied."""
    copied = []
    for item in sorted(source.rglob("*")):
        if {".ipynb_checkpoints", "__pycache__"} & set(item.parts) or not item.is_file():
            continue
        dest = target / item.relative_to(source)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, dest)
            copied.append(dest)
    return copied


def _mkdir(path: Path, mode: int, uid: int = 0, gid: int = 0) -> None:
    if path.is_symlink():  # planted by an account that can write the parent: never follow
        raise SetupError(f"{path} is a symbolic link; expected a folder (remove it and rerun)")
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, mode)  # after mkdir: the umask would drop bits such as 0o733's


def _write_new_file(path: Path, text: str, gid: int, mode: int) -> None:
    """Create or replace a root-owned file, never through a symbolic link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.fchown(fd, 0, gid)
        os.fchmod(fd, mode)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def add_accounts(people, groups, home_base: Path) -> dict[str, str]:
    """Create missing groups and accounts; return ``{name: password}`` of new accounts."""
    students, instructors = groups
    for group in groups:
        if subprocess.run(["getent", "group", group], capture_output=True).returncode != 0:
            _run("groupadd", group)
    passwords = {}
    for person in people:
        group = instructors if person.role == "instructor" else students
        try:
            pwd.getpwnam(person.username)
        except KeyError:
            home = home_base / person.username
            _run("useradd", "--create-home", "--home-dir", str(home), "--user-group",
                 "--groups", group, "--shell", "/bin/bash", person.username)  # fmt: skip
            passwords[person.username] = secrets.token_urlsafe(12)
            _run("chpasswd", stdin=f"{person.username}:{passwords[person.username]}\n")
        os.chmod(pwd.getpwnam(person.username).pw_dir, 0o700)  # a private home
    return passwords


def _student_jupyter(jupyter: Path, exchange: Path) -> None:
    (jupyter / "labconfig").mkdir(parents=True, exist_ok=True)
    (jupyter / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        "c.Exchange.path_includes_course = True\n"
    )
    lab = {"disabledExtensions": {ext: True for ext in INSTRUCTOR_ONLY_LAB}}
    (jupyter / "labconfig" / "page_config.json").write_text(json.dumps(lab, indent=2))
    server = {"ServerApp": {"jpserver_extensions": {ext: False for ext in INSTRUCTOR_ONLY_SERVER}}}
    (jupyter / "jupyter_server_config.json").write_text(json.dumps(server, indent=2))


def _instructor_jupyter(jupyter: Path, home: Path, grading: Path, exchange: Path) -> None:
    jupyter.mkdir(parents=True, exist_ok=True)
    link = home / GRADING_LINK
    if not link.is_symlink():
        link.symlink_to(grading)  # the formgrader needs the course root under the home
    (jupyter / "nbgrader_config.py").write_text(
        f"load_subconfig('nbgrader_config.py', path={str(grading)!r})  # noqa: F821\n"
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        f"c.CourseDirectory.root = {str(link)!r}\n"
    )


def prepare_home(person: Person, course: Path, grading: Path, exchange: Path) -> None:
    """Jupyter and nbgrader settings, and the person's own copy of the course notebooks."""
    home = Path(pwd.getpwnam(person.username).pw_dir)
    uid, gid = _ids(person.username)
    jupyter = home / ".jupyter"
    if not (jupyter / "nbgrader_config.py").exists():
        if person.role == "instructor":
            _instructor_jupyter(jupyter, home, grading, exchange)
        else:
            _student_jupyter(jupyter, exchange)
        _chown_tree(jupyter, uid, gid)
        if (home / GRADING_LINK).is_symlink():
            os.lchown(home / GRADING_LINK, uid, gid)
    for path in _copy_missing(course, home / "course"):
        os.chown(path, uid, gid)
    os.chown(home / "course", uid, gid)


def lay_out_class(root: Path, repo: Path, people, groups) -> dict[str, Path]:
    """The class root: course (read-only), grading (instructors), exchange, hub state."""
    instructors_gid = __import__("grp").getgrnam(groups[1]).gr_gid
    first = next(p.username for p in people if p.role == "instructor")
    owner_uid = pwd.getpwnam(first).pw_uid
    paths = {name: root / name for name in ("course", "grading", "exchange", "hub")}
    _mkdir(root, 0o755)
    _mkdir(paths["hub"], 0o700)
    _mkdir(paths["course"], 0o755)
    _copy_missing(repo / "course", paths["course"])
    for item in paths["course"].rglob("*"):
        os.chown(item, 0, 0)
        os.chmod(item, 0o755 if item.is_dir() else 0o644)
    # The course root: instructors only; setgid keeps the group on what they create.
    # Filled on the first run only: afterwards it is the instructors' (root never
    # writes into a folder that others can write, where a planted link could redirect it).
    first_run = not paths["grading"].exists()
    _mkdir(paths["grading"], 0o2770, 0, instructors_gid)
    if first_run:
        shutil.copy2(repo / "nbgrader_config.py", paths["grading"] / "nbgrader_config.py")
        _copy_missing(repo / "solutions", paths["grading"] / "solutions")
        for item in paths["grading"].rglob("*"):
            os.lchown(item, 0, instructors_gid)
            os.chmod(item, 0o2770 if item.is_dir() else 0o660)
    # The exchange, with nbgrader's own modes (nbgrader/exchange/default/release_*.py).
    course_dir = paths["exchange"] / COURSE_ID
    _mkdir(paths["exchange"], 0o1777)
    _mkdir(course_dir, 0o755, owner_uid, instructors_gid)
    _mkdir(course_dir / "outbound", 0o755, owner_uid, instructors_gid)
    _mkdir(course_dir / "inbound", 0o2733, owner_uid, instructors_gid)
    _mkdir(course_dir / "feedback", 0o711, owner_uid, instructors_gid)
    return paths


def lock_repository(repo: Path, venv: Path) -> dict[str, int]:
    """Close the repository to other accounts except the environment and the library.

    Returns the original modes (path -> mode) so that ``remove`` can restore them.
    """
    original = {str(repo): stat.S_IMODE(repo.stat().st_mode)}
    os.chmod(repo, original[str(repo)] & ~0o006 | 0o001)
    for item in repo.iterdir():
        if item.name in STUDENT_READABLE or item.is_symlink():
            continue
        original[str(item)] = stat.S_IMODE(item.stat().st_mode)
        os.chmod(item, original[str(item)] & ~0o007)
    # Readable by all, writable by no other account.
    for top in {venv, repo / "metalearn_lib"}:
        for item in [top, *top.rglob("*")]:
            if not item.is_symlink():
                mode = stat.S_IMODE(item.lstat().st_mode)
                if mode & 0o002:
                    os.chmod(item, mode & ~0o002)
    return original


def write_passwords(path: Path, passwords: dict[str, str]) -> None:
    if not passwords:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as out:
        out.writelines(f"{name}:{pw}\n" for name, pw in sorted(passwords.items()))
    os.chmod(path, 0o600)


def create(args) -> None:
    root, home_base = args.root.resolve(), args.home_base.resolve()
    repo, venv = args.repo.resolve(), args.venv.resolve()
    groups = (args.students_group, args.instructors_group)
    for group in groups:
        if not NAME.fullmatch(group):
            raise SetupError(f"group name {group!r} is not a valid group name")
    people = read_roster(args.roster)
    check_accounts(people, groups, home_base)
    check_paths(venv, repo, home_base)
    interpreter = venv / "bin" / "python"
    # Every account must run the interpreter and import the library from the repository.
    closed = list(dict.fromkeys([*closed_parents(interpreter), *closed_parents(repo.parent)]))
    if closed and not args.open_parents:
        raise SetupError(
            f"other accounts cannot enter {', '.join(map(str, closed))}, so they could "
            f"neither run {interpreter} (it is {interpreter.resolve()}) nor import the "
            f"library from {repo}. Keep the course and its Python in folders that every "
            "account can enter (make venv PYTHON=/usr/bin/python3.11), or pass "
            "--open-parents to add the x bit for others (enter, not list) to those "
            "folders; `remove` takes it away again"
        )
    if root == Path("/tmp") or Path("/tmp") in root.parents:
        raise SetupError(
            f"--root {root} lies under /tmp, which the grading sandbox replaces by its own "
            "empty /tmp: choose another folder (the default is /srv/maml-class)"
        )
    info_path = root / "class.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    if info and tuple(info["groups"].values()) != groups:
        raise SetupError(f"{root} holds a class with the groups {info['groups']}, not {groups}")

    passwords = add_accounts(people, groups, home_base)
    paths = lay_out_class(root, repo, people, groups)
    write_passwords(args.passwords or root / "passwords.txt", passwords)
    for person in people:
        # Only fresh homes: root never writes into a home its owner has used (a
        # planted link there could redirect root's writes anywhere).
        if person.username in passwords:
            prepare_home(person, paths["course"], paths["grading"], paths["exchange"])
    opened = {str(p): stat.S_IMODE(p.stat().st_mode) for p in closed}
    for path in closed:
        os.chmod(path, stat.S_IMODE(path.stat().st_mode) | stat.S_IXOTH)
    repo_modes = info.get("repo_modes") or {**lock_repository(repo, venv), **opened}
    if info.get("repo_modes"):
        lock_repository(repo, venv)  # again, for entries added since; keep the first record
    accounts = sorted(set(info.get("accounts", [])) | set(passwords))
    info = {
        "course_id": COURSE_ID,
        "groups": {"students": groups[0], "instructors": groups[1]},
        "repo": str(repo),
        "venv": str(venv),
        **{name: str(path) for name, path in paths.items()},
        "instructors": sorted(
            {p.username for p in people if p.role == "instructor"}
            | set(info.get("instructors", []))
        ),  # fmt: skip
        "accounts": accounts,
        "repo_modes": repo_modes,
    }
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    os.chmod(info_path, 0o644)
    roster_csv = "id,first_name,last_name,email\n" + "".join(
        f"{p.username},{p.first_name},{p.last_name},{p.email}\n"
        for p in people
        if p.role == "student"
    )
    instructors_gid = __import__("grp").getgrnam(groups[1]).gr_gid
    _write_new_file(paths["grading"] / "roster.csv", roster_csv, instructors_gid, 0o660)
    print(
        f"class ready in {root}: {len(people)} people, {len(passwords)} new accounts "
        f"(passwords in {args.passwords or root / 'passwords.txt'}, root only).\n"
        f"Start the hub: COURSE_HUB_MODE=isolated COURSE_CLASS_ROOT={root} "
        f"{venv}/bin/jupyterhub -f {repo}/jupyterhub_config.py"
    )


def remove(args) -> None:
    root = args.root.resolve()
    info_path = root / "class.json"
    if not info_path.exists():
        raise SetupError(f"{root} holds no class (no class.json); nothing to remove")
    info = json.loads(info_path.read_text())
    for name in info["accounts"]:
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
    for name in info["accounts"]:
        subprocess.run(["userdel", "--remove", name], capture_output=True)
    for group in info["groups"].values():
        subprocess.run(["groupdel", group], capture_output=True)
    for path, mode in info["repo_modes"].items():
        if os.path.lexists(path):
            os.chmod(path, mode)
    shutil.rmtree(root)
    print(f"removed the class in {root}: {len(info['accounts'])} accounts, its groups and files")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("create", help="create or extend a class from a roster")
    make.add_argument("roster", type=Path, help="CSV: username,role[,first_name,last_name,email]")
    drop = sub.add_parser("remove", help="remove the class: its accounts, groups and files")
    for p in (make, drop):
        p.add_argument("--root", type=Path, default=Path("/srv/maml-class"), help="class root")
    make.add_argument("--home-base", type=Path, default=Path("/home"), help="parent of the homes")
    make.add_argument("--students-group", default="maml-students")
    make.add_argument("--instructors-group", default="maml-instructors")
    make.add_argument("--passwords", type=Path, help="file for new passwords (mode 0600)")
    make.add_argument("--repo", type=Path, default=REPO, help="the course repository")
    make.add_argument("--venv", type=Path, default=REPO / ".venv", help="the course environment")
    make.add_argument(
        "--open-parents",
        action="store_true",
        help="let other accounts enter (x, not r) the folders that close the environment's "
        "interpreter or the repository to them, e.g. /root when Python comes from pyenv",
    )
    args = parser.parse_args(argv)
    try:
        if os.geteuid() != 0:
            raise SetupError("must run as root (it creates accounts and sets owners of files)")
        create(args) if args.command == "create" else remove(args)
    except SetupError as err:
        print(f"class_setup.py {args.command}: {err}\nNothing was changed.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
