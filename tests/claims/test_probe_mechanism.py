"""The executor's probes: evaluated after the last cell, stored in the run, never shown."""

from __future__ import annotations

import math

import nbformat
import pytest
from chapter_claims import Probes, chapter_runs

pytestmark = pytest.mark.slow  # starts one kernel


def _claims_for(tmp_path, monkeypatch, probes_source: str):
    monkeypatch.setattr(chapter_runs, "CLAIMS", tmp_path / "claims")
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "test_tiny.py").write_text(probes_source)


def test_probes_are_read_from_the_claim_file_without_importing_it(tmp_path, monkeypatch):
    _claims_for(tmp_path, monkeypatch, 'import nothing_here\nPROBES = {"a": "1 + " "1"}\n')
    assert chapter_runs.chapter_probes(tmp_path / "tiny.ipynb") == {"a": "1 + 1"}
    assert chapter_runs.chapter_probes(tmp_path / "other.ipynb") == {}
    (tmp_path / "claims" / "test_tiny.py").write_text("PROBES = {'a': 1}\n")
    with pytest.raises(ValueError, match="PROBES must map names"):
        chapter_runs.chapter_probes(tmp_path / "tiny.ipynb")
    (tmp_path / "claims" / "test_tiny.py").write_text("PROBES = dict(a='1')\n")
    with pytest.raises(ValueError, match="literal dict"):
        chapter_runs.chapter_probes(tmp_path / "tiny.ipynb")


def test_probes_change_the_cache_key_and_assertions_do_not(tmp_path, monkeypatch):
    notebook = tmp_path / "tiny.ipynb"
    notebook.write_text(nbformat.writes(nbformat.v4.new_notebook()))
    _claims_for(tmp_path, monkeypatch, 'PROBES = {"a": "x"}\n')
    first = chapter_runs.cache_key(notebook)
    (tmp_path / "claims" / "test_tiny.py").write_text('PROBES = {"a": "x"}\n\ndef test(): pass\n')
    assert chapter_runs.cache_key(notebook) == first
    (tmp_path / "claims" / "test_tiny.py").write_text('PROBES = {"a": "x + 1"}\n')
    assert chapter_runs.cache_key(notebook) != first


def test_probes_run_in_the_chapter_kernel_and_leave_no_trace(tmp_path, monkeypatch):
    cells = [nbformat.v4.new_code_cell("import torch\nx = torch.tensor([1.0, 2.0])\ny = 0.5")]
    notebook = tmp_path / "tiny.ipynb"
    notebook.write_text(nbformat.writes(nbformat.v4.new_notebook(cells=cells)))
    probes = {
        "sum": "float(x.sum())",
        "tensor": "x * 2",
        "pair": "(y, 'text', float('nan'))",
        "missing": "z",
        "object": "object()",
    }
    _claims_for(tmp_path, monkeypatch, f"PROBES = {probes!r}\n")

    run = chapter_runs.run_chapter(notebook, use_cache=False)

    assert run.ok and not run.stderr, (run.errors, run.stderr)
    assert len(run.notebook.cells) == 1, "the probe cell must not stay in the notebook"
    values = Probes(run)
    assert values["sum"] == 3.0 and values["tensor"] == [2.0, 4.0]
    assert values["pair"][:2] == [0.5, "text"] and math.isnan(values["pair"][2])
    with pytest.raises(AssertionError, match="NameError"):
        values["missing"]
    with pytest.raises(AssertionError, match="not JSON-serialisable: object"):
        values["object"]
    with pytest.raises(KeyError, match="no probe 'nothing'"):
        values["nothing"]
