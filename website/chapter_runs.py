"""Execute course chapters once, into a cache that the site build and the notebook tests share.

A chapter is executed with nbclient in a fresh ``python3`` kernel (the venv's),
with ``course/`` as working directory and widget state stored in the notebook.
The first picture each
``ipywidgets.Image`` showed is kept too (metadata ``course_first_pictures``).
The executed notebook and a record of the run (wall and CPU seconds, errors,
everything written to stderr) are cached under a key: the sha256 of the
notebook, every ``metalearn_lib/**/*.py`` and ``requirements.txt``. An unchanged
chapter is therefore never executed twice, by ``make site`` or by the tests;
change the notebook or the library and it runs again. Failed runs are never
written to the cache, so a failure is always re-examined.

After the last cell, while the kernel still runs, the executor evaluates the
chapter's *probes*: named Python expressions declared as a literal ``PROBES``
dict in ``tests/claims/test_<chapter stem>.py``. Their values, as JSON, go into
the run record (``ChapterRun.probes``; a probe that fails or gives something
not JSON-serialisable lands in ``ChapterRun.probe_errors``), and the claim tests
assert the chapter's sentences on them. The probe cell is removed again, so it
never shows in the notebook, and the probes are part of the cache key.

The cache lives in ``_build/chapter-cache/`` (git-ignored); ``CHAPTER_CACHE_DIR``
moves it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "course"
LIBRARY = ROOT / "metalearn_lib"
CLAIMS = ROOT / "tests" / "claims"
DEFAULT_CACHE = ROOT / "_build" / "chapter-cache"
# Bump when the way chapters are executed changes, so old cache entries are ignored.
EXECUTOR_VERSION = "3"
TIMEOUT_S = 600
#: Notebook metadata key: the first non-empty PNG each ``ipywidgets.Image`` showed, by model id.
FIRST_PICTURES = "course_first_pictures"
#: MIME type of the (removed) probe cell's single output: the probes' values as a JSON string.
PROBES_MIME = "text/x-course-probes"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class ChapterRun:
    """One executed chapter: the notebook with outputs and what happened while it ran."""

    name: str  # e.g. "course/02_maml.ipynb"
    key: str
    seconds: float
    cpu_seconds: float
    errors: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    probes: dict = field(default_factory=dict)  # probe name -> JSON value
    probe_errors: dict = field(default_factory=dict)  # probe name -> what went wrong
    from_cache: bool = False
    notebook: nbformat.NotebookNode | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    def record(self) -> dict:
        data = asdict(self)
        data.pop("notebook")
        return data


def course_chapters() -> list[Path]:
    """Every ``course/*.ipynb``, in chapter order."""
    return sorted(COURSE.glob("*.ipynb"))


def cache_dir() -> Path:
    return Path(os.environ.get("CHAPTER_CACHE_DIR", DEFAULT_CACHE))


def _library_digest() -> hashlib._Hash:
    digest = hashlib.sha256(EXECUTOR_VERSION.encode())
    for path in sorted(LIBRARY.rglob("*.py")):
        digest.update(str(path.relative_to(LIBRARY)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    digest.update((ROOT / "requirements.txt").read_bytes())
    return digest


def cache_key(path: Path) -> str:
    """sha256 of the notebook, the library sources, the course's pins and the chapter's probes."""
    digest = _library_digest()
    digest.update(b"\0notebook\0" + Path(path).read_bytes())
    probes = chapter_probes(path)
    if probes:  # only the probes count: editing a claim test's assertions re-executes nothing
        digest.update(b"\0probes\0" + json.dumps(probes, sort_keys=True).encode())
    return digest.hexdigest()


def probe_file(path: Path) -> Path:
    """Where a chapter's probes and claim tests live: ``tests/claims/test_<stem>.py``."""
    return CLAIMS / f"test_{Path(path).stem}.py"


def chapter_probes(path: Path) -> dict[str, str]:
    """The chapter's probes, ``{name: expression}``, read without importing the claim test file.

    ``PROBES`` must be a top-level assignment of a literal dict of strings, so the
    executor (and the site build, which has no pytest) can read it with ``ast``.
    A chapter without a claim test file has no probes.
    """
    source = probe_file(path)
    if not source.is_file():
        return {}
    for node in ast.parse(source.read_text(), filename=str(source)).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "PROBES" for t in targets):
            try:
                probes = ast.literal_eval(node.value)
            except ValueError as error:
                raise ValueError(f"{source}: PROBES must be a literal dict ({error})") from None
            if not isinstance(probes, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in probes.items()
            ):
                raise ValueError(f"{source}: PROBES must map names (str) to expressions (str)")
            return probes
    return {}


def _probe_source(probes: dict[str, str]) -> str:
    """A cell that evaluates every probe in the chapter's namespace and displays the values."""
    return f"""def _course_probe_values():
    import json
    import warnings

    from IPython.display import display

    def plain(value):
        if hasattr(value, "tolist"):  # torch tensors, NumPy arrays and scalars
            return value.tolist()
        raise TypeError(f"not JSON-serialisable: {{type(value).__name__}}")

    values, errors = {{}}, {{}}
    for name, expression in {probes!r}.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                values[name] = json.loads(json.dumps(eval(expression, globals()), default=plain))
        except Exception as error:
            errors[name] = f"{{type(error).__name__}}: {{error}}"
    text = json.dumps({{"values": values, "errors": errors}})
    display({{{PROBES_MIME!r}: text}}, raw=True)


_course_probe_values()
del _course_probe_values
"""


def _probe_results(cell) -> tuple[dict, dict]:
    """(values, errors) from the executed probe cell's output."""
    for output in cell.get("outputs", []):
        text = output.get("data", {}).get(PROBES_MIME)
        if text is not None:
            found = json.loads(text)
            return found["values"], found["errors"]
    outputs = [o.get("output_type") for o in cell.get("outputs", [])]
    return {}, {"*": f"the probe cell did not run or gave no values (outputs: {outputs})"}


def _name(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stderr_outputs(nb) -> list[str]:
    """Everything the notebook wrote to stderr, as ``cell N: text`` lines."""
    found = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append(f"cell {i}: {output.get('text', '')[:500]}")
            data = output.get("data", {})
            if "application/vnd.jupyter.stderr" in data:
                found.append(f"cell {i}: {data['application/vnd.jupyter.stderr'][:500]}")
    return found


def error_outputs(nb) -> list[str]:
    return [
        f"cell {i}: {o.get('ename')}: {o.get('evalue')}"
        for i, cell in enumerate(nb.cells)
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]


def _kernel_env() -> dict[str, str]:
    env = dict(os.environ)
    # With MPLBACKEND=Agg (the tests set it) the kernel would draw no inline figures.
    env.pop("MPLBACKEND", None)
    return env


def _first_picture_client(nb, **options):
    """An nbclient NotebookClient that also keeps each Image widget's first picture.

    nbclient stores a widget's last state; a later cell that moves a slider would
    change the picture. The site shows the picture a learner first sees.
    """
    from nbclient import NotebookClient

    class FirstPictureClient(NotebookClient):
        def handle_comm_msg(self, outs, msg, cell_index):
            super().handle_comm_msg(outs, msg, cell_index)
            data = msg["content"].get("data", {})
            if "state" in data and data.get("buffer_paths"):
                pictures = self.nb.metadata.setdefault(FIRST_PICTURES, {})
                for buffer in self._get_buffer_data(msg):
                    if buffer["path"] == ["value"] and buffer["data"]:
                        pictures.setdefault(msg["content"]["comm_id"], buffer["data"])

    return FirstPictureClient(nb, **options)


def _execute(path: Path, key: str) -> ChapterRun:
    # Build matplotlib's font cache here, so no kernel logs 'building the font cache'.
    import matplotlib.font_manager  # noqa: F401
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    probes = chapter_probes(path)
    if probes:  # evaluated after the last cell, in the same kernel; removed again below
        nb.cells.append(nbformat.v4.new_code_cell(_probe_source(probes)))
    client = _first_picture_client(
        nb,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(Path(path).parent)}},
    )
    failure = ""
    cpu_before = _children_cpu_seconds()
    start = time.perf_counter()
    try:
        client.execute(env=_kernel_env())
    except CellExecutionError as error:
        # The message holds the failing cell's code and its traceback (ANSI-coloured).
        failure = _ANSI.sub("", str(error))[-2500:]
    except Exception as error:  # a kernel that died or timed out
        failure = f"{type(error).__name__}: {error}"
    seconds = time.perf_counter() - start
    # The kernel is a child process, reaped when execute() shuts it down: its CPU
    # time says how much work the chapter is, even on a busy machine.
    cpu = _children_cpu_seconds() - cpu_before
    values, probe_errors = _probe_results(nb.cells.pop()) if probes else ({}, {})
    errors = error_outputs(nb)
    if failure:
        errors.append(failure)
    return ChapterRun(
        name=_name(path),
        key=key,
        seconds=round(seconds, 1),
        cpu_seconds=round(cpu, 1),
        errors=errors,
        stderr=stderr_outputs(nb),
        probes=values,
        probe_errors=probe_errors,
        notebook=nb,
    )


def run_chapter(path: Path, *, use_cache: bool = True) -> ChapterRun:
    """The executed chapter: from the cache when its key is there, else executed now.

    Parameters
    ----------
    path : Path
        A notebook, normally one of :func:`course_chapters`.
    use_cache : bool
        Read and write the cache (default). False always executes and writes nothing.

    Returns
    -------
    ChapterRun
        With ``.notebook`` (outputs and widget state) and ``.errors`` (empty when it ran).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path must be an existing notebook, got {path}")
    key = cache_key(path)
    folder = cache_dir()
    stem = f"{path.stem}-{key[:16]}"
    cached_nb, cached_record = folder / f"{stem}.ipynb", folder / f"{stem}.json"
    if use_cache and cached_nb.is_file() and cached_record.is_file():
        record = json.loads(cached_record.read_text())
        if record.get("key") == key:
            record.update(from_cache=True, name=_name(path))
            return ChapterRun(**record, notebook=nbformat.read(cached_nb, as_version=4))
    run = _execute(path, key)
    if use_cache and run.ok:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{path.stem}-*"):
            old.unlink()  # one entry per chapter: the cache does not grow without bound
        nbformat.write(run.notebook, cached_nb)
        cached_record.write_text(json.dumps(run.record(), indent=1))
    return run
