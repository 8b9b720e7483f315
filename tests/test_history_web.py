"""The history in the web app: saving through the API, the /history page, thumbnails served from the
database, export, deletion (API and form), and the API's clear errors. Real app, real SQLite."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from PIL import Image

from captioner.history import DatabaseError


@pytest.fixture
def app(make_app, tmp_path):
    app = make_app(tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'history.db'}")
    yield app
    app.extensions["captioner"].close()
    app.extensions["captioner.history"].close()


def photo_bytes(size=(800, 600), color=(30, 160, 90)) -> bytes:
    """A JPEG with EXIF (camera make, orientation) like a phone photo."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = 1
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def save(client, caption="a green square", model="shapes-demo", image=None, **fields):
    data = {"image": (io.BytesIO(image or photo_bytes()), "../holiday/IMG_0001.jpg"), "caption": caption,
            "model": model, **{k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}}
    return client.post("/api/v1/history", data=data, content_type="multipart/form-data")


def test_save_then_read_back(client):
    response = save(client, alternatives=[{"text": "a green box", "log_prob": -3.5}],
                    decoding={"method": "beam", "beam_size": 3}, translations={"de": "ein grünes Quadrat"})
    assert response.status_code == 201, response.json
    entry = response.json
    assert response.headers["Location"].endswith(f"/api/v1/history/{entry['id']}")
    assert entry["caption"] == "a green square" and entry["model"] == "shapes-demo"
    assert (entry["width"], entry["height"], entry["file_name"]) == (800, 600, "IMG_0001.jpg")
    assert entry["alternatives"] == [{"text": "a green box", "log_prob": -3.5}]
    assert entry["translations"] == {"de": "ein grünes Quadrat"}
    assert client.get(f"/api/v1/history/{entry['id']}").json == entry
    listing = client.get("/api/v1/history").json
    assert listing["total"] == 1 and listing["entries"] == [entry]

    thumb = client.get(entry["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    image = Image.open(io.BytesIO(thumb.data))
    assert image.size == (320, 240) and not image.getexif()
    assert b"PhoneMaker" not in thumb.data


def test_history_page_lists_searches_and_pages(client):
    for number in range(14):
        assert save(client, caption=f"a {'red' if number % 2 else 'blue'} circle {number}").status_code == 201
    page = client.get("/history").get_data(as_text=True)
    assert "14 saved captions" in page
    assert page.count('class="card history-entry"') == 12
    assert "a blue circle 12" in page and "a red circle 1<" not in page
    assert re.search(r'<img class="history-thumb" src="/history/\d+/thumbnail.jpg"', page)
    assert "Page 1 of 2" in page and 'rel="next"' in page
    second = client.get("/history?page=2").get_data(as_text=True)
    assert second.count('class="card history-entry"') == 2
    found = client.get("/history?q=RED").get_data(as_text=True)
    assert "7 saved captions match" in found and "a blue circle" not in found
    empty = client.get("/history?q=zebra").get_data(as_text=True)
    assert "No saved caption matches “zebra”" in empty
    assert client.get("/history?page=abc").status_code == 200  # a bad page number shows page 1


def test_empty_history_page_says_how_to_save(client):
    page = client.get("/history").get_data(as_text=True)
    assert "Nothing saved yet" in page and 'href="/caption"' in page
    assert '<a href="/history" aria-current="page">History</a>' in page


def test_export_csv_and_json(client):
    save(client, caption="a red circle", translations={"it": "un cerchio rosso"})
    save(client, caption="a blue square", model="other-model")
    exported = client.get("/api/v1/history/export?format=csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert re.match(r'attachment; filename="captioner-history-\d{8}-\d{6}\.csv"', exported.headers["Content-Disposition"])
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [row["caption"] for row in rows] == ["a red circle", "a blue square"]
    assert json.loads(rows[0]["translations"]) == {"it": "un cerchio rosso"}
    only = client.get("/api/v1/history/export?format=json&model=other-model")
    assert [item["caption"] for item in json.loads(only.data)] == ["a blue square"]
    bad = client.get("/api/v1/history/export?format=xlsx")
    assert bad.status_code == 400 and bad.json["error"]["code"] == "bad_parameter"


def test_add_translations_to_a_saved_entry(client):
    entry = save(client).json
    updated = client.patch(f"/api/v1/history/{entry['id']}", json={"translations": {"ja": "緑の四角"}})
    assert updated.status_code == 200 and updated.json["translations"] == {"ja": "緑の四角"}
    assert client.patch(f"/api/v1/history/{entry['id']}", json={"translations": {"x y": "?"}}).status_code == 400
    assert client.patch("/api/v1/history/999", json={"translations": {"de": "x"}}).status_code == 404
    assert client.patch(f"/api/v1/history/{entry['id']}", json=["de"]).json["error"]["code"] == "bad_parameter"


def test_delete_through_the_api(client):
    entry = save(client).json
    assert client.delete(f"/api/v1/history/{entry['id']}").status_code == 204
    gone = client.delete(f"/api/v1/history/{entry['id']}")
    assert gone.status_code == 404 and gone.json["error"] == {"code": "not_found",
                                                              "message": f"no history entry {entry['id']}"}
    assert client.get(f"/api/v1/history/{entry['id']}").status_code == 404
    assert client.get(entry["thumbnail_url"]).status_code == 404


def test_delete_with_the_page_form_needs_its_csrf_token(client):
    entry = save(client).json
    refused = client.post(f"/history/{entry['id']}/delete")
    assert refused.status_code == 400 and "The form expired" in refused.get_data(as_text=True)
    page = client.get("/history").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    done = client.post(f"/history/{entry['id']}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert done.status_code == 200 and "Entry deleted." in done.get_data(as_text=True)
    assert client.get("/api/v1/history").json["total"] == 0


@pytest.mark.parametrize("fields, code, fragment", [
    ({"image": None}, "no_image", "field named 'image'"),
    ({"image": b"GIF89a not really"}, "bad_image", "not a supported image"),
    ({"image": b""}, "no_image", "empty"),
    ({"caption": " "}, "bad_parameter", "caption must be non-empty"),
    ({"model": ""}, "bad_parameter", "model name"),
    ({"alternatives": "[{"}, "bad_parameter", "alternatives must be JSON"),
    ({"translations": '{"de": 5}'}, "bad_parameter", "translation must be non-empty text"),
])
def test_bad_saves_get_clear_errors(client, fields, code, fragment):
    data = {"image": (io.BytesIO(photo_bytes((32, 32))), "a.jpg"), "caption": "a dog", "model": "m"}
    for name, value in fields.items():
        if name == "image":
            if value is None:
                del data["image"]
            else:
                data["image"] = (io.BytesIO(value), "a.jpg")
        else:
            data[name] = value
    response = client.post("/api/v1/history", data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.json["error"]["code"] == code and fragment in response.json["error"]["message"]
    assert client.get("/api/v1/history").json["total"] == 0


def test_other_sites_may_not_use_the_history(client):
    data = {"image": (io.BytesIO(photo_bytes((32, 32))), "a.jpg"), "caption": "spam", "model": "m"}
    refused = client.post("/api/v1/history", data=data, content_type="multipart/form-data",
                          headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    listing = client.get("/api/v1/history", headers={"Origin": "https://evil.example"})
    assert listing.status_code == 403 and "Access-Control-Allow-Origin" not in listing.headers
    same = client.get("/api/v1/history", headers={"Origin": "http://localhost"})
    assert same.status_code == 200
    # the rest of the API stays open to other origins
    assert "Access-Control-Allow-Origin" in client.get("/api/v1/models", headers={"Origin": "https://other.example"}).headers


def test_list_api_checks_its_arguments(client):
    assert client.get("/api/v1/history?per_page=500").json["error"]["code"] == "bad_parameter"
    assert client.get("/api/v1/history?page=0").status_code == 400
    assert client.get("/api/v1/history/abc").status_code == 404


def test_an_unreachable_database_stops_the_app_with_a_clear_message(make_app, tmp_path):
    with pytest.raises(DatabaseError, match="cannot prepare the history database.*check DATABASE_URL"):
        make_app(tmp_path / "models", database_url="postgresql+psycopg://nobody:secret@127.0.0.1:1/none")


def test_without_database_url_the_history_is_a_sqlite_file_in_the_instance_folder(make_app, tmp_path):
    instance = tmp_path / "instance"
    app = make_app(tmp_path / "models", database_url="", instance_dir=str(instance))
    try:
        saved = app.test_client().post("/api/v1/history", data={
            "image": (io.BytesIO(photo_bytes()), "photo.jpg"), "caption": "a green field", "model": "m"})
        assert saved.status_code == 201
        assert app.instance_path == str(instance.resolve())
        assert (instance / "captioner.db").stat().st_size > 0
    finally:
        app.extensions["captioner"].close()
        app.extensions["captioner.history"].close()


def test_saving_applies_the_apps_pixel_limit(make_app, tmp_path):
    app = make_app(tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'history.db'}", max_pixels=100_000)
    try:
        client = app.test_client()
        refused = save(client, image=photo_bytes((400, 300)))  # 120,000 pixels
        assert refused.status_code == 400 and refused.json["error"]["code"] == "bad_image"
        assert "pixels" in refused.json["error"]["message"]
        assert save(client, image=photo_bytes((300, 300))).status_code == 201
    finally:
        app.extensions["captioner"].close()
        app.extensions["captioner.history"].close()
