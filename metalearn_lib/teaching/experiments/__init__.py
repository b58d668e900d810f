"""The experiments of chapter 4: where MAML runs into its limits, one module per experiment.

Each function runs one small, seeded experiment and returns a result object
holding every number it measured (and a ``summary()`` table of them). Nothing
here draws, uses widgets or interprets: the figures are in
:mod:`metalearn_lib.teaching.figures_limitations`, the task-diversity explorer
in :mod:`metalearn_lib.teaching.widgets`, and what the numbers mean is written
in the chapter. So these runs also work headless in tests and scripts.

* :func:`cost_of_second_order` (:mod:`.second_order`) - time and memory of one
  meta-step against inner steps, and what the first-order methods give up on
  the same budget;
* :func:`diversity_sweep` and :func:`train_at_diversity` (:mod:`.diversity`) -
  MAML against the pretrain baseline as the task distribution widens;
* :func:`dissimilar_families` (:mod:`.families`) - one initialization shared
  by very different function families against one per family;
* :func:`nonstationary_drift` (:mod:`.drift`) - the task distribution moves
  during meta-training: what happens to early and late tasks;
* :func:`hyperparameter_grid` and :func:`tune_meta_lr` (:mod:`.hyperparameters`) -
  final loss over inner steps, inner learning rate, meta-optimizer (each at
  its own tuned rate) and meta-batch size;
* :func:`architecture_cost_sweep` (:mod:`.second_order`) - time and memory of
  a meta-step as the network gets deeper or wider;
* :func:`dissimilar_distributions` (:mod:`.nonconvergence`) - distributions
  so dissimilar that meta-training stalls or adaptation blows up;
* :func:`maml_stability` (:mod:`.stability`) - MAML trained with one inner
  step and adapted with more: curvature against 2/alpha, blown-up tasks.

Every result of these has ``claims()``: the numbers the chapter's text relies
on, which its claim test reads.

All experiments share one recipe, :class:`~.recipe.Settings`; :data:`CHAPTER`
is the chapter's. The same settings and seeds always give the same numbers,
except measured times.
"""

from .diversity import (
    DiversityRun,
    DiversitySweep,
    diversity_sweep,
    task_distribution,
    train_at_diversity,
)
from .drift import DriftResult, nonstationary_drift
from .families import FamilyComparison, dissimilar_families
from .hyperparameters import GridResult, MetaLrTuning, hyperparameter_grid, tune_meta_lr
from .nonconvergence import NonConvergence, dissimilar_distributions
from .recipe import CHAPTER, AlgorithmRun, ClockedTasks, FitCurves, Settings, adapted_fits
from .second_order import (
    ArchitectureCost,
    CostOfSecondOrder,
    architecture_cost_sweep,
    cost_of_second_order,
)
from .stability import StabilityResult, largest_curvature, maml_stability

__all__ = [
    "CHAPTER",
    "AlgorithmRun",
    "ArchitectureCost",
    "ClockedTasks",
    "CostOfSecondOrder",
    "DiversityRun",
    "DiversitySweep",
    "DriftResult",
    "FamilyComparison",
    "FitCurves",
    "GridResult",
    "MetaLrTuning",
    "NonConvergence",
    "Settings",
    "StabilityResult",
    "adapted_fits",
    "architecture_cost_sweep",
    "cost_of_second_order",
    "dissimilar_distributions",
    "dissimilar_families",
    "diversity_sweep",
    "hyperparameter_grid",
    "largest_curvature",
    "maml_stability",
    "nonstationary_drift",
    "task_distribution",
    "train_at_diversity",
    "tune_meta_lr",
]
