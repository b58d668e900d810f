"""The few-shot episode explorer of chapter 5: one test episode, before and after adaptation.

The data and the conv net live in :mod:`metalearn_lib.datasets` and
:mod:`metalearn_lib.models`.
"""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets as widgets
import torch
from torch import Tensor, nn

from ...checks import Params, check_int, check_model_and_params
from ...datasets import FewShotTasks
from ...tasks import TaskBatch
from .base import FigureExplorer

__all__ = ["FewShotExplorer"]


class FewShotExplorer(FigureExplorer):
    """One test episode: support images, and query predictions before and after adaptation.

    Column ``j`` of the picture is the episode's class with label ``j``: its
    support images on top (the only labelled images the learner gets), then
    the query images. Above each query image: the label predicted *before*
    adaptation -> the label predicted *after* ``steps`` gradient steps on the
    support set; green when the second is right, red when it is wrong.

    Parameters
    ----------
    model : nn.Module
        An N-way classifier, e.g. ``ConvNet(out_features=5)``.
    initializations : dict of label to parameter dict
        The starting points to compare, e.g. ``{"MAML": theta, "pretrained": theta_pre}``.
    tasks : FewShotTasks
        Where episodes come from (the meta-test classes).
    shots, queries : int
        Support and query images per class (``queries`` are shown).
    steps : int
        Initial number of adaptation steps.
    inner_lr : float or dict of label to float
        Learning rate of adaptation, one for all or one per initialization.
    seed : int
        Episode number ``i`` is always the same episode for the same seed.
    max_steps, max_shots : int
        Largest values of the sliders.

    Attributes
    ----------
    episode_picker : ipywidgets.BoundedIntText
        Which episode (CSS class ``few-shot-episode``); ``new_button`` moves to the next.
    start_dropdown : ipywidgets.Dropdown
        Which initialization to adapt (``few-shot-start``).
    shots_slider, steps_slider : ipywidgets.IntSlider
        Support images per class, adaptation steps (``few-shot-shots``, ``few-shot-steps``).
    predictions_before, predictions_after : Tensor
        Predicted labels of the query images (class-major, like ``batch.query_y``).
    accuracy_before, accuracy_after : float
        Fraction of query images labelled correctly.
    class_names : list of str
        The episode's classes, in label order.
    """

    figsize = (9.0, 5.8)

    def __init__(
        self,
        model: nn.Module,
        initializations: Mapping[str, Params],
        tasks,
        *,
        shots: int = 1,
        queries: int = 3,
        steps: int = 1,
        inner_lr: float | Mapping[str, float] = 0.4,
        seed: int = 0,
        max_steps: int = 10,
        max_shots: int = 5,
    ) -> None:
        if not isinstance(tasks, FewShotTasks):
            raise TypeError(f"tasks must be a FewShotTasks, got {type(tasks).__name__}")
        if not isinstance(initializations, Mapping) or not initializations:
            raise TypeError("initializations must be a non-empty dict {label: parameter dict}")
        for params in initializations.values():
            check_model_and_params(model, params)
        check_int("max_shots", max_shots, 1)
        check_int("max_steps", max_steps, 1)
        if not 1 <= check_int("shots", shots, 1) <= max_shots:
            raise ValueError(f"shots must be in [1, max_shots={max_shots}], got {shots}")
        if not 0 <= check_int("steps", steps, 0) <= max_steps:
            raise ValueError(f"steps must be in [0, max_steps={max_steps}], got {steps}")
        check_int("queries", queries, 1)
        check_int("seed", seed, 0)
        if max_shots + queries > int(tasks.classes.counts.min()):
            raise ValueError(
                f"max_shots + queries = {max_shots + queries} is more images than the smallest "
                f"class has ({int(tasks.classes.counts.min())})"
            )
        if isinstance(inner_lr, Mapping):
            rates = dict(inner_lr)
        else:
            rates = dict.fromkeys(initializations, inner_lr)
        if set(rates) != set(initializations) or any(
            isinstance(r, bool) or not isinstance(r, int | float) or not r > 0
            for r in rates.values()
        ):
            raise ValueError(
                "inner_lr must be a positive number or a dict with a positive number per "
                f"initialization {list(initializations)}, got {inner_lr!r}"
            )
        super().__init__("few-shot-plot")
        self.model, self.tasks = model, tasks
        self.initializations = {k: dict(v) for k, v in initializations.items()}
        self.inner_lr = {k: float(v) for k, v in rates.items()}
        self.queries, self.seed = queries, seed

        self.episode_picker = widgets.BoundedIntText(
            value=0, min=0, max=10**6, description="episode", layout=widgets.Layout(width="170px")
        )
        self.episode_picker.add_class("few-shot-episode")
        self.new_button = widgets.Button(description="new episode", icon="refresh")
        self.new_button.add_class("few-shot-new")
        self.new_button.on_click(lambda _: self.new_episode())
        self.start_dropdown = widgets.Dropdown(
            options=list(self.initializations), description="start from"
        )
        self.start_dropdown.add_class("few-shot-start")
        self.shots_slider = widgets.IntSlider(
            value=shots, min=1, max=max_shots, description="shots K"
        )
        self.shots_slider.add_class("few-shot-shots")
        self.steps_slider = widgets.IntSlider(
            value=steps, min=0, max=max_steps, description="steps"
        )
        self.steps_slider.add_class("few-shot-steps")
        self.summary = widgets.HTML(value="")
        self.summary.add_class("few-shot-summary")
        for control in (
            self.episode_picker,
            self.start_dropdown,
            self.shots_slider,
            self.steps_slider,
        ):
            control.observe(lambda _: self.update(), names="value")
        self.update()

    @property
    def ui(self) -> widgets.Widget:
        top = widgets.HBox([self.episode_picker, self.new_button, self.start_dropdown])
        sliders = widgets.HBox([self.shots_slider, self.steps_slider])
        return widgets.VBox([top, sliders, self.image, self.summary])

    def new_episode(self) -> None:
        """Move to the next episode (redraws through the episode picker)."""
        self.episode_picker.value = self.episode_picker.value + 1

    def episode(self, index: int, shots: int):
        """Episode ``index`` with ``shots`` support images per class: ``(batch, class indices)``."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        dtype = next(iter(next(iter(self.initializations.values())).values())).dtype
        # Draw the largest support set and keep its first `shots` images per class,
        # so the query images stay the same when the shots slider moves.
        most = self.shots_slider.max
        batch, classes = self.tasks.sample_with_classes(
            1, most, self.queries, generator=generator, dtype=dtype
        )
        n = self.tasks.ways
        keep = (torch.arange(n * most) % most) < shots
        return (
            TaskBatch(
                batch.support_x[:, keep], batch.support_y[:, keep], batch.query_x, batch.query_y
            ),
            classes[0],
        )

    def update(self) -> None:
        """Adapt the chosen initialization to the current episode and redraw."""
        import torch.nn.functional as F
        from torch.func import functional_call

        from ...algorithms import adapt

        label = self.start_dropdown.value
        shots, steps = self.shots_slider.value, self.steps_slider.value
        batch, classes = self.episode(self.episode_picker.value, shots)
        self.batch = batch
        self.class_names = [self.tasks.classes.names[i] for i in classes.tolist()]
        theta = self.initializations[label]
        sx, sy, qx, qy = batch.support_x[0], batch.support_y[0], batch.query_x[0], batch.query_y[0]
        phi = adapt(
            self.model,
            theta,
            sx,
            sy,
            steps=steps,
            lr=self.inner_lr[label],
            loss_fn=F.cross_entropy,
        )
        buffers = dict(self.model.named_buffers())
        with torch.no_grad():
            before = functional_call(self.model, (theta, buffers), (qx,)).argmax(-1)
            after = functional_call(self.model, (phi, buffers), (qx,)).argmax(-1)
        self.predictions_before, self.predictions_after = before, after
        self.accuracy_before = (before == qy).float().mean().item()
        self.accuracy_after = (after == qy).float().mean().item()
        self._draw(sx, qx, qy, shots, label, steps)
        self.summary.value = (
            f"<b>{label}</b>: query accuracy {self.accuracy_before:.0%} before adaptation, "
            f"<b>{self.accuracy_after:.0%}</b> after {steps} step{'s' * (steps != 1)} "
            f"on {shots} image{'s' * (shots != 1)} per class (chance: {1 / self.tasks.ways:.0%})"
        )

    def _draw(self, sx: Tensor, qx: Tensor, qy: Tensor, shots: int, label: str, steps: int):
        # One mosaic image in one axes (fast to redraw): column j = label j,
        # support rows on top, a gap, then the query rows.
        from matplotlib.patches import Rectangle

        n, q = self.tasks.ways, self.queries
        height, width = sx.shape[-2:]
        pad, gap = 2, 6
        cell_h, cell_w = height + 3 * pad, 2 * width + 4 * pad  # room for the labels
        rows = shots + q
        mosaic = torch.full((rows * cell_h + gap, n * cell_w), float("nan"))

        def place(image: Tensor, row: int, col: int) -> tuple[int, int]:
            top = row * cell_h + (gap if row >= shots else 0) + 2 * pad
            left = col * cell_w + (cell_w - width) // 2
            mosaic[top : top + height, left : left + width] = image.float()
            return top, left

        self.figure.clear()
        ax = self.figure.add_axes((0.1, 0.02, 0.88, 0.84))
        texts = []
        for j in range(n):
            for r in range(shots):
                place(sx[j * shots + r, 0], r, j)
            for r in range(q):
                i = j * q + r
                top, left = place(qx[i, 0], shots + r, j)
                right = bool(self.predictions_after[i] == qy[i])
                color = "tab:green" if right else "tab:red"
                texts.append((left + width / 2, top - 0.8, i, color))
                ax.add_patch(
                    Rectangle((left - 0.5, top - 0.5), width, height, fill=False, ec=color, lw=1.5)
                )
        ax.imshow(mosaic.numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        for x, y, i, color in texts:
            ax.text(
                x,
                y,
                f"{int(self.predictions_before[i])} → {int(self.predictions_after[i])}",
                ha="center",
                va="bottom",
                fontsize=8,
                color=color,
            )
        ax.set_xticks([j * cell_w + cell_w / 2 - 0.5 for j in range(n)])
        ax.set_xticklabels([f"label {j}\n{name}" for j, name in enumerate(self.class_names)])
        ax.xaxis.tick_top()
        ax.tick_params(length=0, labelsize=8)
        ax.set_yticks([shots * cell_h / 2, shots * cell_h + gap + q * cell_h / 2])
        ax.set_yticklabels(["support", "query"], rotation=90, va="center")
        for spine in ax.spines.values():
            spine.set_visible(False)
        self.figure.suptitle(
            f"{label}: predicted label before → after {steps} steps "
            f"(query accuracy {self.accuracy_before:.0%} → {self.accuracy_after:.0%})",
            fontsize=10,
        )
        self._show()
