"""Layout detection and readers: the real Flickr8k text, and small folders for every other layout."""

import json

import pytest

from captioner.config import DataSettings
from captioner.data.flickr import detect_layout, read_dataset, split_dataset
from captioner.errors import DataError

ODD = "2258277193_586949ec62.jpg.1"


def write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


# ---------------------------------------------------------------- the real Flickr8k text

def test_real_flickr8k_text_reads_every_caption(flickr8k_text):
    raw_lines = [l for l in (flickr8k_text / "Flickr8k.token.txt").read_text().splitlines() if l.strip()]
    assert len(raw_lines) == 40_460
    dataset = read_dataset(flickr8k_text)
    assert dataset.layout == "flickr8k" and dataset.name == "flickr8k"
    assert len(dataset.items) == 8_091
    assert all(len(item.captions) == 5 for item in dataset.items)
    assert sum(len(item.captions) for item in dataset.items) == 40_460 - 5
    # the odd entry: deliberately left out, and said so
    assert ODD not in {item.image for item in dataset.items}
    assert any(ODD in note and "5 caption" in note for note in dataset.notes)
    # raw captions are kept exactly, quirks included
    first = dataset.items[0]
    assert first.image == "1000268201_693b08cb0e.jpg"
    assert first.captions[0] == "A child in a pink dress is climbing up a set of stairs in an entry way ."


def test_real_flickr8k_official_split(flickr8k_text):
    dataset = read_dataset(flickr8k_text)
    splits = split_dataset(dataset, DataSettings())
    assert {name: len(images) for name, images in splits.items()} == {"train": 6000, "val": 1000, "test": 1000}
    train, val, test = (set(splits[s]) for s in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert splits["val"][0] == "2090545563_a4e66ec76b.jpg"  # first line of Flickr_8k.devImages.txt


def test_text_in_a_flickr8k_text_subfolder(tmp_path, flickr8k_text):
    (tmp_path / "Flickr8k_text").mkdir()
    for path in flickr8k_text.iterdir():
        (tmp_path / "Flickr8k_text" / path.name).symlink_to(path)
    (tmp_path / "Flickr8k_Dataset").mkdir()
    dataset = read_dataset(tmp_path)
    assert dataset.layout == "flickr8k" and len(dataset.items) == 8091
    assert dataset.images_dir == tmp_path.resolve() / "Flickr8k_Dataset"


# ---------------------------------------------------------------- the other layouts

def test_csv_layout_with_quoted_commas_and_header(tmp_path):
    write(tmp_path / "captions.txt",
          'image,caption\n'
          'a.jpg,"A dog, brown, runs ."\n'
          'a.jpg,A dog  runs on GRASS .\n'
          'b.jpg,"He said ""hi"" ."\n'
          'c.jpg,A cat .\n'
          '\n')
    (tmp_path / "Images").mkdir()
    assert detect_layout(tmp_path) == "csv"
    dataset = read_dataset(tmp_path)
    assert [(i.image, i.captions) for i in dataset.items] == [
        ("a.jpg", ("A dog, brown, runs .", "A dog  runs on GRASS .")), ("b.jpg", ('He said "hi" .',)),
        ("c.jpg", ("A cat .",))]
    assert dataset.splits is None and dataset.images_dir == tmp_path.resolve() / "Images"


def test_csv_layout_of_the_shapes_data_set(shapes_dataset):
    dataset = read_dataset(shapes_dataset)
    assert dataset.layout == "csv" and len(dataset.items) == 60


def test_flickr30k_token_file(tmp_path):
    write(tmp_path / "results_20130124.token",
          "1000092795.jpg#0\tTwo young guys with shaggy hair .\n1000092795.jpg#1\tTwo young men .\n"
          "10002456.jpg#0\tSeveral men in hard hats .\n")
    (tmp_path / "flickr30k_images").mkdir()
    dataset = read_dataset(tmp_path)
    assert dataset.layout == "flickr30k" and dataset.name == "flickr30k"
    assert [len(i.captions) for i in dataset.items] == [2, 1]
    assert dataset.images_dir == tmp_path.resolve() / "flickr30k_images"


def test_flickr30k_results_csv_with_pipes(tmp_path):
    write(tmp_path / "results.csv",
          "image_name| comment_number| comment\n"
          "1000092795.jpg| 0| Two young guys with shaggy hair look at their hands .\n"
          "1000092795.jpg| 1| A man | a pipe in the caption .\n"
          "10002456.jpg| 0| Several men in hard hats .\n")
    (tmp_path / "flickr30k_images" / "flickr30k_images").mkdir(parents=True)
    dataset = read_dataset(tmp_path)
    assert dataset.layout == "flickr30k"
    assert dataset.items[0].captions[1] == "A man | a pipe in the caption ."
    assert dataset.images_dir == tmp_path.resolve() / "flickr30k_images" / "flickr30k_images"


def karpathy(images):
    return {"dataset": "flickr8k", "images": images}


def entry(name, split, *captions, filepath=None):
    data = {"filename": name, "split": split, "sentences": [{"raw": c, "tokens": c.lower().split()} for c in captions]}
    if filepath:
        data["filepath"] = filepath
    return data


def test_karpathy_json_splits_restval_is_train_and_images_folder_found(tmp_path):
    write(tmp_path / "dataset_flickr8k.json", json.dumps(karpathy([
        entry("a.jpg", "train", "A dog ."), entry("b.jpg", "restval", "A cat ."), entry("c.jpg", "val", "A cow ."),
        entry("d.jpg", "test", "A pig .", "Pink pig ."), entry("e.jpg", "extra", "?")])))
    images = tmp_path / "Flicker8k_Dataset"
    images.mkdir()
    for name in "abcd":
        (images / f"{name}.jpg").write_bytes(b"")
    dataset = read_dataset(tmp_path)
    assert dataset.layout == "karpathy" and dataset.name == "flickr8k" and dataset.images_dir == images.resolve()
    assert split_dataset(dataset, DataSettings()) == {"train": ["a.jpg", "b.jpg"], "val": ["c.jpg"], "test": ["d.jpg"]}
    assert any("'extra'" in note for note in dataset.notes)


def test_karpathy_coco_filepath_joins_the_image_name(tmp_path):
    write(tmp_path / "dataset_coco.json", json.dumps({"images": [
        entry("COCO_val2014_1.jpg", "test", "A bus .", filepath="val2014"),
        entry("COCO_train2014_2.jpg", "train", "A tram .", filepath="train2014"),
        entry("COCO_val2014_3.jpg", "restval", "A car .", filepath="val2014")]}))
    (tmp_path / "val2014").mkdir()
    (tmp_path / "val2014" / "COCO_val2014_1.jpg").write_bytes(b"")
    dataset = read_dataset(tmp_path)
    assert dataset.name == "coco" and dataset.images_dir == tmp_path.resolve()
    assert dataset.items[0].image == "val2014/COCO_val2014_1.jpg"
    assert dataset.image_path(dataset.items[0].image).is_file()


# ---------------------------------------------------------------- bad input

def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_dataset(tmp_path / "nowhere")


def test_unknown_layout_lists_what_it_looks_for(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError) as error:
        detect_layout(tmp_path)
    for expected in ("Flickr8k.token.txt", "captions.txt", "results_20130124.token", "results.csv",
                     "dataset_coco.json", "captioner data download"):
        assert expected in str(error.value)


@pytest.mark.parametrize("line", ["1000268201_693b08cb0e.jpg A girl without a tab .",
                                  "1000268201_693b08cb0e.jpg\tA caption without the #N ."])
def test_malformed_token_line_names_file_and_line(tmp_path, line):
    write(tmp_path / "Flickr8k.token.txt", f"a.jpg#0\tA dog .\na.jpg#1\tA dog runs .\n{line}\n")
    with pytest.raises(DataError, match=r"Flickr8k.token.txt, line 3: expected 'IMAGE#N<tab>CAPTION'"):
        read_dataset(tmp_path)


def test_malformed_csv_row_names_line(tmp_path):
    write(tmp_path / "captions.txt", "image,caption\na.jpg,A dog .\nb.jpg,A dog, unquoted comma .\n")
    with pytest.raises(DataError, match=r"captions.txt, line 3: expected 2 fields"):
        read_dataset(tmp_path)


def test_csv_with_a_wrong_header(tmp_path):
    write(tmp_path / "captions.txt", "file,text\na.jpg,A dog .\n")
    with pytest.raises(DataError, match="line 1: expected the header 'image,caption'"):
        read_dataset(tmp_path)


def test_malformed_pipe_csv_line(tmp_path):
    write(tmp_path / "results.csv", "image_name| comment_number| comment\na.jpg| 0| A dog .\nb.jpg| four| A dog runs .\n")
    with pytest.raises(DataError, match=r"results.csv, line 3"):
        read_dataset(tmp_path)


def test_non_utf8_bytes_name_file_and_line(tmp_path):
    write(tmp_path / "Flickr8k.token.txt", "a.jpg#0\tA dog .\na.jpg#1\tA caf\u00e9 .\n", encoding="latin-1")
    with pytest.raises(DataError, match=r"Flickr8k.token.txt, line 2: byte 0xe9 is not UTF-8"):
        read_dataset(tmp_path)


def test_empty_caption_file(tmp_path):
    write(tmp_path / "captions.txt", "")
    with pytest.raises(DataError, match="captions.txt is empty"):
        read_dataset(tmp_path)


def test_header_only_csv_has_no_usable_captions(tmp_path):
    write(tmp_path / "captions.txt", "image,caption\n")
    with pytest.raises(DataError, match="no usable captions"):
        read_dataset(tmp_path)


def test_damaged_karpathy_json(tmp_path):
    write(tmp_path / "dataset_flickr30k.json", '{"images": [\n{"filename": "a.jpg",\n')
    with pytest.raises(DataError, match=r"dataset_flickr30k.json, line \d+: not valid JSON"):
        read_dataset(tmp_path)


def test_some_split_files_missing(tmp_path):
    write(tmp_path / "Flickr8k.token.txt", "a.jpg#0\tA dog .\n")
    write(tmp_path / "Flickr_8k.trainImages.txt", "a.jpg\n")
    with pytest.raises(DataError, match="Flickr_8k.devImages.txt, Flickr_8k.testImages.txt missing"):
        read_dataset(tmp_path)


def test_an_image_in_two_splits(tmp_path):
    write(tmp_path / "Flickr8k.token.txt", "a.jpg#0\tA dog .\nb.jpg#0\tA cat .\n")
    write(tmp_path / "Flickr_8k.trainImages.txt", "a.jpg\n")
    write(tmp_path / "Flickr_8k.devImages.txt", "b.jpg\n")
    write(tmp_path / "Flickr_8k.testImages.txt", "a.jpg\n")
    with pytest.raises(DataError, match=r"Flickr_8k.testImages.txt, line 1: a.jpg is already in the train split"):
        read_dataset(tmp_path)


def test_empty_and_blank_captions_are_skipped_and_reported(tmp_path):
    write(tmp_path / "Flickr8k.token.txt", "a.jpg#0\tA dog .\na.jpg#1\t   \n\n\nb.jpg#0\tA cat .\n")
    dataset = read_dataset(tmp_path)
    assert [i.captions for i in dataset.items] == [("A dog .",), ("A cat .",)]
    assert any("1 empty caption" in note for note in dataset.notes)
