"""A synthetic caption data set: pictures of coloured shapes, each with five varied captions.

It is the project's offline demo and test data. Every picture holds one or two groups of one or two
identical shapes ("two red circles and a blue square"), drawn large on a plain background in separate
quadrants and named in reading order, so a captioner can learn it from global image features in minutes
on a CPU. The same seed
always gives the same images and captions. Written in the CSV layout: ``Images/`` + ``captions.txt``, with
``boxes.json`` beside them: where each shape was drawn (``{image: [{"colour", "shape", "box": [left, top,
right, bottom]}, ...]}``, pixels of the 96 x 96 picture), so a model's attention can be checked against it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from captioner.files import write_json_atomic, write_text_atomic

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 220), "yellow": (235, 200, 30)}
SHAPES = ("circle", "square", "triangle")
COUNT_WORDS = {1: "a", 2: "two"}
IMAGE_SIZE = 96
QUADRANTS = ((0, 0), (1, 0), (0, 1), (1, 1))
BOXES_FILE = "boxes.json"


@dataclass(frozen=True)
class DrawnShape:
    """One shape as drawn: what it is and its bounding box in pixels."""

    colour: str
    shape: str
    box: tuple[int, int, int, int]  # left, top, right, bottom (right and bottom inclusive, as PIL draws)

    def to_dict(self) -> dict:
        return {"colour": self.colour, "shape": self.shape, "box": list(self.box)}


@dataclass(frozen=True)
class ShapeGroup:
    colour: str
    shape: str
    count: int

    def phrase(self) -> str:
        noun = self.shape + ("s" if self.count > 1 else "")
        return f"{COUNT_WORDS[self.count]} {self.colour} {noun}"


def describe(groups: list[ShapeGroup], rng: random.Random) -> list[str]:
    """Five captions of one picture, in varied wording, the first one plain."""
    phrases = [g.phrase() for g in groups]
    listed = " and ".join(phrases)
    reverse = " and ".join(reversed(phrases))
    total = sum(g.count for g in groups)
    captions = [
        listed,
        f"there {'are' if groups[0].count > 1 else 'is'} {listed}",
        f"{reverse} on a white background" if len(groups) > 1 else f"{listed} on a white background",
        f"a picture of {listed}",
        f"{'one shape' if total == 1 else COUNT_WORDS.get(total, str(total)) + ' shapes'}: {listed}",
    ]
    rng.shuffle(captions[1:])  # keep the plain one first, vary the order of the rest
    return [c[0].upper() + c[1:] + "." for c in captions]


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], fill) -> None:
    left, top, right, bottom = box
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([((left + right) // 2, top), (right, bottom), (left, bottom)], fill=fill)


def make_picture(rng: random.Random) -> tuple[Image.Image, list[ShapeGroup]]:
    """One picture and the groups drawn in it."""
    image, groups, _ = draw_picture(rng)
    return image, groups


def draw_picture(rng: random.Random) -> tuple[Image.Image, list[ShapeGroup], list[DrawnShape]]:
    """One picture, the groups drawn in it (in reading order) and every shape with its box."""
    kinds = [(c, s) for c in COLOURS for s in SHAPES]
    group_count = rng.choice((1, 2))
    groups = [ShapeGroup(c, s, rng.choice((1, 2))) for c, s in rng.sample(kinds, group_count)]
    background = tuple(rng.randint(235, 255) for _ in range(3))
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), background)
    draw = ImageDraw.Draw(image)
    cells = rng.sample(QUADRANTS, sum(g.count for g in groups))
    half = IMAGE_SIZE // 2
    placed = []  # (first quadrant in reading order, group)
    drawn = []
    cell_index = 0
    for group in groups:
        group_cells = cells[cell_index:cell_index + group.count]
        cell_index += group.count
        for col, row in group_cells:
            size = rng.randint(34, 40)  # nearly fills its quadrant, so a shape looks alike wherever it is
            left = col * half + rng.randint(2, half - size - 2)
            top = row * half + rng.randint(2, half - size - 2)
            box = (left, top, left + size, top + size)
            draw_shape(draw, group.shape, box, COLOURS[group.colour])
            drawn.append(DrawnShape(group.colour, group.shape, box))
        placed.append((min(row * 2 + col for col, row in group_cells), group))
    # groups are named in reading order (top left first), so the wording follows the picture
    return image, [group for _, group in sorted(placed, key=lambda p: p[0])], drawn


def write_shapes_dataset(out: str | os.PathLike, images: int = 600, seed: int = 0) -> Path:
    """Write ``images`` pictures and their captions to ``out`` (CSV layout); returns the folder."""
    if images < 3:
        raise ValueError("the shapes data set needs at least 3 images (one per split)")
    root = Path(out)
    image_dir = root / "Images"
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    boxes = {}
    for number in range(images):
        picture, groups, drawn = draw_picture(rng)
        name = f"shape_{number:05d}.png"
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        (image_dir / name).write_bytes(buffer.getvalue())
        rows.extend((name, caption) for caption in describe(groups, rng))
        boxes[name] = [shape.to_dict() for shape in drawn]
    write_json_atomic(root / BOXES_FILE, boxes)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["image", "caption"])
    writer.writerows(rows)
    write_text_atomic(root / "captions.txt", text.getvalue())  # last: its presence marks the set complete
    return root


def read_boxes(dataset: str | os.PathLike) -> dict[str, list[DrawnShape]]:
    """Where each shape of a shapes data set was drawn, by image name (from its ``boxes.json``)."""
    data = json.loads((Path(dataset) / BOXES_FILE).read_text(encoding="utf-8"))
    return {name: [DrawnShape(d["colour"], d["shape"], tuple(d["box"])) for d in shapes] for name, shapes in data.items()}
