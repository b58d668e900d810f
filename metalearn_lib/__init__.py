"""metalearn_lib: MAML, FOMAML and Reptile in a few readable files.

The layers, from the bottom up (each imports only those below it):

* :mod:`~metalearn_lib.tasks` - task distributions (sinusoids and friends);
* :mod:`~metalearn_lib.models` - plain ``nn.Module``s;
* :mod:`~metalearn_lib.algorithms` - ``adapt`` and ``meta_gradient``;
* :mod:`~metalearn_lib.training` - ``meta_train``, ``pretrain``, ``evaluate``.

The most used names are re-exported here.
"""

from .algorithms import (
    ALGORITHMS,
    adapt,
    meta_gradient,
    meta_gradient_and_loss,
    mse_loss,
    task_loss,
)
from .datasets import (
    ClassImages,
    FewShotTasks,
    PooledClasses,
    accuracy,
    digits_meta_split,
    load_digits,
    load_omniglot,
)
from .models import MLP, ConvNet, parameters_of
from .tasks import (
    DriftingSinusoidTasks,
    FunctionBatch,
    FunctionFamilyTasks,
    SinusoidTasks,
    TaskBatch,
)
from .training import Evaluation, History, TrainResult, evaluate, meta_train, pretrain

__all__ = [
    "ALGORITHMS",
    "MLP",
    "ClassImages",
    "ConvNet",
    "FewShotTasks",
    "PooledClasses",
    "accuracy",
    "digits_meta_split",
    "load_digits",
    "load_omniglot",
    "DriftingSinusoidTasks",
    "Evaluation",
    "FunctionBatch",
    "FunctionFamilyTasks",
    "History",
    "SinusoidTasks",
    "TaskBatch",
    "TrainResult",
    "adapt",
    "evaluate",
    "meta_gradient",
    "meta_gradient_and_loss",
    "meta_train",
    "mse_loss",
    "parameters_of",
    "pretrain",
    "task_loss",
]
