"""nbgrader configuration for the MAML course.

The repository root is the nbgrader course root (run nbgrader commands from
here, or use the Makefile targets ``release``, ``autograde``, ``feedback``,
``grades``; see docs/instructor_guide.md):

* ``solutions/<assignment>/`` - instructor versions: solutions, hidden tests,
  hashed quiz keys and mark schemes (nbgrader's *source* directory);
* ``exercises/<assignment>/`` - student versions, generated from solutions/
  by ``nbgrader generate_assignment`` (the *release* directory);
* ``submitted/``, ``autograded/``, ``feedback/``, ``gradebook.db`` - run-time
  state, git-ignored.

Besides the directory names this file hardens grading:

* a per-cell timeout (``Execute.timeout``) well above the slowest honest cell;
* test cells and grade cells a student deleted are put back;
* a kernel that a submission kills (``os._exit``, a segfault, ...) is
  restarted and the cells above are replayed, so the rest of the notebook
  still gets graded (:class:`RecoveringExecute`);
* feedback HTML never shows hidden tests, mark schemes, or the source lines
  a traceback quotes from a test cell (:class:`HideTestTracebacks`).
"""

import copy

from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    Execute,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    SaveAutoGrades,
)

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

# --- Course layout ---------------------------------------------------------
c.CourseDirectory.course_id = "maml-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# Generated or editor files that must never be released or collected.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    ".DS_Store",
]


# --- Execution during validate and autograde -------------------------------
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


# Slowest honest cells: about 3 s (the setup cell's `import torch`, the first
# torch.func call in first_order) measured on a 2-core machine at load 4; the
# limit leaves a wide margin for slow machines.
c.Execute.timeout = 20
c.Execute.interrupt_on_timeout = True
c.Autograde.autograde_preprocessors = [
    RecoveringExecute,  # instead of nbgrader's Execute
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
# Cells that a student deleted (tests, answers, tasks) are put back before grading.
c.OverwriteCells.add_missing_cells = True
# Long outputs are cut before they reach the gradebook and the feedback.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40


# --- Feedback ----------------------------------------------------------------
class HideTestTracebacks(NbGraderPreprocessor):
    """Replace tracebacks in autograder test cells by their last line.

    IPython quotes the lines around the failing line of a cell, which would
    show hidden test code; the last line (``AssertionError: message``) is all
    the student needs. Outputs of the student's own cells are left alone.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    evalue = str(out.get("evalue", ""))[:500]
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {evalue}"]
        return cell, resources


c.GenerateFeedback.preprocessors = [
    GetGrades,
    ClearHiddenTests,
    ClearMarkScheme,
    HideTestTracebacks,
    CSSHTMLHeaderPreprocessor,
]
c.ClearHiddenTests.enforce_metadata = False
c.ClearMarkScheme.enforce_metadata = False

# --- Export ------------------------------------------------------------------
c.ExportApp.plugin_class = "nbgrader.plugins.export.CsvExportPlugin"
