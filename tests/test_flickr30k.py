"""Flickr30k as people get it: the original token file, Kaggle's results.csv with its quirks, Karpathy's split."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from captioner.config import DataSettings
from captioner.data.flickr import read_dataset, split_dataset
from captioner.data.prepare import prepare_dataset
from captioner.data.prepared import PreparedData
from captioner.errors import DataError

# Rows as Kaggle's results.csv has them: a space after each "|", line 19,999's missing second separator
# (copied from the real file), a caption quoting words, a caption holding a "|".
KAGGLE_ROWS = [
    "image_name| comment_number| comment",
    "1000092795.jpg| 0| Two young guys with shaggy hair look at their hands while hanging out in the yard .",
    "1000092795.jpg| 1| Two young , White males are outside near many bushes .",
    "2199200615.jpg| 3| A white dog running in the grass .",
    "2199200615.jpg| 4   A dog runs across the grass .",
    '36979.jpg| 0| A man wearing a shirt that says "Lazy" sits on a bench .',
    "36979.jpg| 1| A sign reading Open | Closed hangs in the window .",
    "36979.jpg| 2| \"A group of friends\" playing cards .",
]


def write_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (12, 9), (120, 30, 200)).save(folder / name)


def test_kaggle_results_csv_reads_the_malformed_row_quotes_and_pipes(tmp_path):
    (tmp_path / "results.csv").write_text("\n".join(KAGGLE_ROWS) + "\n", encoding="utf-8")
    dataset = read_dataset(tmp_path)
    captions = {item.image: item.captions for item in dataset.items}
    assert dataset.layout == "flickr30k" and len(captions) == 3
    assert captions["2199200615.jpg"] == ("A white dog running in the grass .", "A dog runs across the grass .")
    assert captions["36979.jpg"] == ('A man wearing a shirt that says "Lazy" sits on a bench .',
                                     "A sign reading Open | Closed hangs in the window .",
                                     '"A group of friends" playing cards .')
    assert any("line 5" in note and "without the separator" in note for note in dataset.notes)


def test_kaggle_archive_prepares_as_unpacked_without_hand_edits(tmp_path):
    # Kaggle's archive unpacks to flickr30k_images/ holding results.csv and flickr30k_images/ (the pictures)
    root = tmp_path / "flickr30k"
    (root / "flickr30k_images").mkdir(parents=True)
    (root / "flickr30k_images" / "results.csv").write_text("\n".join(KAGGLE_ROWS) + "\n", encoding="utf-8")
    write_images(root / "flickr30k_images" / "flickr30k_images", ["1000092795.jpg", "2199200615.jpg", "36979.jpg"])
    summary = prepare_dataset(root, tmp_path / "prepared", DataSettings(val_fraction=0.34, test_fraction=0.34))
    prepared = PreparedData(tmp_path / "prepared")
    every = {item.image: item for split in ("train", "val", "test") for item in prepared.split(split)}
    assert set(every) == {"1000092795.jpg", "2199200615.jpg", "36979.jpg"} and summary["name"] == "flickr30k"
    assert every["2199200615.jpg"].references[1] == "A dog runs across the grass ."
    assert every["36979.jpg"].references[1] == "A sign reading Open | Closed hangs in the window ."


def test_results_20130124_token_file(tmp_path):
    (tmp_path / "results_20130124.token").write_text(
        "1000092795.jpg#0\tTwo young guys with shaggy hair look at their hands while hanging out in the yard .\n"
        "1000092795.jpg#1\tTwo young , White males are outside near many bushes .\n"
        '36979.jpg#0\tA man wearing a shirt that says "Lazy" sits on a bench .\n'
        "36979.jpg#1\tA sign reading Open | Closed hangs in the window .\n", encoding="utf-8")
    write_images(tmp_path / "flickr30k_images", ["1000092795.jpg", "36979.jpg"])
    dataset = read_dataset(tmp_path)
    assert dataset.layout == "flickr30k" and [len(item.captions) for item in dataset.items] == [2, 2]
    assert dataset.items[1].captions == ('A man wearing a shirt that says "Lazy" sits on a bench .',
                                         "A sign reading Open | Closed hangs in the window .")
    assert all(dataset.image_path(item.image).is_file() for item in dataset.items)


def test_a_row_with_no_separator_at_all_is_still_refused_by_line(tmp_path):
    (tmp_path / "results.csv").write_text(KAGGLE_ROWS[0] + "\na.jpg| 0| A dog .\nb.jpg A dog runs .\n")
    with pytest.raises(DataError, match=r"results.csv, line 3: expected 'IMAGE\| N\| CAPTION'"):
        read_dataset(tmp_path)


def test_karpathy_flickr30k_split_is_29000_1014_1000(tmp_path):
    counts = {"train": 29000, "val": 1014, "test": 1000}
    images = []
    for split, count in counts.items():
        for _ in range(count):
            number = len(images)
            sentences = [{"tokens": ["a", "dog"], "raw": f"A dog number {number} , caption {k} .", "imgid": number,
                          "sentid": number * 5 + k} for k in range(5)]
            images.append({"sentids": [s["sentid"] for s in sentences], "imgid": number, "sentences": sentences,
                           "split": split, "filename": f"{1000000 + number}.jpg"})
    (tmp_path / "dataset_flickr30k.json").write_text(json.dumps({"images": images, "dataset": "flickr30k"}))
    dataset = read_dataset(tmp_path)
    splits = split_dataset(dataset, DataSettings())
    assert dataset.layout == "karpathy" and dataset.name == "flickr30k"
    assert {split: len(names) for split, names in splits.items()} == counts
    assert len(dataset.items) == 31014 and all(len(item.captions) == 5 for item in dataset.items)
