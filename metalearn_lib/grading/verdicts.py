"""The nbgrader preprocessors that decide every verdict in the grader's process.

nbgrader scores a test cell by its outputs (``nbgrader.utils.determine_grade``):
an error output scores 0, an ``execute_result`` that reads as a number scores
that many points, anything else scores full marks. Left alone, those outputs
come from the student's kernel, which the student's code controls. Our
autograde pipeline (``nbgrader_config.py``) therefore runs:

1. :class:`HideGraderKeys` *before* execution: ``# grader-...`` lines (the
   hashed quiz keys) are taken out of the test cells, so the kernel never
   sees them;
2. the sandboxed execution (:mod:`metalearn_lib.grading.sandbox`), in which a
   graded test cell only gathers a *record* (:mod:`~metalearn_lib.grading.records`);
3. :class:`DecideVerdicts` *after* execution: for every graded test cell
   whose instructor source (restored from the gradebook by nbgrader) calls
   ``record_answer`` or ``record_checks``, it reads the record, decides the
   verdict against references computed here, and replaces the cell's
   outputs by the verdict in the form ``determine_grade`` scores. Records
   are removed from every cell, so feedback never shows them.

Rules for records: a graded cell needs exactly one well-formed record, for
its own grade id, of at most ``MAX_RECORD_CHARS`` characters; otherwise it
scores 0 with the reason in its output (the instructor sees it in the
formgrader, the student in the feedback). Records from other cells count
for nothing.
"""

from __future__ import annotations

import ast
import re

from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict, List, Unicode

from .quiz import check_answer, hashed_score
from .records import is_record_output, parse_record

__all__ = ["DecideVerdicts", "HideGraderKeys", "grader_spec"]

_KEY_LINE = re.compile(r"^\s*# grader-key: (\S+) (v1:\S+)\s*$")
_STASH = "metalearn_test_sources"


def _is_test_cell(cell) -> bool:
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def _grade_id(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


class HideGraderKeys(NbGraderPreprocessor):
    """Take ``# grader-...`` lines out of test cells before the kernel runs them."""

    def preprocess(self, nb, resources):
        stash = {}
        for cell in nb.cells:
            if not _is_test_cell(cell):
                continue
            lines = cell.source.splitlines()
            kept = [line for line in lines if not line.lstrip().startswith("# grader-")]
            if len(kept) != len(lines):
                stash[_grade_id(cell)] = cell.source
                cell.source = "\n".join(kept)
        resources[_STASH] = stash
        return nb, resources


# ---------------------------------------------------------------------------
# What a test cell's instructor source asks for
# ---------------------------------------------------------------------------


def grader_spec(source: str) -> dict | None:
    """Read the record call of a test cell's source; None if it has none.

    Returns ``{"kind": "quiz", "cell", "letters", "question", "hashed_key"}``
    or ``{"kind": "coding", "cell", "function", "check", "cases"}``.
    Raises ``ValueError`` for a source an instructor wrote wrongly.
    """
    tree = ast.parse(source)
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("record_answer", "record_checks")
    ]
    if not calls:
        return None
    if len(calls) > 1:
        raise ValueError("a test cell may call record_answer/record_checks once")
    call = calls[0]
    if call.func.id == "record_answer":
        cell, _, letters = call.args
        keys = [m for m in map(_KEY_LINE.match, source.splitlines()) if m]
        if len(keys) != 1:
            raise ValueError(
                "a quiz test cell needs one '# grader-key: <question id> <hashed key>'"
            )
        return {
            "kind": "quiz",
            "cell": ast.literal_eval(cell),
            "letters": ast.literal_eval(letters),
            "question": keys[0][1],
            "hashed_key": keys[0][2],
        }
    cell, function, check, cases = call.args
    return {
        "kind": "coding",
        "cell": ast.literal_eval(cell),
        "function": function.id,
        "check": ast.literal_eval(check),
        "cases": ast.literal_eval(cases),
    }


# ---------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------


def _verdict(points: float, max_points: float, reason: str) -> list[NotebookNode]:
    """Outputs that nbgrader's determine_grade scores as ``points``."""
    points = round(min(max(points, 0.0), max_points), 6)
    if points <= 0:
        message = f"0 of {max_points:g} points: {reason}"
        return [
            NotebookNode(
                output_type="error",
                ename="NotPassed",
                evalue=message,
                traceback=[f"NotPassed: {message}"],
            )
        ]
    note = "passed" if points >= max_points else reason
    return [
        NotebookNode(
            output_type="stream",
            name="stdout",
            text=f"{points:g} of {max_points:g} points: {note}\n",
        ),
        NotebookNode(
            output_type="execute_result",
            execution_count=None,
            metadata={},
            data={"text/plain": repr(float(points))},
        ),
    ]


def _visible_error(outputs) -> str:
    for out in outputs:
        if out.get("output_type") == "error":
            return f"{out.get('ename', 'Error')}: {str(out.get('evalue', ''))[:300]}"
    return ""


def _names_used(source: str) -> set[str]:
    """Every name, attribute and imported name a solution cell's code mentions."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.name.rsplit(".", 1)[-1])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # getattr(module, "meta_gradient")
    return names


def _defined_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    } | {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


class DecideVerdicts(NbGraderPreprocessor):
    """Decide each graded test cell's verdict from its record (see the module docstring)."""

    forbidden_names = Dict(
        value_trait=List(Unicode()),
        default_value={
            "inner_loop": ["adapt", "meta_gradient", "loop_meta_gradient", "loop_maml"],
            "first_order": [
                "meta_gradient",
                "loop_meta_gradient",
                "loop_fomaml",
                "loop_reptile",
            ],
            "variants": [
                "meta_gradient",
                "meta_gradient_and_loss",
                "loop_meta_gradient",
                "loop_anil",
                "loop_maml",
                "anil_direction",
                "maml_direction",
                "inner_loop",
            ],
        },
        help=(
            "Per assignment, library names a student's answer cells may not use for the "
            "function a coding test checks (or the functions it calls): such a test scores 0."
        ),
    ).tag(config=True)

    def preprocess(self, nb, resources):
        stash = resources.pop(_STASH, {})
        assignment = resources.get("nbgrader", {}).get("assignment", "")
        forbidden = set(self.forbidden_names.get(assignment, []))
        solutions = [c.source for c in nb.cells if c.cell_type == "code" and utils.is_solution(c)]
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            records = [o for o in cell.get("outputs", []) if is_record_output(o)]
            others = [o for o in cell.get("outputs", []) if not is_record_output(o)]
            cell.outputs = others  # records never reach the feedback
            if not _is_test_cell(cell):
                continue  # a record from an answer cell counts for nothing
            gid = _grade_id(cell)
            cell.source = stash.get(gid, cell.source)
            spec = grader_spec(cell.source)
            if spec is None:
                cell.outputs = others  # an ordinary nbgrader test cell
                continue
            max_points = float(cell.metadata["nbgrader"]["points"])
            points, reason = self._decide(spec, gid, records, others, max_points)
            if points > 0 and spec["kind"] == "coding" and forbidden:
                used = self._library_names(spec["function"], solutions) & forbidden
                if used:
                    points = 0
                    reason = (
                        f"uses {', '.join(sorted(used))} from the library, which this exercise "
                        "forbids (see the assignment's introduction)"
                    )
            self.log.debug("verdict for %s: %s (%s)", gid, points, reason)
            cell.outputs = _verdict(points, max_points, reason)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):  # everything happens in preprocess
        return cell, resources

    @staticmethod
    def _library_names(function: str, solutions: list[str]) -> set[str]:
        """Names used by the answer cell defining ``function`` and the answer functions it calls."""
        defining = {name: src for src in solutions for name in _defined_names(src)}
        seen, todo, used = set(), [function], set()
        while todo:
            name = todo.pop()
            if name in seen or name not in defining:
                continue
            seen.add(name)
            names = _names_used(defining[name])
            used |= names
            todo.extend(names & set(defining))
        return used

    def _decide(self, spec, gid, records, others, max_points) -> tuple[float, str]:
        if not records:
            stopped = _visible_error(others)
            return 0.0, "no record: " + (
                f"the cell stopped before recording ({stopped})"
                if stopped
                else "nothing was recorded"
            )
        if len(records) > 1:
            return 0.0, f"{len(records)} records, expected exactly one"
        record, problem = parse_record(records[0])
        if record is None:
            return 0.0, problem
        if record["cell"] != gid or spec["cell"] != gid:
            return 0.0, f"the record is for cell {record['cell']!r}, not {gid!r}"
        if record["kind"] != spec["kind"]:
            return 0.0, "the record is of the wrong kind"
        if spec["kind"] == "quiz":
            return self._quiz(spec, record["data"], max_points)
        return self._coding(spec, record["data"], max_points)

    @staticmethod
    def _quiz(spec, data, max_points) -> tuple[float, str]:
        if type(data) is not list or not all(type(x) is str for x in data) or len(data) > 26:
            return 0.0, "the recorded answer is not a list of letters"
        try:
            answer = check_answer(set(data), spec["letters"])
        except (TypeError, ValueError) as error:
            return 0.0, f"the recorded answer is malformed ({error})"
        points = hashed_score(
            answer, spec["question"], spec["letters"], spec["hashed_key"], points=max_points
        )
        return points, "partial credit (right minus wrong statements, floored at 0)"

    @staticmethod
    def _coding(spec, data, max_points) -> tuple[float, str]:
        from .coding import case_id, expected_outputs, outputs_match  # torch, only for code

        cases = spec["cases"]
        if type(data) is not list or len(data) != len(cases):
            return 0.0, f"the record does not hold the {len(cases)} cases of this test"
        wrong = 0
        for item, case in zip(data, cases):
            if type(item) is not dict or set(item) != {"case", "outputs"}:
                return 0.0, "the record's cases are malformed"
            if item["case"] != case_id(spec["check"], case):
                return 0.0, "the record's cases are not this test's cases"
            if not outputs_match(item["outputs"], expected_outputs(spec["check"], case)):
                wrong += 1
        if wrong:
            return (
                0.0,
                f"wrong on {wrong} of {len(cases)} cases (the visible tests show some of them)",
            )
        return max_points, "passed"
