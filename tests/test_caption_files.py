"""Caption files beside images for training sets, on a messy folder built here and captioned by the real shapes
demo model: stem conflicts, a person's files under each --existing choice, trigger, prefix and suffix, several
lines, a dry run, a run interrupted and resumed, the three manifests (ImageFolder read back by the real
`datasets` package), and `captioner dataset check`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from support.cli import assert_clean_failure, run_main

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def pictures(shapes_dataset) -> list[Path]:
    return sorted((shapes_dataset / "Images").iterdir())[:10]


def messy_folder(root: Path, pictures: list[Path]) -> Path:
    """A training set as people have them: nested folders, a.jpg beside a.png, a person's caption file, an
    empty caption file, a text file that is no caption."""
    folder = root / "set"
    (folder / "poses").mkdir(parents=True)
    for index, picture in enumerate(pictures[:6]):
        shutil.copy(picture, (folder if index % 2 else folder / "poses") / f"img{index}.png")
    with Image.open(pictures[6]) as image:
        image.convert("RGB").save(folder / "img1.jpg")  # img1.png and img1.jpg: one caption file for two images
    (folder / "img3.txt").write_text("my own words about this one\n")
    (folder / "poses" / "img0.txt").write_text("")  # empty: nobody's words yet
    return folder


def caption(folder: Path, models: Path, *options: str):
    return run_main("collection", str(folder), "--captions", "txt", "--model", str(models / "shapes-demo"), *options)


def test_caption_files_follow_the_rules(demo_models_dir, pictures, tmp_path):
    folder = messy_folder(tmp_path, pictures)
    result = caption(folder, demo_models_dir, "--trigger", "sks", "--prefix", "photo of", "--suffix", "best")
    assert result.returncode == 0, result
    assert "stem conflict" in result.stdout and "img1.jpg" in result.stdout and "img1.png" in result.stdout
    assert not (folder / "img1.txt").exists()  # neither image of the conflict gets a file
    assert (folder / "img3.txt").read_text() == "my own words about this one\n"  # a person's file: skipped
    for name in ("img5.txt", "poses/img0.txt", "poses/img2.txt"):  # the empty file counts as no caption
        text = (folder / name).read_text()
        parts = text.rstrip("\n").split(", ")
        assert parts[:2] == ["sks", "photo of"] and parts[-1] == "best" and len(parts) == 4, text
    state = folder / ".captioner"
    assert (state / "results.jsonl").is_file() and (state / "caption-files.jsonl").is_file()  # no --out needed
    assert not list(folder.glob("*.jsonl"))

    (folder / "img5.txt").write_text("sks, a person fixed this one\n")  # a person's edit of captioner's file
    again = caption(folder, demo_models_dir, "--trigger", "ohwx")  # other settings: captioner's own text follows
    assert again.returncode == 0, again
    assert "0 captioned" in again.stdout  # nothing captioned twice
    assert (folder / "img5.txt").read_text() == "sks, a person fixed this one\n"
    assert (folder / "poses" / "img2.txt").read_text().startswith("ohwx, ")
    assert "photo of" not in (folder / "poses" / "img2.txt").read_text()
    assert not (folder / "img1.txt").exists()


@pytest.mark.parametrize("existing", ["replace", "append", "prepend"])
def test_each_existing_choice_on_a_persons_file(demo_models_dir, pictures, tmp_path, existing):
    folder = tmp_path / "set"
    folder.mkdir()
    shutil.copy(pictures[0], folder / "a.png")
    (folder / "a.txt").write_text("my words\n")
    assert caption(folder, demo_models_dir, "--trigger", "sks", "--existing", existing).returncode == 0
    text = (folder / "a.txt").read_text().rstrip("\n")
    ours = json.loads((folder / ".captioner" / "caption-files.jsonl").read_text().splitlines()[-1])["Text"]
    assert ours.startswith("sks, ") and ours != "sks, "
    body = ours.removeprefix("sks, ")  # the trigger stays first, even after a person's words
    assert text == {"replace": ours, "append": f"sks, my words, {body}", "prepend": f"{ours}, my words"}[existing]
    rerun = caption(folder, demo_models_dir, "--trigger", "sks", "--existing", existing)  # nothing doubles
    assert rerun.returncode == 0 and (folder / "a.txt").read_text().rstrip("\n") == text


def test_lines_and_dry_run(demo_models_dir, pictures, tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    for index, picture in enumerate(pictures[:3]):
        shutil.copy(picture, folder / f"p{index}.png")
    preview = caption(folder, demo_models_dir, "--trigger", "sks", "--lines", "2", "--dry-run")
    assert preview.returncode == 0, preview
    planned = [line for line in preview.stdout.splitlines() if line.startswith("would write") and ".txt:" in line]
    assert len(planned) == 3 and "p0.txt: new 'sks, " in preview.stdout, preview.stdout
    assert sorted(path.name for path in folder.iterdir()) == ["p0.png", "p1.png", "p2.png"]  # nothing written
    assert caption(folder, demo_models_dir, "--trigger", "sks", "--lines", "2").returncode == 0
    lines = (folder / "p0.txt").read_text().splitlines()
    assert len(lines) == 2 and lines[0] != lines[1] and all(line.startswith("sks, ") for line in lines)


def test_an_interrupted_run_resumes(demo_models_dir, pictures, tmp_path):
    from captioner.collections import CollectionJob, CollectionSettings, read_rows, run_collection
    from captioner.collections.caption_files import CaptionFileSettings
    from captioner.models.registry import load_captioner

    folder = tmp_path / "set"
    folder.mkdir()
    for index, picture in enumerate(pictures):
        shutil.copy(picture, folder / f"p{index}.png")
    out = folder / ".captioner" / "results.jsonl"
    job = CollectionJob(roots=(str(folder),), out=str(out), captions="txt",
                        caption_files=CaptionFileSettings(trigger="sks"), settings=CollectionSettings(batch_size=4))
    captioner = load_captioner(str(demo_models_dir / "shapes-demo"))

    def stop(step):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_collection(job, captioner, captioner.default_decoding, on_step=stop)
    written = sorted(folder.glob("*.txt"))
    assert len(written) == 4 and len(read_rows(out)) == 4  # the first batch: rows and files, together
    # killed after a record was appended but before its file was written: still captioner's, not a person's
    (folder / ".captioner" / "caption-files.jsonl").open("a").write('{"File": "p9.txt", "Model": "x", "Text": "t"}\n')
    summary = run_collection(job, captioner, captioner.default_decoding)
    assert summary.captioned == len(pictures) - 4 and summary.skipped == 4
    assert len({row.sha256 for row in read_rows(out)}) == len(read_rows(out)) == len(pictures)
    assert all((folder / f"p{index}.txt").read_text().startswith("sks, ") for index in range(len(pictures)))


def test_keywords_style_writes_its_tags_joined_by_the_separator():
    from captioner.collections.caption_files import CaptionFileSettings, caption_texts
    from captioner.collections.results import ResultRow

    row = ResultRow("a.png", "00", 1, 1, "tagger", {"style": "keywords"}, caption="1girl, solo",
                    keywords=["1girl", "solo", "smile"])
    settings = CaptionFileSettings(trigger="sks", separator=" | ")
    assert settings.content(caption_texts(row, settings)) == "sks | 1girl | solo | smile"


def test_the_three_manifests(demo_models_dir, pictures, tmp_path):
    folder = tmp_path / "set"
    for split, chosen in (("train", pictures[:4]), ("validation", pictures[4:6])):
        (folder / split).mkdir(parents=True)
        for index, picture in enumerate(chosen):
            shutil.copy(picture, folder / split / f"{split}{index}.png")
    for kind in ("hf", "musubi", "kohya"):
        result = caption(folder, demo_models_dir, "--manifest", kind)
        assert result.returncode == 0, result
    texts = {image: (image.with_suffix(".txt")).read_text().strip() for image in folder.rglob("*.png")}

    from datasets import load_dataset

    loaded = load_dataset("imagefolder", data_dir=str(folder))
    assert sorted(loaded) == ["train", "validation"]
    assert loaded["train"].num_rows == 4 and loaded["validation"].num_rows == 2
    assert sorted(loaded["validation"]["text"]) == sorted(text for image, text in texts.items()
                                                          if image.parent.name == "validation")
    assert loaded["train"][0]["image"].size == Image.open(folder / "train" / "train0.png").size

    musubi = [json.loads(line) for line in (folder / "musubi.jsonl").read_text().splitlines()]
    assert {Path(entry["image_path"]): entry["caption"] for entry in musubi} == texts
    kohya = json.loads((folder / "meta_cap.json").read_text())
    assert {Path(key): entry["caption"] for key, entry in kohya.items()} == texts


def test_dataset_check_finds_what_trainers_trip_over(demo_models_dir, pictures, tmp_path):
    folder = messy_folder(tmp_path, pictures)
    assert caption(folder, demo_models_dir, "--trigger", "sks").returncode == 0
    shutil.copy(pictures[0], folder / "copy.png")  # the same image as poses/img0.png, without a caption
    (folder / "orphan.txt").write_text("sks, nothing\n")
    (folder / "broken.png").write_text("not an image")
    (folder / "broken.txt").write_text("sks, " + "word " * 90)
    (folder / "poses" / "img4.txt").write_text("\n")
    result = run_main("dataset", "check", str(folder), "--trigger", "sks", "--json")
    assert result.returncode == 1, result
    report = json.loads(result.stdout)
    found = {(problem["kind"], Path(problem["path"]).name) for problem in report["problems"]}
    assert found == {("conflict", "img1.txt"), ("no-caption", "img1.png"), ("no-caption", "img1.jpg"),
                     ("no-trigger", "img3.txt"), ("duplicate", "img0.png"), ("no-caption", "copy.png"),
                     ("no-image", "orphan.txt"), ("unreadable", "broken.png"), ("too-long", "broken.txt"),
                     ("empty", "img4.txt")}, found
    assert report["length_counted_in"] == "words"
    table = run_main("dataset", "check", str(folder))
    assert table.returncode == 1 and "stem conflict" in table.stdout and "no CLIP tokenizer" in table.stdout

    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(pictures[0], clean / "a.png")
    (clean / "a.txt").write_text("sks, a shape\n")
    assert run_main("dataset", "check", str(clean), "--trigger", "sks").returncode == 0


def test_bad_caption_file_options_fail_cleanly(demo_models_dir, pictures, tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    shutil.copy(pictures[0], folder / "a.png")
    model = str(demo_models_dir / "shapes-demo")
    assert_clean_failure(run_main("collection", str(folder), "--model", model), "--out")
    assert_clean_failure(run_main("collection", str(folder), "--model", model, "--out", str(tmp_path / "r.jsonl"),
                                  "--trigger", "sks"), "--captions")
    assert_clean_failure(run_main("collection", str(folder), str(folder), "--captions", "txt", "--model", model),
                         "one FOLDER")
    assert_clean_failure(caption(folder, demo_models_dir, "--caption-extension", "txt"), ".caption")
    assert_clean_failure(run_main("dataset", "check", str(tmp_path / "missing")), "no such folder")
    assert sorted(path.name for path in folder.iterdir()) == ["a.png"]
