"""``captioner data preview``: a grid of sample images with their first caption, the original's data figure."""

from __future__ import annotations

import os
import random
import textwrap
from pathlib import Path

from captioner.data.flickr import read_dataset
from captioner.data.images import load_image
from captioner.errors import DataError, ImageError
from captioner.files import atomic_path

CAPTION_WIDTH = 28  # characters per caption line under each picture


def write_preview(dataset_dir: str | os.PathLike, out_png: str | os.PathLike, n: int = 9, seed: int = 0) -> Path:
    """Draw ``n`` random images of the data set (those with a readable file) with their first caption."""
    if n < 1:
        raise ValueError("n must be at least 1")
    dataset = read_dataset(dataset_dir)
    candidates = [item for item in dataset.items if dataset.image_path(item.image).is_file()]
    if not candidates:
        raise DataError(f"none of the images of {dataset.root} is in {dataset.images_dir}; "
                        f"run 'captioner data download flickr8k --dest {dataset.root}' to fetch them")
    rng = random.Random(seed)
    rng.shuffle(candidates)
    samples = []
    for item in candidates:
        try:
            samples.append((load_image(dataset.image_path(item.image), max_side=512), item.captions[0]))
        except ImageError:
            continue  # a damaged file: show another one
        if len(samples) == n:
            break
    if not samples:
        raise DataError(f"no image of {dataset.root} could be read; check the files in {dataset.images_dir}")
    return _draw(samples, Path(out_png))


def _draw(samples, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    columns = min(3, len(samples))
    rows = -(-len(samples) // columns)
    figure = plt.figure(figsize=(5 * columns, 5 * rows))
    for index, (image, caption) in enumerate(samples, start=1):
        axes = figure.add_subplot(rows, columns, index)
        axes.imshow(image)
        axes.set_xlabel("\n".join(textwrap.wrap(caption, CAPTION_WIDTH)), fontsize=11)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.tight_layout()
    try:
        with atomic_path(out) as temporary:
            figure.savefig(temporary, format="png", dpi=72)
    finally:
        plt.close(figure)
    return out
