"""Seeing and checking attention: per-word maps drawn over the image, and whether the model looks in the
right place on the shapes set, against chance.

Hit rate: for every shape word a model writes ("circle", "squares", ...), the peak of that word's
attention map names one grid cell; it is a hit when the cell's centre lies in the box of a drawn shape of
that kind (``boxes.json`` of the shapes set). Chance is the share of the image's cells whose centre lies
in such a box, for the same words on the same images: where a model with no idea would land.

Figures use matplotlib's object API on the Agg canvas (no pyplot, no display).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from captioner.data.shapes import SHAPES, DrawnShape
from captioner.models.base import AttentionMaps

SHAPE_WORDS = {**{shape: shape for shape in SHAPES}, **{shape + "s": shape for shape in SHAPES}}
MAP_COLUMNS = 5  # panels per row in a caption's attention figure


@dataclass(frozen=True)
class HitRate:
    """How often a model's attention peak fell on the shape it named, and how often chance would."""

    words: int  # shape words written (with a map)
    hits: int  # of those, peaks inside a shape of that kind
    chance: float  # expected share of hits for a peak placed at random among the cells

    @property
    def rate(self) -> float:
        return self.hits / self.words if self.words else 0.0

    def to_dict(self) -> dict:
        return {"words": self.words, "hits": self.hits, "rate": round(self.rate, 4), "chance": round(self.chance, 4)}


def cell_centres(grid: tuple[int, int], width: int, height: int) -> np.ndarray:
    """Pixel (x, y) of every cell's centre, row-major: (rows * cols, 2)."""
    rows, cols = grid
    ys, xs = np.meshgrid((np.arange(rows) + 0.5) * height / rows, (np.arange(cols) + 0.5) * width / cols,
                         indexing="ij")
    return np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1)


def cells_on_shape(grid: tuple[int, int], shapes: Sequence[DrawnShape], kind: str, width: int,
                   height: int) -> np.ndarray:
    """Per cell (row-major), True when its centre lies in the box of a drawn shape of ``kind``."""
    centres = cell_centres(grid, width, height)
    inside = np.zeros(len(centres), dtype=bool)
    for shape in shapes:
        if shape.shape == kind:
            left, top, right, bottom = shape.box
            inside |= ((centres[:, 0] >= left) & (centres[:, 0] <= right) & (centres[:, 1] >= top)
                       & (centres[:, 1] <= bottom))
    return inside


def shape_hit_rate(maps: Sequence[AttentionMaps | None], drawn: Sequence[Sequence[DrawnShape]],
                   size: tuple[int, int]) -> HitRate:
    """The hit rate of captions' attention maps on images whose shapes are ``drawn`` (same order);
    ``size`` is the images' (width, height) in pixels."""
    words = hits = 0
    chance = 0.0
    for caption_maps, shapes in zip(maps, drawn):
        if caption_maps is None:
            continue
        for word, weights in zip(caption_maps.words, caption_maps.weights):
            kind = SHAPE_WORDS.get(word)
            if kind is None:
                continue
            on_shape = cells_on_shape(caption_maps.grid, shapes, kind, *size)
            words += 1
            hits += bool(on_shape[int(np.argmax(weights))])
            chance += float(on_shape.mean())
    return HitRate(words, hits, chance / words if words else 0.0)


def attention_figure(image, maps: AttentionMaps, title: str = ""):
    """A matplotlib Figure: the image, then one panel per word with its attention map laid over the image."""
    from matplotlib.figure import Figure

    pixels = np.asarray(image.convert("RGB"))
    height, width = pixels.shape[:2]
    panels = 1 + len(maps.words)
    columns = min(MAP_COLUMNS, panels)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(columns * 2.2, rows * 2.4), layout="constrained")
    for index in range(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(pixels)
        axes.set_xticks([])
        axes.set_yticks([])
        if index == 0:
            axes.set_title("image", fontsize=9)
            continue
        weights = np.asarray(maps.weights[index - 1], dtype=np.float32).reshape(maps.grid)  # (rows, cols)
        axes.imshow(weights, cmap="magma", alpha=0.6, extent=(0, width, height, 0), interpolation="bilinear",
                    vmin=0.0, vmax=float(weights.max()) or 1.0)
        axes.set_title(maps.words[index - 1], fontsize=10)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def hit_rate_figure(results: dict[str, HitRate], title: str):
    """Bars of each model's hit rate beside its chance rate (the README's look-in-the-right-place figure)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2, 3.2), layout="constrained")
    axes = figure.add_subplot()
    names = list(results)
    positions = np.arange(len(names))
    axes.bar(positions - 0.18, [results[n].rate for n in names], 0.36, label="attention peak on the named shape")
    axes.bar(positions + 0.18, [results[n].chance for n in names], 0.36, label="chance (random cell)", color="0.7")
    for x, name in zip(positions, names):
        axes.text(x - 0.18, results[name].rate + 0.02, f"{results[name].rate:.2f}", ha="center", fontsize=8)
        axes.text(x + 0.18, results[name].chance + 0.02, f"{results[name].chance:.2f}", ha="center", fontsize=8)
    axes.set_xticks(positions, [f"{n}\n({results[n].words} shape words)" for n in names], fontsize=8)
    axes.set_ylim(0, 1.1)
    axes.set_ylabel("share of shape words")
    axes.legend(fontsize=8, loc="upper right")
    axes.set_title(title, fontsize=9)
    return figure


def save_png(figure, path: str | os.PathLike) -> Path:
    """Write a figure as PNG, all or nothing."""
    from captioner.evaluation.figure import save_figure

    return save_figure(figure, path)
