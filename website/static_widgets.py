"""Turn an executed chapter's widgets into static outputs for the website.

Widgets compute in a kernel; a static page has none. nbclient stores the
widgets' state (their models, and the PNG bytes of each ``ipywidgets.Image``)
in the notebook's metadata. Each widget view output becomes:

- a figure explorer (a view whose tree holds an ``Image``): the first PNG the
  Image showed (kept by ``chapter_runs``; a later cell may move its sliders),
  then a line saying it is live in JupyterLab (``make lab``) and which controls
  move it;
- a progress bar (tqdm in a kernel): one line of text, e.g. ``pretrain: 1000/1000``;
- anything else: a line naming the widget's controls, live in JupyterLab.

The widget state is then removed, so the site loads no widget JavaScript and
shows no broken widget placeholder.
"""

from __future__ import annotations

import html
import re

import nbformat

VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
LIVE = "live in JupyterLab (`make lab`)"
FIRST_PICTURES = "course_first_pictures"  # written by chapter_runs
_CONTROLS = ("Slider", "Checkbox", "Button", "Dropdown", "Text", "Toggle", "Select", "Radio")


def _models(nb) -> dict:
    return nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {})


def _descendants(models: dict, model_id: str) -> list[dict]:
    """The model and every model below it (children), depth first, in display order.

    Each is returned with its id under ``"model_id"``.
    """
    found, stack, seen = [], [model_id], set()
    while stack:
        current = stack.pop(0)
        if current in seen or current not in models:
            continue
        seen.add(current)
        model = {**models[current], "model_id": current}
        found.append(model)
        children = model.get("state", {}).get("children", [])
        stack[0:0] = [c.removeprefix("IPY_MODEL_") for c in children if isinstance(c, str)]
    return found


def _png_of(model: dict, first_pictures: dict) -> str | None:
    """The base64 PNG an ImageModel first showed (else holds at the end), if any."""
    if model.get("model_name") != "ImageModel":
        return None
    if model.get("model_id") in first_pictures:
        return first_pictures[model["model_id"]]
    for buffer in model.get("buffers", []):
        if buffer.get("path") == ["value"] and buffer.get("encoding") == "base64":
            return buffer["data"] or None
    return None


def _control_names(models: list[dict]) -> list[str]:
    names = []
    for model in models:
        state = model.get("state", {})
        name = model.get("model_name", "")
        label = (state.get("description") or "").strip()
        if label and any(kind in name for kind in _CONTROLS):
            names.append(html.unescape(label))
    return names


def _progress_line(models: list[dict]) -> str | None:
    bars = [m for m in models if m.get("model_name") in ("FloatProgressModel", "IntProgressModel")]
    if not bars:
        return None
    state = bars[0]["state"]
    labels = [m["state"].get("value", "") for m in models if m.get("model_name") == "HTMLModel"]
    label = html.unescape(labels[0] if labels else "").replace("\u2007", " ")
    label = re.sub(r"<[^>]+>", "", label)
    label = re.sub(r"\s*\d+%\s*$", "", label).strip() or "progress"
    done, total = state.get("value", 0), state.get("max", 0)
    return f"{label} {done:.0f}/{total:.0f}"


def _markdown_output(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("display_data", data={"text/markdown": text, "text/plain": text})


def static_outputs(
    models: dict, model_id: str, first_pictures: dict | None = None
) -> list[nbformat.NotebookNode]:
    """What one widget view becomes on the site (see the module docstring)."""
    tree = _descendants(models, model_id)
    controls = _control_names(tree)
    moved_by = f", where its controls ({', '.join(controls)}) redraw it" if controls else ""
    pictures = [png for png in (_png_of(m, first_pictures or {}) for m in tree) if png]
    if pictures:
        outputs = [
            nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "widget"})
            for png in pictures
        ]
        line = f"*A static picture of this widget as it first appears. It is {LIVE}{moved_by}.*"
        return [*outputs, _markdown_output(line)]
    progress = _progress_line(tree)
    if progress is not None:
        return [nbformat.v4.new_output("stream", name="stdout", text=progress + "\n")]
    named = f" ({', '.join(controls)})" if controls else ""
    return [_markdown_output(f"*An interactive widget{named}: it is {LIVE}.*")]


def make_widgets_static(nb) -> int:
    """Replace every widget view output of ``nb`` in place; returns how many were replaced."""
    models = _models(nb)
    first_pictures = nb.metadata.get(FIRST_PICTURES, {})
    replaced = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        new_outputs = []
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(VIEW)
            if view is None:
                new_outputs.append(output)
                continue
            new_outputs.extend(static_outputs(models, view["model_id"], first_pictures))
            replaced += 1
        cell.outputs = new_outputs
    nb.metadata.pop("widgets", None)
    nb.metadata.pop(FIRST_PICTURES, None)
    return replaced
