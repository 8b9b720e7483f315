"""`captioner collection` as a user runs it: a real subprocess captioning a real folder with the real shapes
demo model, killed with SIGKILL part way (a real subprocess) and run again; renamed files; corrupt files;
torn result files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from support import ROOT
from support.cli import assert_clean_failure, run_main

pytest.importorskip("keras")

IMAGES = 40


@pytest.fixture(scope="module")
def models_dir(demo_models_dir) -> Path:
    return demo_models_dir


@pytest.fixture(scope="module")
def photo_folder(shapes_dataset, tmp_path_factory) -> Path:
    """A folder as people have them: nested folders, a JPEG without a suffix, a copy of a photo, a symbolic
    link back up the tree, a text file, a damaged file named like a photo, a truncated PNG."""
    folder = tmp_path_factory.mktemp("collection") / "photos"
    pictures = sorted((shapes_dataset / "Images").iterdir())[:IMAGES]
    for index, picture in enumerate(pictures):
        target = folder / f"album{index % 3}" / picture.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(picture, target)
    with Image.open(pictures[0]) as image:
        image.convert("RGB").save(folder / "IMG_0001", format="JPEG")  # an image by content, no suffix
    shutil.copy(pictures[1], folder / "album0" / "copy-of-1.png")  # same content: captioned once
    (folder / "album1" / "loop").symlink_to(folder)  # walking must not go round forever
    (folder / "notes.txt").write_text("not a photo\n")
    (folder / "broken.jpg").write_text("not a jpeg either\n")
    (folder / "cut.png").write_bytes(pictures[2].read_bytes()[:200])
    return folder


def contents(folder: Path) -> set[str]:
    """sha256 of every readable picture in the folder (what must end up captioned exactly once)."""
    import hashlib

    return {hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.rglob("*")
            if path.is_file() and not path.is_symlink() and path.name not in ("notes.txt", "broken.jpg", "cut.png")}


def rows_of(out: Path) -> list[dict]:
    from captioner.collections import read_rows

    return [row.to_dict() for row in read_rows(out)]


@pytest.mark.slow
def test_killed_run_resumes_with_every_image_exactly_once(models_dir, photo_folder, tmp_path):
    out = tmp_path / "results.jsonl"
    command = [sys.executable, "-m", "captioner", "collection", str(photo_folder), "--out", str(out),
               "--model", "shapes-demo", "--models-dir", str(models_dir), "--batch-size", "1", "--readers", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 4:
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, process.stderr.read()
    before = len(rows_of(out))
    assert 0 < before < IMAGES, "the run was not stopped part way"
    with open(out, "ab") as handle:  # what a power cut in the middle of a write leaves
        handle.write(b'{"path": "half')

    again = run_main("collection", photo_folder, "--out", out, "--model", "shapes-demo", "--models-dir", models_dir,
                    "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    rows = rows_of(out)
    captioned = [row for row in rows if row["caption"]]
    assert Counter(row["sha256"] for row in captioned) == Counter(contents(photo_folder))  # each exactly once
    assert all(row["caption"].strip() and row["width"] and row["model"] == "shapes-demo" for row in captioned)
    failed = sorted(Path(row["path"]).name for row in rows if row["error"])
    assert failed == ["broken.jpg", "cut.png"]  # listed once each, never captioned
    assert summary["captioned"] + summary["skipped"] + len(summary["failed"]) == summary["found"]
    assert b"half" not in out.read_bytes()


@pytest.mark.slow
def test_renamed_and_moved_files_are_not_captioned_again_and_corrupt_files_are_listed(models_dir, photo_folder,
                                                                                        tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(photo_folder, folder, symlinks=True)
    (folder / "album1" / "loop").unlink()
    (folder / "album1" / "loop").symlink_to(folder)
    out = tmp_path / "results.csv"
    first = run_main("collection", folder, "--out", out, "--model", "shapes-demo", "--models-dir", models_dir)
    assert first.returncode == 0, first.stderr
    assert f"unreadable\t{folder / 'broken.jpg'}\t" in first.stdout and "cut.png" in first.stdout
    assert "notes.txt" not in first.stdout  # not an image by content or name: not a failure either
    moved = folder / "album2" / "renamed.png"
    (folder / "album0").rename(folder / "album0-renamed")
    next((folder / "album1").glob("shape_*.png")).rename(moved)
    again = run_main("collection", folder, "--out", out, "--model", "shapes-demo", "--models-dir", models_dir,
                    "--json")
    summary = json.loads(again.stdout)
    assert summary["captioned"] == 0 and summary["failed"] == [] and summary["skipped"] == summary["found"]
    assert len(rows_of(out)) == len(contents(photo_folder)) + 2

    beam = run_main("collection", folder, "--out", out, "--model", "shapes-demo", "--models-dir", models_dir,
                   "--beam", "2", "--json")  # other decoding settings: a new result for every image
    assert json.loads(beam.stdout)["captioned"] == len(contents(photo_folder))


def test_bad_arguments_fail_with_one_clear_line(tmp_path):
    assert_clean_failure(run_main("collection", tmp_path / "nowhere", "--out", tmp_path / "r.jsonl", "--model", "x",
                                 "--models-dir", tmp_path), "nowhere")
    assert_clean_failure(run_main("collection", tmp_path, "--out", tmp_path / "r.txt", "--model", "x"), "r.txt")
    (tmp_path / "r.jsonl").write_text('{"path": "a"}\n')
    from captioner.collections import open_results

    with pytest.raises(Exception, match="not a captioner result row"):
        open_results(tmp_path / "r.jsonl")


def test_torn_rows_are_cut_off_and_parquet_parts_are_whole(tmp_path):
    """Every format reads back what it appended; a torn CSV record (a quoted field with a newline, cut in
    the middle) is cut off on the next open; a second writer is refused while one holds the file."""
    pytest.importorskip("pyarrow")
    from captioner.collections import ResultRow, open_results, read_rows

    def row(index: int) -> ResultRow:
        return ResultRow(f"/photos/line\nbreak, \"quoted\" {index}.jpg", f"{index:064x}", 4, 3, "m",
                         {"method": "greedy"}, caption=f"a caption {index}", score=-1.5,
                         alternatives=[{"text": "x", "log_prob": -1.0}], translations={"de": "ein"})

    for name in ("r.jsonl", "r.csv", "r.parquet"):
        with open_results(tmp_path / name) as results:
            results.append([row(1), row(2)])
            with pytest.raises(Exception, match="another captioner run is writing"):
                open_results(tmp_path / name)
        assert [r.to_dict() for r in read_rows(tmp_path / name)] == [row(1).to_dict(), row(2).to_dict()]
    with open(tmp_path / "r.csv", "ab") as handle:
        handle.write(b'"/photos/torn\nname.jpg",00ff')
    with open_results(tmp_path / "r.csv") as results:
        assert len(results.rows) == 2 and row(1).key in results.done
        results.append([row(3)])
    assert [r.caption for r in read_rows(tmp_path / "r.csv")] == ["a caption 1", "a caption 2", "a caption 3"]
    assert sorted(p.name for p in (tmp_path / "r.parquet").iterdir()) == [".lock", "part-000000.parquet"]
