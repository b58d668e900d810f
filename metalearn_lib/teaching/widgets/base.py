"""The base of every chapter explorer: a matplotlib figure shown as a fixed-size PNG widget.

An explorer is a small class: its controls are ordinary ipywidgets, their
changes are handled with ``observe``, and the picture is a PNG in a
``widgets.Image``. The logic runs without a browser: a test sets a control's
``.value`` and reads the matplotlib figure (``explorer.figure``) or the
numbers the explorer keeps. Controls carry stable ``description``s and CSS
classes (``_dom_classes``) so a browser test can find them.
"""

from __future__ import annotations

import ipywidgets as widgets
from matplotlib.figure import Figure

from ..figures import figure_png

__all__ = ["FigureExplorer", "FixedMarginFigure"]


class FixedMarginFigure(Figure):
    """A Figure whose ``clear()`` keeps the margins set with ``subplots_adjust``.

    (A plain Figure resets them to the defaults on every clear, which would
    change the layout between the first picture and the redraws.)
    """

    def clear(self, keep_observers: bool = False) -> None:
        names = ("left", "right", "bottom", "top", "wspace", "hspace")
        margins = {name: getattr(self.subplotpars, name) for name in names}
        super().clear(keep_observers)
        self.subplots_adjust(**margins)


class FigureExplorer:
    """Base: a matplotlib Figure shown as a fixed-size PNG image widget."""

    figsize = (9.0, 3.4)
    dpi = 80

    def __init__(self, image_class: str) -> None:
        # Fixed margins, no layout engine: a redraw stays fast and the picture keeps its size.
        self.figure = FixedMarginFigure(figsize=self.figsize)
        self.figure.subplots_adjust(left=0.07, right=0.98, bottom=0.17, top=0.9, wspace=0.25)
        width, height = (int(round(s * self.dpi)) for s in self.figsize)
        self.image = widgets.Image(
            format="png",
            layout=widgets.Layout(width=f"{width}px", height=f"{height}px"),
        )
        self.image.add_class(image_class)
        #: How many times the picture was redrawn (tests and browser checks).
        self.renders = 0

    def _show(self) -> None:
        self.image.value = figure_png(self.figure, dpi=self.dpi)
        self.renders += 1

    @property
    def ui(self) -> widgets.Widget:  # pragma: no cover - overridden
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        return self.ui._repr_mimebundle_(**kwargs)
