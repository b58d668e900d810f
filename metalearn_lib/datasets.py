"""Few-shot image classification: N-way K-shot tasks from a set of image classes.

An *N-way K-shot* task (an *episode*) picks N classes at random, gives the
learner K labelled images of each (the support set) and asks it to label
fresh images of the same N classes (the query set). Labels are 0..N-1 *per
episode*: class "7" may be label 2 in one episode and label 0 in the next,
so a network cannot memorise classes; it has to learn from the support set.
Meta-training and meta-testing use disjoint classes, so the test measures
learning of classes never seen before.

What is here:

* :class:`ClassImages` - a class-indexed image collection (the images of
  each class, and the class names);
* :func:`load_digits` and :func:`digits_meta_split` - the offline default:
  scikit-learn's 8x8 handwritten digits, with rotations by 90, 180 and 270
  degrees counted as new classes (as Finn et al. (2017) do for Omniglot):
  10 digits x 4 rotations = 40 classes;
* :func:`load_omniglot` - the standard Omniglot folder layout, for those who
  have the data (nothing is downloaded);
* :class:`FewShotTasks` - samples N-way K-shot episodes as a
  :class:`~metalearn_lib.tasks.TaskBatch`, with the same ``sample`` method
  as :class:`~metalearn_lib.tasks.SinusoidTasks`, so
  :func:`~metalearn_lib.training.meta_train` and
  :func:`~metalearn_lib.training.evaluate` work unchanged with
  ``loss_fn=torch.nn.functional.cross_entropy``;
* :class:`PooledClasses` - batches of images from all classes with their
  global labels, for the ordinary-training baseline
  (:func:`~metalearn_lib.training.pretrain`);
* :func:`accuracy` - the fraction of correctly labelled images.

About the digits data
---------------------
``sklearn.datasets.load_digits`` ships inside the scikit-learn package
(BSD-3-Clause licence), so nothing is downloaded. Its documentation says the
data is "a copy of the test set of the UCI ML hand-written digits datasets":
*Optical Recognition of Handwritten Digits* by E. Alpaydin and C. Kaynak
(1998), https://archive.ics.uci.edu/dataset/80 (doi:10.24432/C50P49), which the
UCI Machine Learning Repository distributes under CC BY 4.0. It holds 1797
images, 8x8 pixels with values 0..16 (counts of ink pixels in 4x4 blocks of
a 32x32 bitmap), about 180 per digit, written by 13 people. Here pixel values
are divided by 16, so they lie in [0, 1].

Caveat: some rotated classes look alike (a 6 turned 180 degrees is a 9; 0, 1
and 8 look much the same upside down). The default split keeps all of these
in meta-training and meta-tests on the digits 2, 5 and 7, whose 12 rotated
classes are all distinct.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .checks import check_int
from .tasks import TaskBatch

__all__ = [
    "DIGIT_ROTATIONS",
    "ClassImages",
    "FewShotTasks",
    "PooledClasses",
    "accuracy",
    "digits_meta_split",
    "load_digits",
    "load_omniglot",
]

#: Rotations (degrees, counter-clockwise) that turn each digit into 4 classes.
DIGIT_ROTATIONS: tuple[int, ...] = (0, 90, 180, 270)
#: Meta-test digits of :func:`digits_meta_split` (all their rotations are distinct).
DEFAULT_TEST_DIGITS: tuple[int, ...] = (2, 5, 7)


def _check_rotations(rotations: Sequence[int]) -> tuple[int, ...]:
    rotations = tuple(rotations)
    if not rotations or any(r not in DIGIT_ROTATIONS for r in rotations):
        raise ValueError(
            f"rotations must be a non-empty subset of {DIGIT_ROTATIONS}, got {rotations}"
        )
    if len(set(rotations)) != len(rotations):
        raise ValueError(f"rotations must not repeat, got {rotations}")
    return rotations


def accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """Fraction of images whose highest logit is the true label.

    Parameters
    ----------
    logits : Tensor
        ``[n, N]`` scores, one row per image.
    labels : Tensor
        ``[n]`` integer labels in ``0..N-1``.

    Returns
    -------
    Tensor
        A scalar in [0, 1] in the dtype of ``logits``. Works inside
        ``torch.func.vmap``, so it can be passed to
        :func:`~metalearn_lib.training.evaluate` as ``metric_fn``.
    """
    return (logits.argmax(dim=-1) == labels).to(logits.dtype).mean()


@dataclass(frozen=True)
class ClassImages:
    """A class-indexed image collection.

    Classes may hold different numbers of images; they are stored padded to
    the largest class, with ``counts`` saying how many are real.

    Attributes
    ----------
    images : Tensor
        ``[C, M, channels, H, W]`` float32; class ``c`` owns
        ``images[c, :counts[c]]`` (the rest is zero padding).
    counts : Tensor
        ``[C]`` int64, number of images of each class (>= 1).
    names : tuple of str
        A readable name for each class, e.g. ``"7 @ 90"`` or
        ``"Latin/character05"``.
    """

    images: Tensor
    counts: Tensor
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.images, Tensor) or self.images.dim() != 5:
            shape = list(self.images.shape) if isinstance(self.images, Tensor) else None
            raise ValueError(
                f"images must be a tensor [classes, images, channels, H, W], got {shape}"
            )
        num_classes = self.images.shape[0]
        if num_classes == 0:
            raise ValueError("a ClassImages needs at least one class")
        if self.counts.shape != (num_classes,) or self.counts.dtype != torch.int64:
            raise ValueError(f"counts must be an int64 tensor of shape [{num_classes}]")
        if int(self.counts.min()) < 1 or int(self.counts.max()) > self.images.shape[1]:
            raise ValueError(f"counts must lie in 1..{self.images.shape[1]}")
        if len(self.names) != num_classes:
            raise ValueError(f"names must have {num_classes} entries, got {len(self.names)}")
        if len(set(self.names)) != len(self.names):
            raise ValueError("class names must be unique")

    @classmethod
    def from_list(cls, images: Sequence[Tensor], names: Sequence[str]) -> ClassImages:
        """Build from one ``[n_c, channels, H, W]`` tensor per class."""
        if len(images) == 0:
            raise ValueError("images must hold at least one class")
        if len(images) != len(names):
            raise ValueError(f"got {len(images)} classes of images but {len(names)} names")
        shape = tuple(images[0].shape[1:])
        for name, block in zip(names, images):
            if block.dim() != 4 or tuple(block.shape[1:]) != shape or block.shape[0] == 0:
                raise ValueError(
                    f"class {name!r}: images must be a non-empty [n, channels, H, W] tensor "
                    f"of per-image shape {list(shape)}, got {list(block.shape)}"
                )
        counts = torch.tensor([block.shape[0] for block in images], dtype=torch.int64)
        padded = torch.zeros(len(images), int(counts.max()), *shape, dtype=torch.float32)
        for c, block in enumerate(images):
            padded[c, : block.shape[0]] = block.to(torch.float32)
        return cls(padded, counts, tuple(str(n) for n in names))

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        return (
            f"ClassImages({len(self)} classes, {int(self.counts.sum())} images of shape "
            f"{list(self.image_shape)})"
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, H, W)`` of one image."""
        return tuple(self.images.shape[2:])

    def class_images(self, index: int) -> Tensor:
        """The real images ``[n_c, channels, H, W]`` of class ``index``."""
        return self.images[index, : int(self.counts[index])]

    def subset(self, indices: Sequence[int]) -> ClassImages:
        """The classes ``indices`` (in that order) as a new collection."""
        indices = list(indices)
        if not indices or any(not 0 <= i < len(self) for i in indices):
            raise ValueError(
                f"indices must be a non-empty list of class indices 0..{len(self) - 1}"
            )
        index = torch.tensor(indices)
        counts = self.counts[index]
        images = self.images[index, : int(counts.max())]
        return ClassImages(images.clone(), counts.clone(), tuple(self.names[i] for i in indices))


# ---------------------------------------------------------------------------
# The offline default: scikit-learn's 8x8 digits with rotations as classes.
# ---------------------------------------------------------------------------


def load_digits(*, rotations: Sequence[int] = DIGIT_ROTATIONS) -> ClassImages:
    """scikit-learn's 8x8 handwritten digits, each rotation a class of its own.

    Parameters
    ----------
    rotations : sequence of int
        Which of 0, 90, 180, 270 degrees to use; each digit gives one class
        per rotation (default: all four, 40 classes).

    Returns
    -------
    ClassImages
        Classes ordered digit-major (``"0 @ 0"``, ``"0 @ 90"``, ...), images
        ``[1, 8, 8]`` with values in [0, 1]. See the module docstring for
        the data's source and licence.
    """
    rotations = _check_rotations(rotations)
    from sklearn.datasets import load_digits as _sklearn_digits

    bunch = _sklearn_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    targets = torch.as_tensor(bunch.target)
    blocks, names = [], []
    for digit in range(10):
        digit_images = images[targets == digit]
        for angle in rotations:
            blocks.append(torch.rot90(digit_images, k=angle // 90, dims=(2, 3)))
            names.append(f"{digit} @ {angle}")
    return ClassImages.from_list(blocks, names)


def digits_meta_split(
    *,
    test_digits: Sequence[int] = DEFAULT_TEST_DIGITS,
    rotations: Sequence[int] = DIGIT_ROTATIONS,
) -> tuple[ClassImages, ClassImages]:
    """Meta-training and meta-test classes from :func:`load_digits`, split by digit.

    Every rotation of a test digit is a test class, so meta-testing uses
    digits the learner has never seen in any orientation.

    Parameters
    ----------
    test_digits : sequence of int
        Digits held out for meta-testing (default ``(2, 5, 7)``: 12 test
        classes, 28 training classes with all four rotations).
    rotations : sequence of int
        As in :func:`load_digits`.

    Returns
    -------
    (ClassImages, ClassImages)
        ``(meta_train, meta_test)`` with disjoint classes.
    """
    test_digits = tuple(test_digits)
    if (
        not test_digits
        or len(set(test_digits)) != len(test_digits)
        or any(isinstance(d, bool) or d not in range(10) for d in test_digits)
        or len(test_digits) == 10
    ):
        raise ValueError(f"test_digits must be 1 to 9 distinct digits from 0..9, got {test_digits}")
    everything = load_digits(rotations=rotations)
    is_test = [int(name.split(" @ ")[0]) in test_digits for name in everything.names]
    train = [i for i, t in enumerate(is_test) if not t]
    test = [i for i, t in enumerate(is_test) if t]
    return everything.subset(train), everything.subset(test)


# ---------------------------------------------------------------------------
# Omniglot, from the standard folder layout.
# ---------------------------------------------------------------------------

OMNIGLOT_SPLITS = {"background": "images_background", "evaluation": "images_evaluation"}


def load_omniglot(
    root: str | Path,
    split: str = "background",
    *,
    image_size: int = 28,
    rotations: Sequence[int] = (0,),
) -> ClassImages:
    """Load Omniglot (Lake et al., 2015) from its standard folder layout.

    Nothing is downloaded: point ``root`` at a folder that holds the
    unpacked ``images_background/`` (30 alphabets, the usual meta-training
    set) and/or ``images_evaluation/`` (20 alphabets, meta-testing), each
    laid out as ``ALPHABET/CHARACTER/*.png``. Every character is one class.

    Parameters
    ----------
    root : str or Path
        The folder containing ``images_background`` / ``images_evaluation``.
    split : {"background", "evaluation"}
        Which half to load.
    image_size : int
        Images are resized to ``image_size`` x ``image_size`` (the MAML paper
        uses 28).
    rotations : sequence of int
        Rotations (subset of 0, 90, 180, 270) to add as extra classes, as the
        MAML paper does; default ``(0,)``: none.

    Returns
    -------
    ClassImages
        One class per character (times rotations), named
        ``"ALPHABET/CHARACTER"`` (plus ``" @ angle"`` when rotated), images
        ``[1, image_size, image_size]`` with ink = 1 and paper = 0.

    Raises
    ------
    FileNotFoundError
        If ``root`` or the split folder does not exist.
    ValueError
        If the folder is not laid out as described, or an image cannot be read.
    """
    if split not in OMNIGLOT_SPLITS:
        raise ValueError(f"split must be one of {tuple(OMNIGLOT_SPLITS)}, got {split!r}")
    check_int("image_size", image_size, 1)
    rotations = _check_rotations(rotations)
    root = Path(root)
    folder = root / OMNIGLOT_SPLITS[split]
    if not root.is_dir():
        raise FileNotFoundError(
            f"Omniglot root {str(root)!r} is not a folder; it should contain "
            "images_background/ and images_evaluation/ (download them from "
            "https://github.com/brendenlake/omniglot and unzip them there)"
        )
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no {OMNIGLOT_SPLITS[split]}/ folder in {str(root)!r}; expected "
            f"{OMNIGLOT_SPLITS[split]}/ALPHABET/CHARACTER/*.png"
        )
    from PIL import Image, UnidentifiedImageError

    alphabets = sorted(p for p in folder.iterdir() if p.is_dir())
    if not alphabets:
        raise ValueError(f"{str(folder)!r} holds no alphabet folders (ALPHABET/CHARACTER/*.png)")
    blocks, names = [], []
    for alphabet in alphabets:
        characters = sorted(p for p in alphabet.iterdir() if p.is_dir())
        if not characters:
            raise ValueError(f"alphabet folder {str(alphabet)!r} holds no character folders")
        for character in characters:
            files = sorted(character.glob("*.png"))
            if not files:
                raise ValueError(f"character folder {str(character)!r} holds no .png images")
            images = []
            for file in files:
                try:
                    with Image.open(file) as image:
                        grey = image.convert("L").resize(
                            (image_size, image_size), Image.Resampling.LANCZOS
                        )
                        pixels = torch.frombuffer(bytearray(grey.tobytes()), dtype=torch.uint8)
                except (UnidentifiedImageError, OSError) as error:
                    raise ValueError(f"cannot read image {str(file)!r}: {error}") from error
                ink = 1.0 - pixels.to(torch.float32).view(1, image_size, image_size) / 255.0
                images.append(ink)
            stacked = torch.stack(images)
            for angle in rotations:
                blocks.append(torch.rot90(stacked, k=angle // 90, dims=(2, 3)))
                suffix = "" if rotations == (0,) else f" @ {angle}"
                names.append(f"{alphabet.name}/{character.name}{suffix}")
    return ClassImages.from_list(blocks, names)


# ---------------------------------------------------------------------------
# Episode samplers.
# ---------------------------------------------------------------------------


def _draw_examples(
    counts: Tensor, classes: Tensor, per_class: int, generator: torch.Generator | None
) -> Tensor:
    """Distinct random example indices: ``[B, N, per_class]`` for classes ``[B, N]``."""
    width = int(counts.max())
    keys = torch.rand(*classes.shape, width, generator=generator)
    valid = torch.arange(width) < counts[classes].unsqueeze(-1)
    keys = torch.where(valid, keys, torch.full_like(keys, 2.0))  # padding sorts last
    return keys.argsort(dim=-1)[..., :per_class]


class FewShotTasks:
    """N-way K-shot classification episodes drawn from ``classes``.

    Parameters
    ----------
    classes : ClassImages
        Where episodes come from (e.g. the meta-training or the meta-test
        half of :func:`digits_meta_split`).
    ways : int
        Classes per episode, N (default 5).

    Examples
    --------
    >>> train, test = digits_meta_split()
    >>> tasks = FewShotTasks(train, ways=5)
    >>> batch = tasks.sample(4, shots=1, queries=3, generator=torch.Generator().manual_seed(0))
    >>> batch.support_x.shape, batch.query_y.shape
    (torch.Size([4, 5, 1, 8, 8]), torch.Size([4, 15]))
    """

    def __init__(self, classes: ClassImages, ways: int = 5) -> None:
        if not isinstance(classes, ClassImages):
            raise TypeError(f"classes must be a ClassImages, got {type(classes).__name__}")
        check_int("ways", ways, 1)
        if ways > len(classes):
            raise ValueError(
                f"ways={ways} is more than the {len(classes)} classes available; "
                f"use ways <= {len(classes)}"
            )
        self.classes = classes
        self.ways = ways

    def __repr__(self) -> str:
        return f"FewShotTasks({self.ways}-way, from {len(self.classes)} classes)"

    def sample_with_classes(
        self,
        num_tasks: int,
        shots: int,
        queries: int | None = None,
        *,
        generator: torch.Generator | None = None,
        iteration: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[TaskBatch, Tensor]:
        """Like :meth:`sample`, and also which classes each episode used.

        Returns
        -------
        (TaskBatch, Tensor)
            The episodes and a ``[B, N]`` tensor: entry ``[b, label]`` is the
            index into ``classes`` (and ``classes.names``) of episode ``b``'s
            class ``label``.
        """
        check_int("num_tasks", num_tasks, 1)
        check_int("shots", shots, 1)
        queries = shots if queries is None else check_int("queries", queries, 1)
        check_int("iteration", iteration, 0)
        counts = self.classes.counts
        smallest = int(counts.min())
        if shots + queries > smallest:
            raise ValueError(
                f"shots + queries = {shots} + {queries} images per class, but the smallest "
                f"class has only {smallest}; use shots + queries <= {smallest}"
            )
        num_classes, n = len(self.classes), self.ways
        classes = torch.rand(num_tasks, num_classes, generator=generator).argsort(dim=-1)[:, :n]
        examples = _draw_examples(counts, classes, shots + queries, generator)
        images = self.classes.images[classes.unsqueeze(-1), examples]  # [B, N, K+Q, c, H, W]
        labels = torch.arange(n).view(1, n, 1).expand(num_tasks, n, shots + queries)

        def flat(x: Tensor) -> Tensor:  # [B, N, k, ...] -> [B, N*k, ...], class-major
            return x.reshape(num_tasks, -1, *x.shape[3:])

        support_x = flat(images[:, :, :shots]).to(dtype)
        query_x = flat(images[:, :, shots:]).to(dtype)
        support_y = flat(labels[:, :, :shots]).contiguous()
        query_y = flat(labels[:, :, shots:]).contiguous()
        return TaskBatch(support_x, support_y, query_x, query_y), classes

    def sample(
        self,
        num_tasks: int,
        shots: int,
        queries: int | None = None,
        *,
        generator: torch.Generator | None = None,
        iteration: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> TaskBatch:
        """Sample ``num_tasks`` N-way episodes with ``shots`` support images per class.

        Each episode picks N distinct classes at random, labels them
        0..N-1 in random order, and draws ``shots + queries`` distinct images
        of each class: the first ``shots`` form the support set, the rest the
        query set.

        Parameters
        ----------
        num_tasks : int
            Number of episodes B (>= 1).
        shots : int
            Support images per class, K (>= 1).
        queries : int, optional
            Query images per class, Q (>= 1); defaults to ``shots``.
        generator : torch.Generator, optional
            Source of randomness; a seeded one gives the same episodes.
        iteration : int
            Ignored (the class distribution does not drift); accepted so the
            sampler works with :func:`~metalearn_lib.training.meta_train`.
        dtype : torch.dtype
            Floating-point type of the images.

        Returns
        -------
        TaskBatch
            ``support_x`` ``[B, N*K, channels, H, W]``, ``support_y`` ``[B, N*K]``
            (int64 labels 0..N-1, class-major: K zeros, then K ones, ...),
            ``query_x`` ``[B, N*Q, channels, H, W]``, ``query_y`` ``[B, N*Q]``.

        Raises
        ------
        ValueError
            If ``shots + queries`` exceeds the images of the smallest class.
        """
        batch, _ = self.sample_with_classes(
            num_tasks, shots, queries, generator=generator, iteration=iteration, dtype=dtype
        )
        return batch


class PooledClasses:
    """Batches of images from all classes with their *global* labels.

    The data for the ordinary-training baseline: ``pretrain(ConvNet(
    out_features=len(classes)), PooledClasses(classes), loss_fn=cross_entropy)``
    trains one classifier on every meta-training class at once; at test
    time its body is reused with a new head (:meth:`ConvNet.transfer
    <metalearn_lib.models.ConvNet.transfer>`) and fine-tuned on each
    episode's support set.

    ``sample(num_tasks, shots, queries)`` returns a :class:`TaskBatch` whose
    "tasks" are just ``num_tasks`` groups of ``shots`` (support) and
    ``queries`` (query) images drawn uniformly from all images, labelled
    with their class index in ``classes``.
    """

    def __init__(self, classes: ClassImages) -> None:
        if not isinstance(classes, ClassImages):
            raise TypeError(f"classes must be a ClassImages, got {type(classes).__name__}")
        self.classes = classes
        owner = torch.repeat_interleave(torch.arange(len(classes)), classes.counts)
        position = torch.cat([torch.arange(int(c)) for c in classes.counts])
        self._owner, self._position = owner, position

    def __repr__(self) -> str:
        return f"PooledClasses({len(self.classes)} classes)"

    def sample(
        self,
        num_tasks: int,
        shots: int,
        queries: int | None = None,
        *,
        generator: torch.Generator | None = None,
        iteration: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> TaskBatch:
        """``num_tasks`` groups of ``shots`` + ``queries`` random images (with replacement)."""
        check_int("num_tasks", num_tasks, 1)
        check_int("shots", shots, 1)
        queries = shots if queries is None else check_int("queries", queries, 1)
        check_int("iteration", iteration, 0)
        pick = torch.randint(len(self._owner), (num_tasks, shots + queries), generator=generator)
        labels = self._owner[pick]
        images = self.classes.images[labels, self._position[pick]].to(dtype)
        return TaskBatch(images[:, :shots], labels[:, :shots], images[:, shots:], labels[:, shots:])
