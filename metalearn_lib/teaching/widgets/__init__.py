"""Interactive explorers for the chapters (ipywidgets 8 + matplotlib), one module per chapter topic.

* :class:`TaskSampler` (chapter 1), :class:`InnerStepsExplorer` (chapter 2)
  in :mod:`.sinusoid`;
* :class:`DirectionsExplorer` (chapter 3) in :mod:`.directions`;
* :class:`CostLab` (chapter 3) in :mod:`.cost_lab`;
* :class:`TaskDiversityExplorer` (chapter 4) in :mod:`.diversity`;
* :class:`FewShotExplorer` (chapter 5) in :mod:`.few_shot`;
* their common base, :class:`~.base.FigureExplorer`, in :mod:`.base`.

Show one in a notebook by leaving it as the last expression of a cell.
"""

from .cost_lab import CostLab
from .directions import DirectionsExplorer
from .diversity import DIVERSITY_FAMILY_CHOICES, TaskDiversityExplorer
from .few_shot import FewShotExplorer
from .sinusoid import InnerStepsExplorer, TaskSampler

__all__ = [
    "DIVERSITY_FAMILY_CHOICES",
    "CostLab",
    "DirectionsExplorer",
    "FewShotExplorer",
    "InnerStepsExplorer",
    "TaskDiversityExplorer",
    "TaskSampler",
]
