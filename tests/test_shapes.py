import csv
import hashlib

from captioner.data.shapes import COLOURS, SHAPES, write_shapes_dataset


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_data_set_other_seed_differs(tmp_path):
    a = write_shapes_dataset(tmp_path / "a", images=8, seed=3)
    b = write_shapes_dataset(tmp_path / "b", images=8, seed=3)
    c = write_shapes_dataset(tmp_path / "c", images=8, seed=4)
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_five_varied_captions_that_name_what_is_drawn(shapes_dataset):
    with open(shapes_dataset / "captions.txt", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_image = {}
    for row in rows:
        by_image.setdefault(row["image"], []).append(row["caption"])
    assert len(by_image) == 60
    for image, captions in by_image.items():
        assert (shapes_dataset / "Images" / image).is_file()
        assert len(captions) == 5 and len(set(captions)) == 5
        plain = captions[0].lower()
        assert any(colour in plain for colour in COLOURS) and any(shape in plain for shape in SHAPES)
        for caption in captions[1:]:
            # every wording names the same colours
            assert {c for c in COLOURS if c in caption.lower()} == {c for c in COLOURS if c in plain}


def test_boxes_say_where_each_named_shape_was_drawn(shapes_dataset):
    import numpy as np
    from PIL import Image

    from captioner.data.shapes import read_boxes

    boxes = read_boxes(shapes_dataset)
    with open(shapes_dataset / "captions.txt", newline="", encoding="utf-8") as handle:
        plain = {}
        for row in csv.DictReader(handle):
            plain.setdefault(row["image"], row["caption"].lower())
    assert set(boxes) == set(plain)
    for image, shapes in boxes.items():
        assert 1 <= len(shapes) <= 4
        assert {s.shape for s in shapes} == {s for s in SHAPES if s in plain[image]}  # the caption names them
        pixels = np.asarray(Image.open(shapes_dataset / "Images" / image).convert("RGB")).astype(int)
        for shape in shapes:
            left, top, right, bottom = shape.box
            centre = pixels[(top + bottom) // 2 + (bottom - top) // 4, (left + right) // 2]  # inside every kind
            assert np.abs(centre - COLOURS[shape.colour]).max() <= 1, (image, shape)
