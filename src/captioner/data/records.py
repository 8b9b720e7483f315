"""What a data set reader returns: images with their raw captions, and the data set's own splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ImageCaptions:
    """One image and its raw reference captions, exactly as the data set wrote them."""

    image: str  # file name relative to the data set's image folder
    captions: tuple[str, ...]


@dataclass
class CaptionDataset:
    """A data set read from a folder, before any cleaning."""

    root: Path  # the folder the user named
    images_dir: Path  # where the image files are
    layout: str  # "flickr8k", "csv", "flickr30k", "karpathy"
    name: str  # short data set name for bundles and reports ("flickr8k", "shapes", ...)
    items: list[ImageCaptions]  # every image with at least one caption, in file order
    splits: dict[str, list[str]] | None = None  # the data set's own split ("train", "val", "test"), if any
    notes: list[str] = field(default_factory=list)  # what the reader skipped or repaired, for the summary

    def image_path(self, image: str) -> Path:
        return self.images_dir / image
