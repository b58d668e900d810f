"""docs/instructor_guide.md maps every graded cell of every assignment to where it is taught."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "instructor_guide.md"


def _graded_cells() -> set[tuple[str, str]]:
    """(assignment, grade_id) of every cell with points in solutions/."""
    out = set()
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("points"):
                out.add((path.parent.name, meta["grade_id"]))
    return out


def _table_rows() -> dict[tuple[str, str], str]:
    """The rows of the guide's "Where each graded question is taught" table."""
    text = GUIDE.read_text()
    section = text.split("## Where each graded question is taught", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if m := re.match(r"\| `(\w+)` \| `(\w+)`[^|]*\| (.+) \|$", line):
            rows[m[1], m[2]] = m[3]
    return rows


def test_every_graded_cell_has_a_row_that_names_a_chapter():
    graded, rows = _graded_cells(), _table_rows()
    assert len(graded) >= 20  # 5 + 3 + 11 + 3 graded cells today
    missing = sorted(graded - set(rows))
    assert not missing, f"docs/instructor_guide.md has no row for {missing}"
    stale = sorted(set(rows) - graded)
    assert not stale, f"rows for cells that are not graded (any more): {stale}"
    for cell, taught_by in rows.items():
        assert re.search(r"\bch[1-6] §\d", taught_by), f"{cell}: name a chapter section"
