"""metalearn_lib: MAML and its variants in a few readable files.

Three parts, told apart by the folder listing:

* the **core** (the modules at the top of the package; no matplotlib, no
  widgets; runs headless in graders and benchmarks), from the bottom up,
  each importing only those below it:

  - :mod:`~metalearn_lib.checks` - shared types (``Params``, ``LossFn``) and argument checks;
  - :mod:`~metalearn_lib.tasks` - task distributions (sinusoids and friends);
  - :mod:`~metalearn_lib.datasets` - few-shot image episodes;
  - :mod:`~metalearn_lib.models` - plain ``nn.Module``s;
  - :mod:`~metalearn_lib.adaptation` - the inner loop: ``adapt``, ``task_loss``,
    ``adaptation_trajectory``;
  - :mod:`~metalearn_lib.algorithms` - MAML, FOMAML, Reptile, the registry
    ``DIRECTIONS`` of algorithms, ``meta_gradient``;
  - :mod:`~metalearn_lib.variants` - iMAML, ANIL, Meta-SGD, MAML++ (registered
    on import of ``algorithms``);
  - :mod:`~metalearn_lib.compiled` - the ``torch.compile`` fast path of a meta-step;
  - :mod:`~metalearn_lib.training` - ``meta_train``, ``pretrain``, ``evaluate``;
  - :mod:`~metalearn_lib.protonets` - Prototypical Networks, the metric-learning baseline;
  - :mod:`~metalearn_lib.reference` - the same maths as per-task loops;
  - :mod:`~metalearn_lib.cost` - time and memory of a meta-step;

* :mod:`metalearn_lib.teaching` - the chapters' experiments, figures, widgets
  and self-checks (built on the core);
* :mod:`metalearn_lib.grading` - the question engine and the graders (its
  question engine imports no torch).

The most used names of the core are re-exported here. They are imported on
first use (PEP 562), so ``import metalearn_lib.grading.quiz`` does not pay
for importing torch: a graded quiz notebook then runs in about a second.
"""

from __future__ import annotations

import importlib

# Where each re-exported name lives.
_EXPORTS = {
    "adaptation": ("adapt", "adaptation_trajectory", "mse_loss", "task_loss"),
    "algorithms": (
        "ALGORITHMS",
        "DIRECTIONS",
        "algorithm_label",
        "check_algorithm",
        "meta_gradient",
        "meta_gradient_and_loss",
        "register_algorithm",
        "unregister_algorithm",
    ),
    "checks": ("Params", "LossFn", "ci95", "flatten", "unflatten"),
    "datasets": (
        "ClassImages",
        "FewShotTasks",
        "PooledClasses",
        "accuracy",
        "digits_meta_split",
        "load_digits",
        "load_omniglot",
    ),
    "models": ("MLP", "ConvNet", "parameters_of"),
    "tasks": (
        "DriftingSinusoidTasks",
        "FunctionBatch",
        "FunctionFamilyTasks",
        "SinusoidTasks",
        "TaskBatch",
    ),
    "training": (
        "Evaluation",
        "History",
        "TrainResult",
        "evaluate",
        "linear_decay",
        "meta_train",
        "pretrain",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'metalearn_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
