"""The jobs API (``/api/v1/jobs``) against the app with the real shapes demo model and a real SQLite
database: PNG, HEIC and AVIF uploads with one damaged file, editing, downloads, saving to the history,
and a job that outlives its app (done: still there; unfinished: failed, visibly)."""

from __future__ import annotations

import csv
import io
import socket
import subprocess
import sys
import time

import pytest
from PIL import Image

from support.web import shapes_image_bytes

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('jobs') / 'captioner.db'}"


@pytest.fixture(scope="module")
def app(make_app, demo_models_dir, database):
    app = make_app(demo_models_dir, database_url=database, max_upload_mb=1)
    yield app
    app.extensions["captioner"].close()


def encoded(png: bytes, fmt: str) -> bytes:
    from captioner.data.images import register_phone_formats

    register_phone_formats()
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(png)) as image:
        image.convert("RGB").save(buffer, format=fmt, quality=90)
    return buffer.getvalue()


def wait_done(client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").get_json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.mark.slow
def test_a_job_captions_many_images_and_outlives_its_app(app, make_app, demo_models_dir, shapes_dataset, database):
    pytest.importorskip("pillow_heif")
    client = app.test_client()
    png = shapes_image_bytes(shapes_dataset, 0)
    uploads = [(png, "a.png"), (encoded(png, "HEIF"), "b.heic"), (encoded(png, "AVIF"), "c.avif"),
               (b"\xff\xd8\xff not a photo", "d.jpg"), (shapes_image_bytes(shapes_dataset, 1), "e.png")]
    answer = client.post("/api/v1/jobs", data={"images": [(io.BytesIO(data), name) for data, name in uploads]},
                         content_type="multipart/form-data")
    assert answer.status_code == 202, answer.get_json()
    job_id = answer.get_json()["id"]
    assert answer.headers["Location"].endswith(f"/api/v1/jobs/{job_id}")

    job = wait_done(client, job_id)
    assert job["status"] == "done" and job["total"] == job["done"] == 5 and job["model"] == "shapes-demo"
    items = job["items"]
    assert [item["file_name"] for item in items] == ["a.png", "b.heic", "c.avif", "d.jpg", "e.png"]
    assert "d.jpg" in items[3]["error"] and items[3]["caption"] is None
    single = client.post("/api/v1/captions", data={"image": (io.BytesIO(png), "a.png")},
                         content_type="multipart/form-data").get_json()
    assert items[0]["caption"] == single["caption"]  # the same model, limits and decoding as one upload
    for item in (items[1], items[2]):  # the phone formats, through the same safe loader
        assert item["caption"] and (item["width"], item["height"]) == (items[0]["width"], items[0]["height"])

    edited = client.patch(f"/api/v1/jobs/{job_id}/items/4", json={"caption": "my own words"})
    assert edited.status_code == 200 and edited.get_json()["edited"] is True
    assert client.patch(f"/api/v1/jobs/{job_id}/items/3", json={"caption": "x"}).status_code == 404
    assert client.patch(f"/api/v1/jobs/{job_id}/items/4", json={"caption": "  "}).status_code == 400
    table = list(csv.DictReader(io.StringIO(client.get(f"/api/v1/jobs/{job_id}?format=csv").get_data(as_text=True))))
    assert [row["caption"] for row in table][3:] == ["", "my own words"] and table[3]["error"]
    assert client.get(f"/api/v1/jobs/{job_id}?format=json").get_json()["items"][4]["caption"] == "my own words"

    assert client.post(f"/api/v1/jobs/{job_id}/history", headers={"Origin": "https://elsewhere.example"}).status_code == 403
    saved = client.post(f"/api/v1/jobs/{job_id}/history")
    assert saved.status_code == 201 and saved.get_json()["saved"] == 4
    history = client.get("/api/v1/history").get_json()
    assert "my own words" in [entry["caption"] for entry in history["entries"]]

    from captioner.history.db import create_session_factory
    from captioner.history.jobs import JobStore
    from captioner.history.models import CaptionJob
    from captioner.web.history import history_store

    with app.app_context():
        store = JobStore(create_session_factory(history_store().engine))
    orphan = store.create("shapes-demo", {}, [{"file_name": "x.png"}])
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with store._sessions.begin() as session:  # the job of a server process that has since ended
        session.get(CaptionJob, orphan).owner = f"{socket.gethostname()}:{ended.stdout.strip()}"
        session.get(CaptionJob, orphan).status = "running"

    restarted = make_app(demo_models_dir, database_url=database, load_in_background=True)
    try:
        again = restarted.test_client()
        kept = again.get(f"/api/v1/jobs/{job_id}").get_json()
        assert kept["status"] == "done" and kept["items"][4]["caption"] == "my own words"
        failed = again.get(f"/api/v1/jobs/{orphan}").get_json()
        assert failed["status"] == "failed" and "send the images again" in failed["error"]
        assert again.get("/api/v1/jobs/nothing").status_code == 404
    finally:
        restarted.extensions["captioner"].close()


def test_job_requests_without_images_are_refused_clearly(app):
    client = app.test_client()
    answer = client.post("/api/v1/jobs", data={"model": "shapes-demo"}, content_type="multipart/form-data")
    assert answer.status_code == 400 and "images" in answer.get_json()["error"]["message"]
    answer = client.post("/api/v1/jobs", data={"images": [(io.BytesIO(b"x"), "a.png")], "model": "nope"},
                         content_type="multipart/form-data")
    assert answer.status_code in (400, 404) and "nope" in answer.get_json()["error"]["message"]


def test_a_taggers_job_keeps_each_tags_probability_and_the_rating_apart_from_its_editable_caption(tagging):
    from support.tagging import TAGGER, red_png

    client = tagging.app.test_client()
    started = client.post("/api/v1/jobs", data={"model": TAGGER, "images": [(io.BytesIO(red_png()), "red.png")]},
                          content_type="multipart/form-data")
    assert started.status_code == 202, started.get_json()
    job_id = started.get_json()["id"]
    (item,) = wait_done(client, job_id)["items"]
    assert item["caption"] == "red theme, ^_^, long hair"
    assert item["tags"] == [{"name": "red theme", "probability": pytest.approx(0.9997, abs=1e-4)},
                            {"name": "^_^", "probability": 0.5},
                            {"name": "long hair", "probability": pytest.approx(0.4013, abs=1e-4)}]
    assert item["rating"] == {"label": "general", "probability": pytest.approx(0.8808, abs=1e-4)}
    edited = client.patch(f"/api/v1/jobs/{job_id}/items/0", json={"caption": "red theme"}).get_json()
    assert edited["caption"] == "red theme" and [tag["name"] for tag in edited["tags"]][1] == "^_^"  # as found
    worded = client.post("/api/v1/jobs", data={"model": TAGGER, "images": [(io.BytesIO(red_png()), "red.png")],
                                               "template": "ohwx, {tags}", "language": "de"},
                         content_type="multipart/form-data").get_json()
    assert worded["decoding"]["template"] == "ohwx, {tags}" and worded["decoding"]["language"] == "de"
    (item,) = wait_done(client, worded["id"])["items"]
    assert item["caption"] == "ohwx, [de] red theme, [de] ^_^, [de] long hair" and item["tags"][1]["probability"] == 0.5
    refused = client.post("/api/v1/jobs", data={"model": TAGGER, "images": [(io.BytesIO(red_png()), "red.png")],
                                                "template": "{caption}"}, content_type="multipart/form-data")
    assert refused.status_code == 400 and "the model is a tagger" in refused.get_json()["error"]["message"]
