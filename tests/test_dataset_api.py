"""The training-set review API (``/api/v1/datasets``) through Flask's test client, on real folders, with the real
demo model: off unless CAPTIONER_DATASETS_DIR is set, paths out of the root refused, saves refused with both
texts over a changed file, find and replace, tags, the trigger word, captioning into caption files that the
``.captioner/`` state records (a person's file kept unless asked), thumbnails, keys and foreign sites."""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image

from captioner.collections.caption_files import RECORDS_FILE, STATE_FOLDER


@pytest.fixture(scope="module")
def datasets_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("datasets") / "sets"


@pytest.fixture(scope="module")
def app(make_app, demo_models_dir, datasets_dir, tmp_path_factory):
    (datasets_dir / "outside-link-target").mkdir(parents=True)
    app = make_app(demo_models_dir, datasets_dir=str(datasets_dir), rate_limit="off")
    yield app
    app.extensions["captioner"].close()


@pytest.fixture
def folder(datasets_dir, request, tmp_path):
    """A folder of this test's own under the root: three shapes pictures, one with a person's caption."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    path = datasets_dir / name
    for number, color in enumerate([(220, 30, 30), (30, 200, 30), (30, 30, 220)]):
        path.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (96, 72), color).save(path / f"shape-{number}.png")
    (path / "shape-0.txt").write_text("a red square, bright\n")
    return path


def items(client, folder) -> dict:
    answer = client.get("/api/v1/datasets/items", query_string={"folder": folder.name})
    assert answer.status_code == 200, answer.json
    return {item["image"]: item for item in answer.json["items"]}


def test_off_when_the_folder_is_not_set(make_app, tmp_path):
    app = make_app(tmp_path / "models")
    client = app.test_client()
    answer = client.get("/api/v1/datasets")
    assert answer.status_code == 404 and "CAPTIONER_DATASETS_DIR" in answer.json["error"]["message"]
    assert client.put("/api/v1/datasets/caption-file", json={}).status_code == 404
    page = client.get("/dataset")
    assert page.status_code == 404 and "CAPTIONER_DATASETS_DIR" in page.get_data(as_text=True)
    assert "Training sets" not in client.get("/").get_data(as_text=True)  # not in the navigation either
    app.extensions["captioner"].close()


def test_folders_items_and_a_thumbnail(client, folder):
    folders = client.get("/api/v1/datasets").json["folders"]
    assert {"name": folder.name, "images": 3, "captions": 1} in folders
    listed = client.get("/api/v1/datasets/items", query_string={"folder": folder.name, "per_page": 2}).json
    assert listed["total"] == 3 and listed["uncaptioned"] == 2 and listed["pages"] == 2
    assert [item["image"] for item in listed["items"]] == ["shape-0.png", "shape-1.png"]
    assert listed["items"][0]["text"] == "a red square, bright"
    thumbnail = client.get(listed["items"][0]["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.mimetype == "image/jpeg"
    with Image.open(io.BytesIO(thumbnail.data)) as small:
        assert small.format == "JPEG" and small.size == (96, 72)
    page = client.get("/dataset")
    assert page.status_code == 200 and "Training sets" in page.get_data(as_text=True)


def test_a_save_and_a_conflict_showing_both_texts(client, folder):
    first = items(client, folder)["shape-0.png"]
    saved = client.put("/api/v1/datasets/caption-file", json={
        "folder": folder.name, "image": "shape-0.png", "text": "sks, a red square", "version": first["version"]})
    assert saved.status_code == 200 and saved.json["text"] == "sks, a red square"
    assert (folder / "shape-0.txt").read_text() == "sks, a red square\n"
    (folder / "shape-0.txt").write_text("changed in another editor\n")
    refused = client.put("/api/v1/datasets/caption-file", json={
        "folder": folder.name, "image": "shape-0.png", "text": "my later edit", "version": saved.json["version"]})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "conflict"
    assert refused.json["disk"]["text"] == "changed in another editor" and refused.json["yours"] == "my later edit"
    assert (folder / "shape-0.txt").read_text() == "changed in another editor\n"
    disk_version = refused.json["disk"]["version"]  # the person picks theirs: saved at the disk's version
    kept = client.put("/api/v1/datasets/caption-file", json={
        "folder": folder.name, "image": "shape-0.png", "text": "my later edit", "version": disk_version})
    assert kept.status_code == 200 and (folder / "shape-0.txt").read_text() == "my later edit\n"
    bad = client.put("/api/v1/datasets/caption-file", json={"folder": folder.name, "image": "shape-0.png"})
    assert bad.status_code == 400 and "'text'" in bad.json["error"]["message"]


def test_find_and_replace_counts_first_then_applies(client, folder):
    (folder / "shape-1.txt").write_text("a green square, square\n")
    counted = client.post("/api/v1/datasets/replace", json={"folder": folder.name, "find": "square", "replace": "box"})
    assert counted.json["occurrences"] == 3 and counted.json["changed"] == 2 and not counted.json["applied"]
    assert (folder / "shape-1.txt").read_text() == "a green square, square\n"
    applied = client.post("/api/v1/datasets/replace", json={"folder": folder.name, "find": "square", "replace": "box",
                                                             "apply": True})
    assert applied.json["changed"] == 2
    assert (folder / "shape-0.txt").read_text() == "a red box, bright\n"
    assert (folder / "shape-1.txt").read_text() == "a green box, box\n"
    assert not (folder / "shape-2.txt").exists()


def test_tags_across_a_selection_and_the_trigger_word(client, folder):
    (folder / "shape-1.txt").write_text("old, a green square\n")
    added = client.post("/api/v1/datasets/tags", json={"folder": folder.name, "images": ["shape-0.png", "shape-1.png"],
                                                        "add": "flat colour"})
    assert added.status_code == 200 and added.json["changed"] == 2
    assert (folder / "shape-0.txt").read_text() == "a red square, bright, flat colour\n"
    removed = client.post("/api/v1/datasets/tags", json={"folder": folder.name, "images": ["shape-0.png"],
                                                          "remove": "bright"})
    assert removed.json["changed"] == 1 and (folder / "shape-0.txt").read_text() == "a red square, flat colour\n"
    trigger = client.post("/api/v1/datasets/trigger", json={"folder": folder.name, "trigger": "shp", "old": "old"})
    assert trigger.json["changed"] == 2
    assert (folder / "shape-0.txt").read_text() == "shp, a red square, flat colour\n"
    assert (folder / "shape-1.txt").read_text() == "shp, a green square, flat colour\n"
    both = client.post("/api/v1/datasets/tags", json={"folder": folder.name, "images": [], "add": "a", "remove": "b"})
    assert both.status_code == 400


def test_captioning_writes_caption_files_recorded_in_the_state_and_keeps_a_persons(client, folder):
    answer = client.post("/api/v1/datasets/captions", json={"folder": folder.name})
    assert answer.status_code == 200, answer.json
    actions = {result["image"]: result["action"] for result in answer.json["results"]}
    assert actions == {"shape-1.png": "new", "shape-2.png": "new"} and answer.json["remaining"] == 0
    written = (folder / "shape-1.txt").read_text().strip()
    assert written and written == answer.json["results"][0]["item"]["text"]
    assert answer.json["results"][0]["item"]["written_by"] == "captioner"
    records = [json.loads(line) for line in (folder / STATE_FOLDER / RECORDS_FILE).read_text().splitlines()]
    assert {record["File"] for record in records} == {"shape-1.txt", "shape-2.txt"}
    assert records[0]["Model"] == "shapes-demo" and records[0]["Text"] == written

    kept = client.post("/api/v1/datasets/captions", json={"folder": folder.name, "images": ["shape-0.png"]})
    assert kept.json["results"][0]["action"] == "kept"
    assert (folder / "shape-0.txt").read_text() == "a red square, bright\n"  # a person's words
    replaced = client.post("/api/v1/datasets/captions", json={"folder": folder.name, "images": ["shape-0.png"],
                                                              "existing": "replace", "trigger": "shp"})
    assert replaced.json["results"][0]["action"] == "replaced"
    assert (folder / "shape-0.txt").read_text().startswith("shp, ")
    unknown = client.post("/api/v1/datasets/captions", json={"folder": folder.name, "model": "nope"})
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "unknown_model"


@pytest.mark.parametrize("folder_name", ["../..", "/etc", "escape", ".captioner"])
def test_paths_out_of_the_root_are_refused(client, datasets_dir, tmp_path_factory, folder_name):
    outside = tmp_path_factory.mktemp("outside")
    Image.new("RGB", (8, 8)).save(outside / "private.png")
    if not (datasets_dir / "escape").is_symlink():
        (datasets_dir / "escape").symlink_to(outside, target_is_directory=True)
    answer = client.get("/api/v1/datasets/items", query_string={"folder": folder_name})
    assert answer.status_code == 403 and answer.json["error"]["code"] == "refused_path"
    save = client.put("/api/v1/datasets/caption-file", json={"folder": folder_name, "image": "private.png",
                                                             "text": "x", "version": "none"})
    assert save.status_code == 403
    thumbnail = client.get("/api/v1/datasets/thumbnail", query_string={"folder": ".", "image": "../escape.png"})
    assert thumbnail.status_code == 403


def test_another_sites_requests_are_refused(client, folder):
    answer = client.post("/api/v1/datasets/trigger", json={"folder": folder.name, "trigger": "x"},
                         headers={"Origin": "https://elsewhere.example"})
    assert answer.status_code == 403 and (folder / "shape-0.txt").read_text() == "a red square, bright\n"
    assert "Access-Control-Allow-Origin" not in client.get("/api/v1/datasets", headers={
        "Origin": "https://elsewhere.example"}).headers


def test_a_key_is_needed_when_keys_are_on(make_app, tmp_path, folder, datasets_dir):
    app = make_app(tmp_path / "models", require_keys=True, datasets_dir=str(datasets_dir),
                   database_url=f"sqlite:///{tmp_path / 'keys.db'}")
    client = app.test_client()
    assert client.get("/api/v1/datasets").status_code == 401
    _, key = app.extensions["captioner.keys"].create("trainer")
    answer = client.get("/api/v1/datasets/items", query_string={"folder": folder.name},
                        headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200 and answer.json["total"] == 3
    assert client.get("/dataset").status_code == 302  # the page: sign in first
    app.extensions["captioner"].close()
    app.extensions["captioner.history"].close()


def test_the_rate_limit_counts_these_routes(make_app, tmp_path, folder, datasets_dir):
    app = make_app(tmp_path / "models", rate_limit="2 per minute", datasets_dir=str(datasets_dir),
                   database_url=f"sqlite:///{tmp_path / 'limits.db'}")
    client = app.test_client()
    statuses = [client.get("/api/v1/datasets/items", query_string={"folder": folder.name}).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    app.extensions["captioner"].close()
    app.extensions["captioner.history"].close()


def test_a_caption_file_that_cannot_be_written_is_one_clear_refusal(client, folder):
    (folder / "shape-1.txt").mkdir()  # a folder where the caption file should be
    answer = client.put("/api/v1/datasets/caption-file", json={"folder": folder.name, "image": "shape-1.png",
                                                                "text": "x", "version": "none"})
    assert answer.status_code == 400 and "could not be written" in answer.json["error"]["message"]
