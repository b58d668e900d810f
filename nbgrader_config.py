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

* every verdict is decided in the grader's process, from the records the
  test cells gather and references the kernel never sees
  (``metalearn_lib/grading/verdicts.py``: :class:`HideGraderKeys` before
  execution, :class:`DecideVerdicts` after it);
* each submission's kernel runs in a bubblewrap sandbox
  (``metalearn_lib/grading/sandbox.py``, :class:`SandboxedExecute`), which
  also restarts a kernel the notebook kills and replays the cells above;
* a per-cell timeout (``Execute.timeout``) well above the slowest honest cell;
* test cells and grade cells a student deleted are put back;
* feedback HTML never shows hidden tests, mark schemes, or the source lines
  a traceback quotes from a test cell (:class:`HideTestTracebacks`).
"""

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader import utils
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    SaveAutoGrades,
)

from metalearn_lib.grading.execute import SandboxedExecute
from metalearn_lib.grading.verdicts import DecideVerdicts, HideGraderKeys

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
# Autograde: the grader's keys are taken out of the test cells, each kernel
# runs in the bubblewrap sandbox (and is restarted if the notebook kills it),
# and every verdict is decided afterwards in this process from the records
# the test cells gathered (metalearn_lib/grading/: verdicts.py, sandbox.py).
# For a trusted single-user setting only: METALEARN_SANDBOX=off, or
# c.SandboxedExecute.sandbox = False (each notebook's log then warns).
# Slowest honest cells: about 3 s (the setup cell's `import torch`, the first
# torch.func call in first_order) measured on a 2-core machine at load 4; the
# limit leaves a wide margin for slow machines.
c.Execute.timeout = 20
c.Execute.interrupt_on_timeout = True
c.Autograde.autograde_preprocessors = [
    HideGraderKeys,  # the hashed quiz keys never reach the kernel
    SandboxedExecute,  # instead of nbgrader's Execute
    DecideVerdicts,  # records -> verdicts, in this process
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
