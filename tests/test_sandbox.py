"""The bubblewrap sandbox in which autograde runs each submission's kernel.

One course copy: a vandal's quiz submission (which, while it is graded, tries
to read solutions/, write gradebook.db, delete a classmate's submission, fill
the disk, fork many processes, allocate 20 GB and open a network connection)
and a classmate's right answers are graded in one ``nbgrader autograde`` run.
Then the same course is graded without bubblewrap on PATH (autograde refuses
and names the fix) and with the documented opt-out (a warning in the log).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
from pathlib import Path

import pytest
from grading_helpers import (
    blank,
    cell_by_id,
    export,
    make_course,
    nbgrader,
    quiz_keys,
    read_nb,
    solved,
)
from grading_helpers import submit as submit_nb

from metalearn_lib.grading.sandbox import NOBODY, SandboxedKernelManager, sandbox_problem

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sandbox_problem() != "", reason="bubblewrap cannot start here"),
]

QUIZ = "variants_quiz"
ATTEMPTS = ("read", "gradebook", "delete", "disk", "fork", "memory", "network")


def _vandal(course: Path, keys) -> object:
    """Right answers to questions 1-4; question 4's cell attacks the course while graded."""
    nb = blank(QUIZ, course)
    for q in (1, 2, 3):
        cell_by_id(nb, f"answer_{q}").source = f"answer_{q} = {set(keys[q])!r}"
    root = str(course)
    attack = f"""
import os, shutil, socket, sqlite3, subprocess
ROOT = {root!r}

def attempt(name, action):
    try:
        action()
        print("DONE", name)
    except BaseException as error:
        print("BLOCKED", name, type(error).__name__)

def read():
    open(ROOT + "/solutions/variants_quiz/variants_quiz.ipynb").read()

def gradebook():
    db = sqlite3.connect(ROOT + "/gradebook.db")
    db.execute("UPDATE grade SET auto_score = 1089")
    db.commit()

def delete():
    shutil.rmtree(ROOT + "/submitted/victim")

def disk():
    with open("filler.bin", "wb") as f:
        for _ in range(20_000):  # 20 GB in 1 MB blocks
            f.write(b"x" * 1_000_000)

def fork():
    children = []
    try:
        for _ in range(500):
            children.append(subprocess.Popen(["sleep", "60"]))
    finally:
        for child in children:
            child.kill()

def memory():
    block = bytearray(20 * 1024**3)
    block[::4096] = b"x" * len(block[::4096])

def network():
    socket.create_connection(("192.0.2.1", 80), timeout=3)

for name, action in [("read", read), ("gradebook", gradebook), ("delete", delete),
                     ("disk", disk), ("fork", fork), ("memory", memory), ("network", network)]:
    attempt(name, action)
print("UID", os.getuid(), "SEES", sorted(os.listdir("/")))
copies = [open(f).read() for f in os.listdir(".") if f.endswith(".ipynb")]
history = "\\n".join(get_ipython().user_ns["In"])
marker = "grader" + "-key"  # not spelled out: this cell is in the history too
print("COPIES", len(copies), "KEYS", any(marker in text for text in copies + [history]))
answer_4 = {set(keys[4])!r}
"""
    cell_by_id(nb, "answer_4").source = attack
    return nb


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory):
    before = set(Path(tempfile.gettempdir()).glob("metalearn-sandbox-*"))
    course = make_course(tmp_path_factory.mktemp("sandbox"))
    result = nbgrader(course, "generate_assignment", QUIZ, "--force")
    assert result.returncode == 0, result.stderr[-3000:]
    keys = quiz_keys(course)
    submit_nb(course, "victim", QUIZ, solved(QUIZ, course))
    submit_nb(course, "vandal", QUIZ, _vandal(course, keys))
    victim_file = course / "submitted" / "victim" / QUIZ / f"{QUIZ}.ipynb"
    victim_bytes = victim_file.read_bytes()
    run = nbgrader(course, "autograde", QUIZ)
    scores = export(course)
    with sqlite3.connect(course / "gradebook.db") as db:
        auto_scores = [row[0] for row in db.execute("SELECT auto_score FROM grade")]
    after = set(Path(tempfile.gettempdir()).glob("metalearn-sandbox-*"))
    return {
        "course": course,
        "keys": keys,
        "run": run,
        "scores": scores,
        "auto_scores": auto_scores,
        "victim_file": victim_file,
        "victim_bytes": victim_bytes,
        "leftover": after - before,
    }


def _vandal_output(course: Path) -> str:
    nb = read_nb(course / "autograded" / "vandal" / QUIZ / f"{QUIZ}.ipynb")
    outputs = cell_by_id(nb, "answer_4").outputs
    return "".join(o.text for o in outputs if o.output_type == "stream")


def test_every_attack_fails_inside_the_sandbox(sandboxed):
    assert sandboxed["run"].returncode == 0, sandboxed["run"].stderr[-3000:]
    out = _vandal_output(sandboxed["course"])
    for name in ATTEMPTS:
        assert f"BLOCKED {name}" in out, out
    # Its working copy of the notebook is there, without the grader's keys; the test cells it
    # ran (its input history) had them taken out too.
    assert "COPIES 1 KEYS False" in out, out
    uid = int(out.split("UID ", 1)[1].split()[0])
    assert uid == (NOBODY if os.geteuid() == 0 else os.getuid())
    # The kernel's whole filesystem: system folders, the environment, its own files.
    assert "'gradebook.db'" not in out and "'submitted'" not in out


def test_the_vandal_earns_its_answers_and_everyone_else_keeps_theirs(sandboxed):
    scores = sandboxed["scores"]
    assert scores[(QUIZ, "victim")] == pytest.approx(9.0)
    assert scores[(QUIZ, "vandal")] == pytest.approx(4.0)
    scored = [s for s in sandboxed["auto_scores"] if s is not None]
    assert scored and max(scored) <= 1.0  # no UPDATE reached the gradebook
    assert sandboxed["victim_file"].read_bytes() == sandboxed["victim_bytes"]
    assert (sandboxed["course"] / "solutions" / QUIZ / f"{QUIZ}.ipynb").exists()


def test_sandbox_folders_are_removed(sandboxed):
    assert sandboxed["leftover"] == set()


def test_autograde_refuses_without_bubblewrap_and_names_the_fix(sandboxed, tmp_path):
    course = sandboxed["course"]
    env = {"METALEARN_BWRAP": str(tmp_path / "no-such-bwrap")}  # as if it were not installed
    result = nbgrader(course, "autograde", QUIZ, "--force", "--student", "victim", env=env)
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "autograde refuses" in log and "apt-get install bubblewrap" in log, log[-3000:]
    assert not (course / "autograded" / "victim" / QUIZ).exists()


def test_the_documented_opt_out_grades_with_a_warning(sandboxed):
    course = sandboxed["course"]
    env = {"METALEARN_SANDBOX": "off"}
    result = nbgrader(course, "autograde", QUIZ, "--force", "--student", "victim", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GRADING WITHOUT SANDBOX" in result.stderr
    assert export(course)[(QUIZ, "victim")] == pytest.approx(9.0)


def _kernel_uid_outside(connection_file: str) -> int:
    """The real uid of the kernel process, read from the host's /proc."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            status = (proc / "status").read_text()
        except OSError:
            continue
        program = os.path.basename(cmdline[0].decode(errors="replace"))
        if program.startswith("python") and connection_file.encode() in cmdline:
            uid_line = next(ln for ln in status.splitlines() if ln.startswith("Uid:"))
            return int(uid_line.split()[1])
    raise AssertionError("kernel process not found")


def test_the_kernel_runs_unprivileged_as_seen_from_outside(tmp_path):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "data.txt").write_text("the student's own file")

    async def run() -> tuple[int, str]:
        km = SandboxedKernelManager(kernel_name="python3")
        await km.start_kernel(cwd=str(folder))
        try:
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=60)
            uid = _kernel_uid_outside(km.connection_file)  # once ready: setpriv has run
            outside = str(tmp_path)
            kc.execute(f"import os; print(open('data.txt').read(), os.path.exists({outside!r}))")
            text = ""
            while "True" not in text and "False" not in text:
                msg = await kc.get_iopub_msg(timeout=30)
                if msg["msg_type"] == "stream":
                    text += msg["content"]["text"]
            kc.stop_channels()
            return uid, text
        finally:
            await km.shutdown_kernel(now=True)

    uid, text = asyncio.run(run())
    assert uid == (NOBODY if os.geteuid() == 0 else os.getuid())
    assert uid != 0
    assert "the student's own file False" in text
