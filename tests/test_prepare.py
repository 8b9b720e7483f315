"""prepare_dataset on the real Flickr8k text (with placeholder image files) and on small folders."""

import json
import re

import pytest

from captioner.config import DataSettings
from captioner.data.prepare import prepare_dataset
from captioner.data.prepared import PreparedData
from captioner.data.text import Vocabulary, clean_caption
from captioner.errors import DataError

SEED_RULE = re.compile(r"^startseq( [a-z]{2,})* endseq$")
STANDARD_RULE = re.compile(r"^startseq( (a|[a-z]{2,}))* endseq$")


@pytest.fixture(scope="module")
def flickr8k_folder(tmp_path_factory, flickr8k_text):
    """The real text files, and an empty placeholder file for each of the 8,091 images."""
    root = tmp_path_factory.mktemp("flickr8k")
    for path in flickr8k_text.iterdir():
        (root / path.name).symlink_to(path)
    images = root / "Flicker8k_Dataset"
    images.mkdir()
    names = {line.split("#")[0] for line in (flickr8k_text / "Flickr8k.token.txt").read_text().splitlines()}
    for name in names - {"2258277193_586949ec62.jpg.1"}:
        (images / name).touch()
    return root


@pytest.fixture(scope="module")
def prepared(flickr8k_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    return {preset: (prepare_dataset(flickr8k_folder, out / preset, DataSettings(preset=preset)), out / preset)
            for preset in ("seed", "standard")}


@pytest.mark.parametrize("preset", ["seed", "standard"])
def test_real_flickr8k_prepares_with_the_official_split(prepared, preset, flickr8k_folder):
    summary, folder = prepared[preset]
    assert summary["splits"] == {"train": {"images": 6000, "captions": 30000},
                                 "val": {"images": 1000, "captions": 5000},
                                 "test": {"images": 1000, "captions": 5000}}
    assert summary["layout"] == "flickr8k" and summary["split_source"] == "data set"
    assert summary["dataset"] == str(flickr8k_folder.resolve())
    assert summary["images_dir"] == str(flickr8k_folder.resolve() / "Flicker8k_Dataset")
    # the 91 images outside the official split are dropped with their reason; the odd entry is noted
    assert len(summary["dropped"]) == 91 and {d["reason"] for d in summary["dropped"]} == {"in none of the data set's splits"}
    assert any("2258277193_586949ec62.jpg.1" in note for note in summary["notes"])
    for key in ("name", "preset", "min_count", "max_length", "vocab_size", "seed", "mean_length", "created_at"):
        assert key in summary
    assert json.loads((folder / "prepared.json").read_text()) == summary


@pytest.mark.parametrize("preset,rule", [("seed", SEED_RULE), ("standard", STANDARD_RULE)])
def test_every_cleaned_caption_obeys_its_preset(prepared, preset, rule):
    data = PreparedData(prepared[preset][1])
    count = 0
    for split in ("train", "val", "test"):
        for item in data.split(split):
            assert len(item.captions) == len(item.references) == 5
            for cleaned, raw in zip(item.captions, item.references):
                assert rule.match(cleaned), (raw, cleaned)
                assert cleaned == clean_caption(raw, preset)
                count += 1
    assert count == 40_000
    if preset == "standard":
        assert any(" a " in c for item in data.split("train") for c in item.captions)


@pytest.mark.parametrize("preset", ["seed", "standard"])
def test_vocabulary_and_lengths_come_from_the_training_split(prepared, preset):
    summary, folder = prepared[preset]
    data = PreparedData(folder)
    training = [c for item in data.split("train") for c in item.captions]
    expected = Vocabulary.build(training, preset=preset, min_count=1)
    assert data.vocabulary.tokens == expected.tokens
    assert summary["vocab_size"] == len(expected) and summary["max_length"] == expected.max_length
    assert summary["max_length"] == max(len(c.split()) for c in training)
    assert summary["mean_length"] == round(sum(len(c.split()) for c in training) / len(training), 3)
    # words only in val/test are not in the vocabulary
    held_out = {w for s in ("val", "test") for item in data.split(s) for c in item.captions for w in c.split()}
    assert held_out - set(expected.tokens)
    print(f"\nFlickr8k {preset}: vocabulary {summary['vocab_size']} tokens, max length {summary['max_length']}, "
          f"mean length {summary['mean_length']}")


def test_min_count_shrinks_the_vocabulary(shapes_dataset, tmp_path):
    small = prepare_dataset(shapes_dataset, tmp_path / "a", DataSettings(min_count=1))
    smaller = prepare_dataset(shapes_dataset, tmp_path / "b", DataSettings(min_count=30))
    assert smaller["vocab_size"] < small["vocab_size"]
    assert smaller["min_count"] == 30


def test_missing_image_files_are_dropped_and_listed(shapes_dataset, tmp_path):
    import shutil

    copy = tmp_path / "shapes"
    shutil.copytree(shapes_dataset, copy)
    gone = sorted((copy / "Images").iterdir())[:3]
    for path in gone:
        path.unlink()
    summary = prepare_dataset(copy, tmp_path / "out", DataSettings())
    assert sorted(d["image"] for d in summary["dropped"]) == sorted(p.name for p in gone)
    assert all("missing" in d["reason"] for d in summary["dropped"])
    assert sum(s["images"] for s in summary["splits"].values()) == 57


def test_no_image_at_all_points_to_the_download(tmp_path, flickr8k_text):
    for path in flickr8k_text.iterdir():
        (tmp_path / path.name).symlink_to(path)
    with pytest.raises(DataError, match="captioner data download flickr8k"):
        prepare_dataset(tmp_path, tmp_path / "out", DataSettings())
    assert not (tmp_path / "out").exists()


def test_an_empty_split_fails_and_writes_nothing(tmp_path):
    (tmp_path / "Images").mkdir()
    (tmp_path / "Flickr8k.token.txt").write_text("a.jpg#0\tA dog .\nb.jpg#0\tA cat .\n")
    (tmp_path / "Flickr_8k.trainImages.txt").write_text("a.jpg\n")
    (tmp_path / "Flickr_8k.devImages.txt").write_text("b.jpg\n")
    (tmp_path / "Flickr_8k.testImages.txt").write_text("")
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "Images" / name).touch()
    with pytest.raises(DataError, match="test split .* is empty"):
        prepare_dataset(tmp_path, tmp_path / "out", DataSettings())
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_a_failed_run_keeps_the_previous_prepared_folder(shapes_dataset, tmp_path):
    out = tmp_path / "out"
    first = prepare_dataset(shapes_dataset, out, DataSettings())
    with pytest.raises(DataError):
        prepare_dataset(tmp_path / "missing", out, DataSettings())
    assert json.loads((out / "prepared.json").read_text()) == first


def test_refuses_to_replace_a_folder_that_is_not_prepared_data(shapes_dataset, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(DataError, match="not prepared data"):
        prepare_dataset(shapes_dataset, tmp_path / "mine", DataSettings())
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"


def test_unknown_preset(shapes_dataset, tmp_path):
    with pytest.raises(ValueError, match="unknown cleaning preset"):
        prepare_dataset(shapes_dataset, tmp_path / "out", DataSettings(preset="fancy"))
