"""Plain PyTorch models used by the course.

Nothing here knows about meta-learning: MAML is *model-agnostic*, and the
algorithms in :mod:`metalearn_lib.algorithms` accept any ``nn.Module``. They
take the module's parameters as a dictionary (see :func:`parameters_of`) and
call the module functionally, so the module itself is never modified.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MLP", "parameters_of"]


class MLP(nn.Module):
    """A fully connected ReLU network; defaults to the MAML paper's 1-40-40-1.

    Parameters
    ----------
    in_features, out_features : int
        Input and output sizes.
    hidden : tuple of int
        Width of each hidden layer (default ``(40, 40)``).
    seed : int, optional
        If given, the weights are initialised from this seed without touching
        PyTorch's global random state, so the same seed gives the same model.
    """

    def __init__(
        self,
        in_features: int = 1,
        out_features: int = 1,
        hidden: tuple[int, ...] = (40, 40),
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"layer sizes must be positive ints, got {sizes}")
        layers: list[nn.Module] = []
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
                layers.append(nn.Linear(a, b))
                if i < len(sizes) - 2:
                    layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``[..., in_features]`` to ``[..., out_features]``."""
        return self.net(x)


def parameters_of(model: nn.Module) -> dict[str, Tensor]:
    """A detached copy of the model's parameters, as a ``{name: tensor}`` dict.

    This is the form the meta-learning functions work with: ``theta`` in the
    maths. The copies require grad, so an ordinary optimizer can update them.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return {name: p.detach().clone().requires_grad_(True) for name, p in model.named_parameters()}
