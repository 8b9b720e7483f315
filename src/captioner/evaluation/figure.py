"""The results figure: a grid of test images, each with every model's caption and one reference caption.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no display, no global state).
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path

from captioner.data.prepared import PreparedData
from captioner.files import atomic_path

PANEL_INCHES = 3.6  # width of one image panel
LINE_INCHES = 0.2  # height of one line of caption text
WRAP_CHARS = 46  # characters per caption line before wrapping
MAX_COLUMNS = 3  # panels per row


def pick_images(results, count: int) -> list[str]:
    """``count`` images every result captioned, spread evenly over the split (the same ones every run)."""
    common = [item.image for item in results[0].items if all(item.image in r.captions for r in results)]
    if count < 1 or not common:
        return []
    if len(common) <= count:
        return common
    step = len(common) / count
    return [common[int(i * step)] for i in range(count)]


def panel_text(image: str, results) -> str:
    """The lines under one image: one per model, then the first reference caption."""
    references = next(item.references for item in results[0].items if item.image == image)
    lines = []
    for result in results:
        label = f"{result.model}: "
        lines.extend(textwrap.wrap(label + result.captions[image], WRAP_CHARS) or [label + "(empty caption)"])
    lines.extend(textwrap.wrap(f"reference: {references[0]}", WRAP_CHARS))
    return "\n".join(lines)


def _thumbnail(prepared: PreparedData, image: str):
    """The image as an array through the project's safe loader, or None when it cannot be read."""
    try:
        import numpy as np

        from captioner.data.images import load_image

        picture = load_image(prepared.image_path(image))
        picture.thumbnail((512, 512))
        return np.asarray(picture)
    except Exception:  # a missing or unreadable image gets a placeholder panel, the figure is still useful
        return None


def results_figure(results, prepared: PreparedData, count: int = 6):
    """A matplotlib Figure with one panel (one Axes) per picked image; ``len(fig.axes)`` is the panel count."""
    from matplotlib.figure import Figure

    if not results:
        raise ValueError("no evaluation results to draw")
    images = pick_images(results, count)
    if not images:
        raise ValueError("no image was captioned by every model; nothing to draw")
    texts = [panel_text(image, results) for image in images]
    columns = min(MAX_COLUMNS, len(images))
    rows = math.ceil(len(images) / columns)
    text_lines = max(t.count("\n") + 1 for t in texts)
    panel_height = PANEL_INCHES + text_lines * LINE_INCHES + 0.3
    figure = Figure(figsize=(columns * PANEL_INCHES, rows * panel_height), layout="constrained")
    grid = figure.add_gridspec(rows, columns)
    for index, (image, text) in enumerate(zip(images, texts)):
        axes = figure.add_subplot(grid[index // columns, index % columns])
        pixels = _thumbnail(prepared, image)
        if pixels is not None:
            axes.imshow(pixels)
        else:
            axes.text(0.5, 0.5, f"{image}\n(image not readable)", ha="center", va="center", fontsize=8)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title(image, fontsize=7, color="0.4")
        axes.set_xlabel(text, fontsize=8, loc="left", linespacing=1.3)
    split = results[0].split
    figure.suptitle(f"{results[0].dataset} {split}: captions by " + ", ".join(r.model for r in results), fontsize=10)
    return figure


def save_figure(figure, path: str | os.PathLike) -> Path:
    """Write the figure as PNG through a temporary file, so a reader never sees half an image."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    return Path(path)
