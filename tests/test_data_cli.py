"""`captioner data ...` as a user runs it: in a fresh process, with one clear line for every bad input."""

import json

from support.cli import assert_clean_failure


def test_shapes_prepare_and_preview(runner, tmp_path):
    done = runner("data", "shapes", "--out", tmp_path / "shapes", "--images", "12", "--seed", "1")
    assert done.returncode == 0, done.stderr
    done = runner("data", "prepare", tmp_path / "shapes", "--out", tmp_path / "prepared", "--preset", "seed")
    assert done.returncode == 0, done.stderr
    assert "train" in done.stdout and "vocabulary:" in done.stdout and "max " in done.stdout
    meta = json.loads((tmp_path / "prepared" / "prepared.json").read_text())
    assert f"{meta['vocab_size']:,} tokens" in done.stdout
    done = runner("data", "preview", tmp_path / "shapes", "--out", tmp_path / "samples.png", "--n", "4")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prepare_json_summary(runner, shapes_dataset, tmp_path):
    done = runner("data", "prepare", shapes_dataset, "--out", tmp_path / "p", "--min-count", "2", "--seed", "3", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["min_count"] == 2 and summary["seed"] == 3 and summary["layout"] == "csv"
    assert sum(s["images"] for s in summary["splits"].values()) == 60


def test_download_refuses_files_that_do_not_match_the_pinned_checksums(runner, tmp_path):
    from test_download import Server, flickr8k_zips

    zips = flickr8k_zips()
    with Server(zips) as server:
        # checksums of these test zips differ from the real ones: the pinned MD5 must refuse them
        done = runner("data", "download", "flickr8k", "--dest", tmp_path / "d", "--base-url", server.url)
        assert_clean_failure(done, "does not match its published checksum")
        assert not (tmp_path / "d").exists()


def test_missing_folder(runner, tmp_path):
    assert_clean_failure(runner("data", "prepare", tmp_path / "nope", "--out", tmp_path / "out"), "does not exist")
    assert not (tmp_path / "out").exists()


def test_unknown_layout(runner, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.txt").write_text("x")
    assert_clean_failure(runner("data", "prepare", tmp_path / "data", "--out", tmp_path / "out"),
                         "no caption data set", "captions.txt")
    assert not (tmp_path / "out").exists()


def test_malformed_line(runner, tmp_path):
    (tmp_path / "Flickr8k.token.txt").write_text("a.jpg#0\tA dog .\nbroken line\n")
    assert_clean_failure(runner("data", "prepare", tmp_path, "--out", tmp_path / "out"), "line 2")
    assert not (tmp_path / "out").exists()


def test_non_utf8_bytes(runner, tmp_path):
    (tmp_path / "captions.txt").write_bytes(b"image,caption\na.jpg,A caf\xe9 .\n")
    assert_clean_failure(runner("data", "prepare", tmp_path, "--out", tmp_path / "out"), "captions.txt, line 2", "utf-8")
    assert not (tmp_path / "out").exists()


def test_empty_split(runner, tmp_path):
    (tmp_path / "Images").mkdir()
    (tmp_path / "Flickr8k.token.txt").write_text("a.jpg#0\tA dog .\nb.jpg#0\tA cat .\n")
    for split, names in (("train", "a.jpg\n"), ("dev", "b.jpg\n"), ("test", "")):
        (tmp_path / f"Flickr_8k.{split}Images.txt").write_text(names)
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "Images" / name).touch()
    assert_clean_failure(runner("data", "prepare", tmp_path, "--out", tmp_path / "out"), "test split", "empty")
    assert not (tmp_path / "out").exists()


def test_preview_without_images(runner, tmp_path):
    (tmp_path / "captions.txt").write_text("image,caption\na.jpg,A dog .\n")
    assert_clean_failure(runner("data", "preview", tmp_path, "--out", tmp_path / "s.png"), "captioner data download")
    assert not (tmp_path / "s.png").exists()


def test_shapes_with_too_few_images(runner, tmp_path):
    assert_clean_failure(runner("data", "shapes", "--out", tmp_path / "s", "--images", "2"), "at least 3")
    assert not (tmp_path / "s").exists()
