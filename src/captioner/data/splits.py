"""Train/val/test image lists: the data set's own split when it brings one, else a seeded, stable split.

The seeded split is stable: each image's split is decided by a hash of the seed and its file name alone,
so adding images to a data set never moves an existing image to another split. Only when a split would
otherwise stay empty (a tiny data set) does the image nearest to that split's range move into it.
"""

from __future__ import annotations

import hashlib

from captioner.config import DataSettings
from captioner.data.records import SPLITS, CaptionDataset
from captioner.errors import DataError


def image_position(name: str, seed: int) -> float:
    """A number in [0, 1) fixed by the seed and the image name: where the image falls in the split."""
    digest = hashlib.sha256(f"{seed}\0{name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_dataset(dataset: CaptionDataset, settings: DataSettings | None = None) -> dict[str, list[str]]:
    """Image names per split ("train", "val", "test"), each in the data set's file order."""
    settings = settings or DataSettings()
    if dataset.splits is not None:
        known = {item.image for item in dataset.items}
        return {split: [name for name in dataset.splits.get(split, []) if name in known] for split in SPLITS}
    return seeded_split([item.image for item in dataset.items], settings)


def seeded_split(images: list[str], settings: DataSettings) -> dict[str, list[str]]:
    val_fraction, test_fraction = float(settings.val_fraction), float(settings.test_fraction)
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must each be between "
                        "0 and 1 and leave room for training")
    if len(set(images)) < len(SPLITS):
        raise DataError(f"a data set needs at least {len(SPLITS)} images (one per split); this one has {len(set(images))}")
    position = {name: image_position(name, settings.seed) for name in images}

    def split_of(name: str) -> str:
        if position[name] < val_fraction:
            return "val"
        if position[name] < val_fraction + test_fraction:
            return "test"
        return "train"

    chosen = {name: split_of(name) for name in images}
    centre = {"val": val_fraction / 2, "test": val_fraction + test_fraction / 2,
              "train": (1 + val_fraction + test_fraction) / 2}
    for split in SPLITS:  # a tiny data set: fill an empty split with the nearest image of a split that can spare one
        if split in chosen.values():
            continue
        sizes = {s: list(chosen.values()).count(s) for s in SPLITS}
        donors = [n for n in images if sizes[chosen[n]] > 1]
        nearest = min(donors, key=lambda n: (abs(position[n] - centre[split]), n))
        chosen[nearest] = split
    return {split: [name for name in images if chosen[name] == split] for split in SPLITS}
