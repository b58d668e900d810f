"""Execution during autograde: recovery from killed kernels, and the sandbox.

:class:`SandboxedExecute` is what ``nbgrader_config.py`` puts in the
autograde pipeline instead of nbgrader's ``Execute``: every submission's
kernel runs in the bubblewrap sandbox of :mod:`metalearn_lib.grading.sandbox`,
and a kernel that the notebook kills is restarted (:class:`RecoveringExecute`).
"""

from __future__ import annotations

import copy
import os

from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool

from .sandbox import SandboxedKernelManager, SandboxUnavailable, sandbox_problem

__all__ = ["RecoveringExecute", "SandboxedExecute"]


class RecoveringExecute(Execute):
    """nbgrader's Execute, plus recovery from a kernel the notebook killed.

    When a cell kills the kernel (``os._exit``, ``exit()``, a crash), nbclient
    raises ``DeadKernelError`` and nbgrader would drop the whole notebook. Here
    the cell gets an error output instead, the kernel is restarted, the code
    cells above it are run again silently (their recorded outputs and grades
    are kept; cells that timed out or killed the kernel are skipped), and
    execution goes on. After ``max_restarts`` restarts the remaining cells are
    marked as not run (no credit).
    """

    max_restarts = 3

    def preprocess(self, nb, resources=None, km=None):
        self._skip_on_replay = set()
        self._restarts = 0
        self._last_code_cell = None
        return super().preprocess(nb, resources, km)

    @staticmethod
    def _error(ename: str, message: str) -> NotebookNode:
        return NotebookNode(
            output_type="error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"]
        )

    def _alive(self) -> bool:
        return bool(run_sync(self.km.is_alive)())

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._restarts <= self.max_restarts and not self._alive():
            # The kernel shut down quietly after the cell above (e.g. `exit()`).
            if self._last_code_cell is not None:
                self._skip_on_replay.add(self._last_code_cell)
            self._restart_and_replay(index)
        if self._restarts > self.max_restarts:
            cell.outputs = [self._error("NotRun", "not run: the kernel died too often above")]
            return cell, resources
        self._last_code_cell = index
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._skip_on_replay.add(index)
            cell.outputs.append(
                self._error("KernelDied", "the kernel died while running this cell")
            )
            self._restart_and_replay(index + 1)
            return cell, resources
        if any(
            out.get("output_type") == "error" and out.get("ename") == "CellTimeoutError"
            for out in cell.get("outputs", [])
        ):
            self._skip_on_replay.add(index)
        return cell, resources

    def _restart(self) -> bool:
        """Restart the kernel; False (and no more restarts) once the limit is reached."""
        self._restarts += 1
        if self._restarts > self.max_restarts:
            return False
        run_sync(self.km.restart_kernel)(now=True)
        run_sync(self.kc.wait_for_ready)(timeout=self.startup_timeout)
        return True

    def _restart_and_replay(self, stop: int) -> None:
        """Restart the kernel and silently rerun the code cells before index ``stop``."""
        self.log.warning("The kernel died: restarting it and replaying the cells above")
        if not self._restart():
            return
        for j, earlier in enumerate(self.nb.cells[:stop]):
            if earlier.cell_type != "code" or j in self._skip_on_replay:
                continue
            scratch = copy.deepcopy(earlier)  # the recorded outputs stay as they were
            try:
                self.execute_cell(scratch, j, store_history=False)
                dead = not self._alive()
            except DeadKernelError:
                dead = True
            if dead:
                self._skip_on_replay.add(j)
                if not self._restart():
                    return


class SandboxedExecute(RecoveringExecute):
    """RecoveringExecute with every kernel in the bubblewrap sandbox.

    Refuses to grade (raises :class:`SandboxUnavailable`, which nbgrader logs
    for the submission) where the sandbox cannot start, unless the sandbox is
    switched off explicitly: ``c.SandboxedExecute.sandbox = False`` or the
    environment variable ``METALEARN_SANDBOX=off``; then every notebook's log
    carries a warning.
    """

    sandbox = Bool(
        True,
        help="Run each submission in the bubblewrap sandbox (switch off only for trusted work).",
    ).tag(config=True)

    def _sandbox_on(self) -> bool:
        return self.sandbox and os.environ.get("METALEARN_SANDBOX", "").lower() not in (
            "off",
            "0",
            "no",
            "false",
        )

    def preprocess(self, nb, resources=None, km=None):
        if not self._sandbox_on():
            self.log.warning(
                "GRADING WITHOUT SANDBOX (METALEARN_SANDBOX=off, or SandboxedExecute.sandbox "
                "= False): "
                "this submission's code runs with your privileges and can read and change the "
                "course, the gradebook and other students' work. Use this only for trusted work."
            )
            self.kernel_manager_class = self._default_kernel_manager_class()
            return super().preprocess(nb, resources, km)
        problem = sandbox_problem()
        if problem:
            raise SandboxUnavailable(f"autograde refuses to run this submission: {problem}")
        self.kernel_manager_class = SandboxedKernelManager
        return super().preprocess(nb, resources, km)

    @staticmethod
    def _default_kernel_manager_class():
        from jupyter_client import AsyncKernelManager

        return AsyncKernelManager
