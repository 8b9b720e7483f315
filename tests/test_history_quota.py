"""History quotas (entries and thumbnail bytes per key) and retention (a cleanup that runs by itself),
in the store and through the web app. Real SQLite, real thumbnails."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import update

from captioner.history import make_thumbnail, open_history
from captioner.history.keys import KeyStore
from captioner.history.models import HistoryEntry, utc_now
from captioner.history.retention import RetentionCleanup
from captioner.history.store import HistoryQuota, QuotaExceeded

THUMB = make_thumbnail(Image.new("RGB", (64, 64), (10, 120, 200)))


@pytest.fixture
def store(tmp_path):
    store = open_history(f"sqlite:///{tmp_path / 'history.db'}")
    yield store
    store.close()


def add(store, caption="a blue square", owner=None, quota=None):
    return store.add(model="m", caption=caption, thumbnail=THUMB, width=64, height=64, owner_key_id=owner,
                     quota=quota)


def test_entry_quota_is_per_owner_and_saves_nothing_past_it(store):
    keys = KeyStore(store.session_factory)
    alice, bob = keys.create("alice")[0].id, keys.create("bob")[0].id
    quota = HistoryQuota(max_entries=2)
    add(store, "one", alice, quota)
    add(store, "two", alice, quota)
    with pytest.raises(QuotaExceeded, match="holds 2 entries"):
        add(store, "three", alice, quota)
    assert store.usage(alice) == (2, 2 * len(THUMB))
    assert add(store, "bob's", bob, quota).owner_key_id == bob  # bob's quota is his own
    assert store.list().total == 3


def test_byte_quota_counts_thumbnail_bytes(store):
    quota = HistoryQuota(max_bytes=int(len(THUMB) * 2.5))
    add(store, quota=quota)
    add(store, quota=quota)
    with pytest.raises(QuotaExceeded, match="MB"):
        add(store, quota=quota)
    assert store.usage(None)[0] == 2


def age(store, entry_id: int, days: float) -> None:
    with store.session_factory.begin() as session:
        session.execute(update(HistoryEntry).where(HistoryEntry.id == entry_id)
                        .values(created_at=utc_now() - timedelta(days=days)))


def test_retention_cleanup_deletes_only_old_entries(store):
    old, recent = add(store, "old"), add(store, "recent")
    age(store, old.id, 31)
    age(store, recent.id, 29)
    assert RetentionCleanup(store, days=30, interval_s=3600).run_once() == 1
    assert [e.caption for e in store.list().entries] == ["recent"]


def save(client, key=None):
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 40, 40)).save(buffer, format="PNG")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post("/api/v1/history", headers=headers, content_type="multipart/form-data",
                       data={"image": (io.BytesIO(buffer.getvalue()), "p.png"), "caption": "a red square",
                             "model": "m"})


def test_the_api_answers_409_quota_exceeded(make_app, tmp_path):
    app = make_app(tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'h.db'}", require_keys=True,
                   history_max_entries=1)
    keys = app.extensions["captioner.keys"]
    alice, bob = keys.create("alice")[1], keys.create("bob")[1]
    client = app.test_client()
    assert save(client, alice).status_code == 201
    refused = save(client, alice)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "quota_exceeded"
    assert "CAPTIONER_HISTORY_MAX_ENTRIES" in refused.json["error"]["message"]
    assert save(client, bob).status_code == 201
    app.extensions["captioner"].close()


def test_the_app_runs_the_retention_cleanup_by_itself(make_app, tmp_path):
    app = make_app(tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'h.db'}",
                   history_retention_days=7, history_cleanup_interval_s=0.2)
    client = app.test_client()
    store = app.extensions["captioner.history"]
    ids = [save(client).json["id"] for _ in range(3)]
    age(store, ids[0], 8)
    deadline = time.monotonic() + 20
    while store.get(ids[0]) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.get(ids[0]) is None, "the cleanup did not run"
    assert [e["id"] for e in client.get("/api/v1/history").json["entries"]] == [ids[2], ids[1]]
    app.extensions["captioner.retention"].stop()
    app.extensions["captioner"].close()
