"""The seeded split for data sets without their own: sized by the settings, stable, never empty."""

import pytest

from captioner.config import DataSettings
from captioner.data.records import CaptionDataset, ImageCaptions
from captioner.data.splits import seeded_split, split_dataset
from captioner.errors import DataError


def names(n, prefix="img"):
    return [f"{prefix}{i:05d}.jpg" for i in range(n)]


def test_fractions_are_respected_and_splits_disjoint():
    splits = seeded_split(names(5000), DataSettings(seed=1, val_fraction=0.1, test_fraction=0.2))
    assert sum(map(len, splits.values())) == 5000
    assert abs(len(splits["val"]) - 500) < 80 and abs(len(splits["test"]) - 1000) < 100
    assert not set(splits["train"]) & set(splits["val"]) and not set(splits["val"]) & set(splits["test"])


def test_same_seed_same_split_other_seed_differs():
    a = seeded_split(names(300), DataSettings(seed=5))
    assert a == seeded_split(names(300), DataSettings(seed=5))
    assert a != seeded_split(names(300), DataSettings(seed=6))


def test_adding_images_never_moves_existing_ones():
    settings = DataSettings(seed=3)
    before = seeded_split(names(400), settings)
    after = seeded_split(names(400) + names(300, prefix="new"), settings)
    for split, images in before.items():
        assert set(images) <= set(after[split])


def test_tiny_data_sets_get_one_image_in_every_split():
    for n in (3, 4, 7, 12):
        splits = seeded_split(names(n), DataSettings(seed=0))
        assert all(splits[s] for s in ("train", "val", "test")), (n, splits)
        assert sum(map(len, splits.values())) == n


def test_too_few_images_and_bad_fractions():
    with pytest.raises(DataError, match="at least 3 images"):
        seeded_split(names(2), DataSettings())
    with pytest.raises(DataError, match="leave room for training"):
        seeded_split(names(20), DataSettings(val_fraction=0.5, test_fraction=0.5))


def test_split_dataset_uses_the_data_sets_own_split_and_drops_unknown_names(tmp_path):
    dataset = CaptionDataset(tmp_path, tmp_path, "flickr8k", "x", [ImageCaptions(n, ("A dog .",)) for n in "abc"],
                             splits={"train": ["a", "zzz"], "val": ["b"], "test": ["c"]})
    assert split_dataset(dataset, DataSettings()) == {"train": ["a"], "val": ["b"], "test": ["c"]}
