"""Few-shot classification data, the conv net, and a short classification run."""

from pathlib import Path

import pytest
import torch

from metalearn_lib import (
    ClassImages,
    FewShotTasks,
    PooledClasses,
    TaskBatch,
    accuracy,
    digits_meta_split,
    load_digits,
    load_omniglot,
)

# -- the digits ----------------------------------------------------------------


def test_digits_have_40_rotated_classes_in_0_1():
    digits = load_digits()
    assert len(digits) == 40 and digits.image_shape == (1, 8, 8)
    assert int(digits.counts.sum()) == 4 * 1797
    assert digits.names[:4] == ("0 @ 0", "0 @ 90", "0 @ 180", "0 @ 270")
    assert 0.0 <= float(digits.images.min()) and float(digits.images.max()) == 1.0
    # A rotated class is its unrotated class turned by 90 degrees, image by image.
    plain, turned = digits.class_images(4 * 3), digits.class_images(4 * 3 + 1)
    assert torch.equal(turned, torch.rot90(plain, 1, dims=(2, 3)))
    assert not torch.equal(turned, plain)
    assert len(load_digits(rotations=(0,))) == 10


def test_meta_split_is_disjoint_and_by_digit(split):
    train, test = split
    assert (len(train), len(test)) == (28, 12)
    assert set(train.names).isdisjoint(test.names)
    assert {name.split(" @ ")[0] for name in test.names} == {"2", "5", "7"}
    other_train, other_test = digits_meta_split(test_digits=(0, 1))
    assert len(other_test) == 8 and "0 @ 90" in other_test.names


# -- episodes ------------------------------------------------------------------


def test_episode_shapes_and_labels(split, generator):
    tasks = FewShotTasks(split[1], ways=5)
    batch = tasks.sample(3, 2, 4, generator=generator)
    assert isinstance(batch, TaskBatch)
    assert batch.support_x.shape == (3, 10, 1, 8, 8) and batch.query_x.shape == (3, 20, 1, 8, 8)
    assert batch.support_y.shape == (3, 10) and batch.query_y.shape == (3, 20)
    assert batch.support_y.dtype == torch.int64 and batch.support_x.dtype == torch.float32
    # Class-major, relabelled 0..N-1 in every episode.
    assert batch.support_y[0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert batch.query_y[2].tolist() == [j for j in range(5) for _ in range(4)]
    assert tasks.sample(2, 3, generator=generator).query_x.shape == (2, 15, 1, 8, 8)  # Q = K
    assert tasks.sample(1, 1, dtype=torch.float64).support_x.dtype == torch.float64


def test_episodes_use_the_images_of_their_classes(split, generator):
    test = split[1]
    tasks = FewShotTasks(test, ways=4)
    batch, classes = tasks.sample_with_classes(6, 2, 3, generator=generator)
    assert classes.shape == (6, 4)
    for b in range(6):
        assert len(set(classes[b].tolist())) == 4  # N distinct classes
        for label in range(4):
            pool = test.class_images(int(classes[b, label]))
            chosen = torch.cat(
                [
                    batch.support_x[b][batch.support_y[b] == label],
                    batch.query_x[b][batch.query_y[b] == label],
                ]
            )
            # Each image comes from its class; support and query do not share one.
            matches = [(pool == image).flatten(1).all(1).nonzero().flatten() for image in chosen]
            assert all(len(m) >= 1 for m in matches)
            assert len({int(m[0]) for m in matches}) == 5
    # Labels are assigned at random: label 0 is not always the same class.
    assert len(set(classes[:, 0].tolist())) > 1


def test_episode_sampling_is_deterministic(split):
    tasks = FewShotTasks(split[0], ways=5)

    def draw(seed):
        return tasks.sample(4, 1, 2, generator=torch.Generator().manual_seed(seed))

    a, b, c = draw(7), draw(7), draw(8)
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x)
    assert not torch.equal(a.support_x, c.support_x)


def test_train_and_test_episodes_never_share_a_class(split, generator):
    train, test = split
    _, train_classes = FewShotTasks(train).sample_with_classes(50, 1, generator=generator)
    _, test_classes = FewShotTasks(test).sample_with_classes(50, 1, generator=generator)
    used_train = {train.names[i] for i in train_classes.flatten().tolist()}
    used_test = {test.names[i] for i in test_classes.flatten().tolist()}
    assert used_train.isdisjoint(used_test)


def test_bad_arguments_get_clear_errors(split, generator):
    train, test = split
    with pytest.raises(ValueError, match="ways=13 is more than the 12 classes"):
        FewShotTasks(test, ways=13)
    with pytest.raises(ValueError, match="ways must be >= 1"):
        FewShotTasks(test, ways=0)
    with pytest.raises(TypeError, match="classes must be a ClassImages"):
        FewShotTasks([torch.zeros(3, 1, 8, 8)])
    tasks = FewShotTasks(test)
    smallest = int(test.counts.min())
    with pytest.raises(ValueError, match=f"smallest class has only {smallest}"):
        tasks.sample(1, smallest, 1, generator=generator)
    tasks.sample(1, smallest - 1, 1, generator=generator)  # just fits
    with pytest.raises(ValueError, match="shots must be >= 1"):
        tasks.sample(1, 0)
    with pytest.raises(TypeError, match="num_tasks must be an int"):
        tasks.sample(2.0, 1)
    with pytest.raises(ValueError, match="test_digits"):
        digits_meta_split(test_digits=(3, 3))
    with pytest.raises(ValueError, match="rotations"):
        load_digits(rotations=(45,))


def test_pooled_classes_keep_global_labels(split, generator):
    train = split[0]
    batch = PooledClasses(train).sample(3, 16, 2, generator=generator)
    assert batch.support_x.shape == (3, 16, 1, 8, 8) and batch.query_y.shape == (3, 2)
    labels = batch.support_y.flatten()
    assert int(labels.max()) < len(train) and len(set(labels.tolist())) > 5
    image, label = batch.support_x[1, 4], int(batch.support_y[1, 4])
    assert (train.class_images(label) == image).flatten(1).all(1).any()


def test_class_images_checks():
    with pytest.raises(ValueError, match="got 2 classes of images but 1 names"):
        ClassImages.from_list([torch.zeros(2, 1, 4, 4)] * 2, ["a"])
    with pytest.raises(ValueError, match="per-image shape"):
        ClassImages.from_list([torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 5, 5)], ["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        ClassImages.from_list([torch.zeros(2, 1, 4, 4)] * 2, ["a", "a"])
    classes = ClassImages.from_list([torch.ones(2, 1, 4, 4), torch.ones(5, 1, 4, 4)], ["a", "b"])
    assert classes.counts.tolist() == [2, 5] and classes.images.shape == (2, 5, 1, 4, 4)
    assert classes.subset([1]).names == ("b",)


# -- Omniglot folder layout --------------------------------------------------------


def _write_omniglot(root: Path, split: str, alphabets: dict[str, int], per_character: int = 3):
    from PIL import Image

    for a, (alphabet, characters) in enumerate(alphabets.items()):
        for c in range(characters):
            folder = root / split / alphabet / f"character{c + 1:02d}"
            folder.mkdir(parents=True)
            for i in range(per_character):
                pixels = torch.full((20, 20), 255, dtype=torch.uint8)  # white paper
                pixels[2 + c : 6 + c, 3 + a + i : 15] = 0  # a black stroke, per class
                Image.fromarray(pixels.numpy(), mode="L").convert("1").save(
                    folder / f"{a}{c}_{i:02d}.png"
                )


def test_omniglot_loader_reads_the_folder_layout(tmp_path):
    _write_omniglot(tmp_path, "images_background", {"Alpha": 2, "Beta": 3})
    _write_omniglot(tmp_path, "images_evaluation", {"Gamma": 2})
    background = load_omniglot(tmp_path, image_size=10)
    assert len(background) == 5 and background.image_shape == (1, 10, 10)
    assert background.names[0] == "Alpha/character01" and background.names[-1] == "Beta/character03"
    assert background.counts.tolist() == [3] * 5
    image = background.class_images(0)[0, 0]
    assert float(image.max()) > 0.9 and float(image.min()) == 0.0  # ink is 1, paper 0
    evaluation = load_omniglot(tmp_path, "evaluation", image_size=10, rotations=(0, 90))
    assert len(evaluation) == 4 and evaluation.names[1] == "Gamma/character01 @ 90"
    batch = FewShotTasks(background, ways=5).sample(2, 1, 2, generator=torch.Generator())
    assert batch.support_x.shape == (2, 5, 1, 10, 10)


def test_omniglot_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_omniglot(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no images_background/ folder"):
        load_omniglot(tmp_path)
    (tmp_path / "images_background").mkdir()
    with pytest.raises(ValueError, match="no alphabet folders"):
        load_omniglot(tmp_path)
    (tmp_path / "images_background" / "Alpha" / "character01").mkdir(parents=True)
    with pytest.raises(ValueError, match="no .png images"):
        load_omniglot(tmp_path)
    (tmp_path / "images_background" / "Alpha" / "character01" / "x.png").write_text("not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        load_omniglot(tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        load_omniglot(tmp_path, "test")


def test_accuracy():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1, 1])).item() == 0.75
