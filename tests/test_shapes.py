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
