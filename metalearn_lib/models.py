"""Plain PyTorch models used by the course.

Nothing here knows about meta-learning: MAML is *model-agnostic*, and the
algorithms in :mod:`metalearn_lib.algorithms` accept any ``nn.Module``. They
take the module's parameters as a dictionary (see :func:`parameters_of`) and
call the module functionally, so the module itself is never modified.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .checks import check_choice, check_int

__all__ = ["CONV_NORMS", "MLP", "ConvNet", "parameters_of"]


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


# ---------------------------------------------------------------------------
# A small convolutional network for few-shot image classification (chapter 5).
# ---------------------------------------------------------------------------

#: Normalization layers :class:`ConvNet` accepts.
CONV_NORMS = (None, "group", "batch")


class ConvNet(nn.Module):
    """The MAML paper's 4-block convolutional network, scaled to small images.

    Each block is a 3x3 convolution (padding 1), an optional normalization,
    a ReLU and a 2x2 max-pool; pooling stops once the feature map is 1x1, so
    the same recipe fits 8x8 digits and 28x28 Omniglot characters. A linear
    layer (the *head*) maps the flattened features to ``out_features`` logits.
    Finn et al. (2017, section 5.2) use 4 blocks of 64 filters with batch
    normalization on 28x28 Omniglot.

    The network keeps no running statistics, so it can be called with
    ``torch.func.functional_call`` inside ``torch.func.vmap`` (one task per
    vmap slice), as :mod:`metalearn_lib.algorithms` does.

    Parameters
    ----------
    in_channels : int
        Channels of the input images (1 for grey-scale).
    out_features : int
        Number of classes N of an N-way task (the logits).
    image_size : int
        Height and width of the (square) input images.
    hidden : int
        Filters in every convolution (default 32).
    blocks : int, optional
        Number of conv blocks. Default: as many as it takes the 2x2 pools to
        bring the image down to 1x1, at most 4 (4 for 28x28 as in the paper,
        3 for 8x8).
    norm : {"batch", "group", None}
        ``"batch"`` (default): batch normalization with *batch* statistics
        only (``track_running_stats=False``), as in the MAML code; the
        statistics come from whatever batch the net is called on (a task's
        support set while adapting, its query set when predicting: the query
        images are judged together, *transductively*). ``"group"``: one group
        per image (a layer norm over channels and positions); each image is
        normalized on its own. ``None``: no normalization (on the 8x8 digits
        it learns very slowly with the default initialization).
    seed : int, optional
        If given, the weights are initialised from this seed without touching
        PyTorch's global random state, so the same seed gives the same model.

    Examples
    --------
    >>> net = ConvNet(out_features=5, image_size=8, seed=0)
    >>> net(torch.zeros(10, 1, 8, 8)).shape
    torch.Size([10, 5])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_features: int = 5,
        *,
        image_size: int = 8,
        hidden: int = 32,
        blocks: int | None = None,
        norm: str | None = "batch",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if blocks is None:
            blocks, size = 0, image_size if isinstance(image_size, int) else 1
            while size > 1 and blocks < 4:
                blocks, size = blocks + 1, size // 2
            blocks = max(blocks, 1)
        for name, value in [
            ("in_channels", in_channels),
            ("out_features", out_features),
            ("image_size", image_size),
            ("hidden", hidden),
            ("blocks", blocks),
        ]:
            check_int(name, value, 1)
        check_choice("norm", norm, CONV_NORMS)
        self.in_channels, self.out_features = in_channels, out_features
        self.image_size, self.hidden, self.blocks, self.norm = image_size, hidden, blocks, norm
        layers: list[nn.Module] = []
        size, channels = image_size, in_channels
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            for _ in range(blocks):
                layers.append(nn.Conv2d(channels, hidden, kernel_size=3, padding=1))
                if norm == "group":
                    layers.append(nn.GroupNorm(1, hidden))
                elif norm == "batch":
                    layers.append(nn.BatchNorm2d(hidden, track_running_stats=False))
                layers.append(nn.ReLU())
                if size > 1:
                    layers.append(nn.MaxPool2d(2))
                    size //= 2
                channels = hidden
            self.features = nn.Sequential(*layers, nn.Flatten())
            self.head = nn.Linear(hidden * size * size, out_features)

    def forward(self, x: Tensor) -> Tensor:
        """Map images ``[batch, in_channels, H, W]`` to logits ``[batch, out_features]``."""
        if x.dim() != 4 or x.shape[1:] != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(
                f"ConvNet expects images of shape [batch, {self.in_channels}, "
                f"{self.image_size}, {self.image_size}], got {list(x.shape)}"
            )
        return self.head(self.features(x))

    def transfer(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """This network's parameter dict with the body taken from ``params``.

        ``params`` come from a ConvNet of the same shape except, possibly, its
        number of classes (e.g. one pretrained on all 28 meta-training classes).
        Every feature layer is copied; the head is new and set to zero, so the
        network starts by predicting all N classes with equal probability and
        fine-tuning learns the head (and then the body) from the support set.
        This is the *pretrain, then fine-tune* baseline.
        """
        own = parameters_of(self)
        body = [name for name in own if not name.startswith("head.")]
        missing = [name for name in body if name not in params]
        if missing:
            raise ValueError(f"params lack the feature layers {missing}")
        for name in body:
            if params[name].shape != own[name].shape:
                raise ValueError(
                    f"params[{name!r}] has shape {list(params[name].shape)}, "
                    f"this network expects {list(own[name].shape)}"
                )
        out = {name: params[name].detach().clone().requires_grad_(True) for name in body}
        for name in own:
            if name.startswith("head."):
                out[name] = torch.zeros_like(own[name]).requires_grad_(True)
        return out
