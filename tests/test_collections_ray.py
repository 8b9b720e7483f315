"""The Ray engine on a real local Ray that ``captioner collection --engine ray`` starts: Ray Data reads the
files, an actor pool captions them with the real demo model, rows stream back to the same results. It resumes a
results set that the in-process engine started, and its rows equal the in-process engine's.

The Ray runs go through the command in a process of their own, as users run them. Ray's driver leaves native
threads behind in the process that started it (the GCS client's I/O thread, gRPC's timer and event-engine
threads) that ``ray.shutdown()`` does not join; in a pytest process that goes on to load and tear down many other
libraries, those threads race the interpreter's exit and can abort it after every test has passed. A driver
process of its own exits as the command does, and this process never starts Ray."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from support.cli import run_cli

pytest.importorskip("keras")
pytest.importorskip("ray")
pytest.importorskip("pyarrow")


def collection_on_ray(folder, out, model, *options) -> dict:
    """``captioner collection FOLDER --engine ray`` in its own process (a local Ray it starts and stops); its
    JSON summary."""
    done = run_cli("collection", folder, "--out", out, "--model", model, "--engine", "ray", "--actors", "1",
                   "--json", *options)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_ray_engine_resumes_and_agrees_with_the_local_engine(shapes_dataset, tmp_path, demo_bundle):
    from captioner.collections import CollectionJob, CollectionSettings, read_rows, run_collection
    from captioner.models.registry import load_captioner

    bundle = demo_bundle
    captioner = load_captioner(bundle)
    folder = tmp_path / "photos"
    for index, picture in enumerate(sorted((shapes_dataset / "Images").iterdir())[:12]):
        (folder / ("first" if index < 5 else "later")).mkdir(parents=True, exist_ok=True)
        shutil.copy(picture, folder / ("first" if index < 5 else "later") / picture.name)
    (folder / "later" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "results.parquet"
    settings = CollectionSettings(batch_size=4)

    def job(root, results, **changes):
        return CollectionJob(roots=(str(root),), out=str(results), model=str(bundle), settings=settings, **changes)

    first = run_collection(job(folder / "first", out), captioner, captioner.default_decoding)  # in process
    assert first.captioned == 5 and first.failed == []
    # --precision reaches the Ray workers through their runtime environment (a no-op for this Keras model)
    on_ray = collection_on_ray(folder, out, bundle, "--batch-size", "4", "--precision", "float32")
    assert (on_ray["captioned"], on_ray["skipped"], len(on_ray["failed"])) == (7, 5, 1)  # resumed where it stopped
    assert "broken.png" in on_ray["failed"][0]["error"]

    rows = read_rows(out)
    assert len(rows) == 13 and Counter(row.sha256 for row in rows).most_common(1)[0][1] == 1
    local = run_collection(job(folder / "later", tmp_path / "local.jsonl"), captioner, captioner.default_decoding)
    assert local.captioned == 7
    expected = {row.sha256: row for row in read_rows(tmp_path / "local.jsonl")}
    for row in rows[5:]:  # the rows Ray made, against the in-process engine's for the same files
        twin = expected[row.sha256]
        assert (row.path, row.caption, row.width, row.height, row.error) == (twin.path, twin.caption, twin.width,
                                                                             twin.height, twin.error)
        if row.caption:
            assert row.score == pytest.approx(twin.score, abs=1e-4) and row.alternatives == twin.alternatives


@pytest.mark.slow
def test_ray_actors_score_and_word_captions_as_the_local_engine_does(shapes_dataset, tmp_path, demo_bundle,
                                                                     clip_score_model):
    """--score clip and --template on Ray: each actor loads the CLIP the driver named and remakes the captioner
    the command made (the template filled in), so the captions and the clip_score column are the local engine's."""
    from captioner.collections import CollectionJob, CollectionSettings, read_rows, run_collection
    from captioner.models.registry import load_captioner
    from captioner.collections.wording import WordingOptions, worded

    wording = WordingOptions(template="a picture: {caption}")
    captioner = worded(load_captioner(demo_bundle), wording)
    folder = tmp_path / "photos"
    folder.mkdir()
    for picture in sorted((shapes_dataset / "Images").iterdir())[:4]:
        shutil.copy(picture, folder / picture.name)

    def scores(out) -> dict:
        return {row.sha256: row.clip_score for row in read_rows(out)}

    def captions(out) -> dict:
        return {row.sha256: row.caption for row in read_rows(out)}

    collection_on_ray(folder, tmp_path / "ray.jsonl", demo_bundle, "--score", "clip", "--batch-size", "2",
                      "--template", wording.template)
    job = CollectionJob(roots=(str(folder),), out=str(tmp_path / "local.jsonl"), model=str(demo_bundle), score="clip",
                        settings=CollectionSettings(batch_size=2), wording=wording.to_dict())
    run_collection(job, captioner, captioner.default_decoding)
    on_ray, local = scores(tmp_path / "ray.jsonl"), scores(tmp_path / "local.jsonl")
    assert len(on_ray) == 4 and all(score is not None and score > 0 for score in on_ray.values())
    assert on_ray == pytest.approx(local, abs=1e-5)
    worded_captions = captions(tmp_path / "ray.jsonl")
    assert worded_captions == captions(tmp_path / "local.jsonl")
    assert all(text.startswith("a picture: ") and len(text) > len("a picture: ") for text in worded_captions.values())
