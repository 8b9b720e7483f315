"""The caption history on a real database (SQLite always, PostgreSQL when available): saving, search,
pagination, deletion, translations, CSV/JSON export and metadata-free thumbnails."""

from __future__ import annotations

import csv
import io
import json

import pytest
from support.history_databases import DATABASES, database_url_for, drop_history_tables
from PIL import Image

from captioner.data.images import load_image
from captioner.history import DatabaseError, export_csv, export_json, make_thumbnail, open_history
from captioner.history.store import sanitize_file_name


@pytest.fixture(params=DATABASES)
def store(request, tmp_path):
    url = database_url_for(request.param, tmp_path)
    history = open_history(url)
    yield history
    history.close()
    if request.param == "postgres":
        drop_history_tables(url)


@pytest.fixture(scope="module")
def thumbnail() -> bytes:
    return make_thumbnail(Image.new("RGB", (64, 48), (200, 30, 30)))


def save(store, thumbnail, caption="a red circle", model="shapes-a", **extra):
    return store.add(model=model, caption=caption, thumbnail=thumbnail, width=640, height=480, **extra)


def test_saves_and_reads_back_an_entry(store, thumbnail):
    alternatives = [{"text": "a red circle", "log_prob": -1.25}, {"text": "a red ball", "log_prob": -2.5}]
    entry = save(store, thumbnail, alternatives=alternatives, decoding={"method": "beam", "beam_size": 3},
                 translations={"de": "ein roter Kreis"}, file_name="C:\\Users\\me\\photo 1.jpg")
    again = store.get(entry.id)
    assert again.to_dict() == entry.to_dict()
    assert again.caption == "a red circle" and again.model == "shapes-a"
    assert again.alternatives == alternatives
    assert again.decoding == {"method": "beam", "beam_size": 3}
    assert again.translations == {"de": "ein roter Kreis"}
    assert (again.width, again.height, again.file_name) == (640, 480, "photo 1.jpg")
    assert again.to_dict()["created_at"].endswith("+00:00")
    assert store.thumbnail(entry.id) == thumbnail
    assert store.get(entry.id + 1000) is None and store.thumbnail(entry.id + 1000) is None


def test_lists_newest_first_with_search_and_pages(store, thumbnail):
    for number in range(7):
        save(store, thumbnail, caption=f"a {'red' if number % 2 else 'blue'} square number {number}",
             model="shapes-b" if number < 3 else "shapes-a")
    first = store.list(per_page=3)
    assert (first.total, first.pages, first.page) == (7, 3, 1)
    assert [e.caption for e in first.entries] == [f"a {c} square number {n}" for c, n in
                                                  (("blue", 6), ("red", 5), ("blue", 4))]
    assert [e.caption[-1] for e in store.list(page=3, per_page=3).entries] == ["0"]
    assert store.list(page=4, per_page=3).entries == []
    assert store.list(search="RED").total == 3  # any case
    assert store.list(search="shapes-b").total == 3  # the model name is searched too
    assert store.list(search="blue", model="shapes-a").total == 2
    assert store.list(search="100%_").total == 0  # wildcards are plain text
    assert store.models() == ["shapes-a", "shapes-b"]
    with pytest.raises(ValueError, match="page"):
        store.list(page=0)
    with pytest.raises(ValueError, match="per_page"):
        store.list(per_page=1000)


def test_deletes(store, thumbnail):
    keep, gone = save(store, thumbnail, caption="keep me"), save(store, thumbnail, caption="delete me")
    assert store.delete(gone.id) is True
    assert store.delete(gone.id) is False
    assert [e.id for e in store.list().entries] == [keep.id]


def test_adds_translations_later(store, thumbnail):
    entry = save(store, thumbnail, translations={"it": "un cerchio rosso"})
    updated = store.add_translations(entry.id, {"ja": "赤い円", "it": "un cerchio rosso!"})
    assert updated.translations == {"it": "un cerchio rosso!", "ja": "赤い円"}
    assert store.get(entry.id).translations == {"it": "un cerchio rosso!", "ja": "赤い円"}
    assert store.add_translations(entry.id + 99, {"de": "x"}) is None
    with pytest.raises(ValueError, match="not a language code"):
        store.add_translations(entry.id, {"de": "gut", "../etc": "x"})
    assert "de" not in store.get(entry.id).translations  # all or nothing


def test_refuses_bad_entries(store, thumbnail):
    with pytest.raises(ValueError, match="caption must be non-empty"):
        save(store, thumbnail, caption="  ")
    with pytest.raises(ValueError, match="too long"):
        save(store, thumbnail, caption="x" * 3000)
    with pytest.raises(ValueError, match="JPEG"):
        save(store, b"\x89PNG....")
    with pytest.raises(ValueError, match="alternative"):
        save(store, thumbnail, alternatives=[{"txt": "a"}])
    with pytest.raises(ValueError, match="finite number"):
        save(store, thumbnail, alternatives=[{"text": "a", "log_prob": float("nan")}])
    with pytest.raises(ValueError, match="width"):
        store.add(model="m", caption="c", thumbnail=thumbnail, width=0, height=1)
    assert store.list().total == 0


def test_exports_csv_and_json(store, thumbnail):
    save(store, thumbnail, caption="a red circle", alternatives=[{"text": "a red ball", "log_prob": -2.0}],
         translations={"de": "ein roter Kreis"})
    save(store, thumbnail, caption="=HYPERLINK(\"http://x\")", model="shapes-b")
    rows = list(csv.DictReader(io.StringIO("".join(export_csv(store.iter_entries())))))
    assert [row["caption"] for row in rows] == ["a red circle", "'=HYPERLINK(\"http://x\")"]  # oldest first
    assert json.loads(rows[0]["alternatives"]) == [{"text": "a red ball", "log_prob": -2.0}]
    assert json.loads(rows[0]["translations"]) == {"de": "ein roter Kreis"}
    assert rows[0]["width"] == "640" and "thumbnail" not in rows[0]
    exported = json.loads("".join(export_json(store.iter_entries(model="shapes-a"))))
    assert [item["caption"] for item in exported] == ["a red circle"]
    assert exported[0]["translations"] == {"de": "ein roter Kreis"}
    assert json.loads("".join(export_json([]))) == []
    assert "".join(export_csv([])).strip() == ",".join(
        ["id", "created_at", "model", "caption", "alternatives", "decoding", "translations", "width", "height",
         "file_name"])


def test_thumbnail_of_a_real_phone_photo_is_small_and_without_metadata(phone_photo):
    original = Image.open(phone_photo)
    assert original.getexif(), "the reference photo should carry EXIF"
    image = load_image(phone_photo)
    data = make_thumbnail(image)
    thumb = Image.open(io.BytesIO(data))
    assert thumb.format == "JPEG"
    assert max(thumb.size) == 320
    assert abs(thumb.size[0] / thumb.size[1] - image.size[0] / image.size[1]) < 0.02
    assert not thumb.getexif() and "exif" not in thumb.info and "icc_profile" not in thumb.info
    assert len(data) < 60_000 < phone_photo.stat().st_size


def test_thumbnail_turns_the_image_upright_and_drops_gps():
    image = Image.new("RGB", (200, 100), (0, 128, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    exif[0x010F] = "PhoneMaker"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    thumb = Image.open(io.BytesIO(make_thumbnail(Image.open(io.BytesIO(buffer.getvalue())), size=64)))
    assert thumb.size == (32, 64)
    assert not thumb.getexif()
    with pytest.raises(ValueError, match="thumbnail size"):
        make_thumbnail(image, size=4)


def test_file_names_are_sanitized():
    assert sanitize_file_name("../../etc/passwd") == "passwd"
    assert sanitize_file_name("a\x00b\u202ec.jpg") == "abc.jpg"
    assert sanitize_file_name("..") is None and sanitize_file_name("") is None
    assert len(sanitize_file_name("x" * 1000 + ".jpg")) == 255


def test_a_bad_database_url_is_explained(tmp_path):
    with pytest.raises(DatabaseError, match="not a database URL"):
        open_history("not a url")
    with pytest.raises(DatabaseError, match="cannot prepare the history database.*check DATABASE_URL"):
        open_history("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
