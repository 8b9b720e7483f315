"""The history database goes away under a running `captioner serve` and comes back: a private PostgreSQL
is stopped and started mid-run. Captioning keeps working (keys checked before the outage included),
history answers 503 history_unavailable with a clear message, and it recovers by itself."""

from __future__ import annotations

import time

import pytest

from captioner.history import open_history
from captioner.history.keys import KeyStore
from captioner.web.launch import start_server
from support.real_services import private_postgres
from support.web import shapes_image_bytes

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_database_goes_away_and_comes_back(tmp_path, demo_models_dir, shapes_dataset):
    import requests

    with private_postgres() as database:
        store = open_history(database.url)
        key = KeyStore(store.session_factory).create("alice")[1]
        never_used = KeyStore(store.session_factory).create("bob")[1]
        store.close()
        env = {"DATABASE_URL": database.url, "CAPTIONER_REQUIRE_KEYS": "1", "CAPTIONER_TRY_PRETRAINED": "0",
               "SECRET_KEY": "outage-test"}
        server = start_server(demo_models_dir, env=env, timeout=240, log_path=tmp_path / "server.log")
        auth = {"Authorization": f"Bearer {key}"}
        image = shapes_image_bytes(shapes_dataset, 2, "JPEG")

        def caption(headers=auth):
            return requests.post(server.url + "/api/v1/captions", headers=headers, timeout=30,
                                 files={"image": ("s.jpg", image, "image/jpeg")})

        def save(text):
            return requests.post(server.url + "/api/v1/history", headers=auth, timeout=30,
                                 files={"image": ("s.jpg", image, "image/jpeg")}, data={"caption": text, "model": "m"})

        try:
            assert caption().status_code == 200
            assert save("before the outage").status_code == 201
            database.stop()

            assert caption().status_code == 200  # captioning goes on
            for answer in (requests.get(server.url + "/api/v1/history", headers=auth, timeout=30),
                           save("during the outage")):
                assert answer.status_code == 503, answer.text
                error = answer.json()["error"]
                assert error["code"] == "history_unavailable"
                assert "cannot be reached" in error["message"] and "captioning still works" in error["message"]
                assert answer.headers["Retry-After"]
            page = requests.get(server.url + "/history", headers=auth, timeout=30)
            assert page.status_code == 503 and "The history is unavailable" in page.text
            unknown = caption({"Authorization": f"Bearer {never_used}"})  # a key never checked cannot be now
            assert unknown.status_code == 503 and unknown.json()["error"]["code"] == "keys_unavailable"
            assert server.readyz()["status"] == "ready"

            database.start()
            deadline, listing = time.monotonic() + 60, None
            while time.monotonic() < deadline:
                listing = requests.get(server.url + "/api/v1/history", headers=auth, timeout=30)
                if listing.status_code == 200:
                    break
                time.sleep(0.5)
            assert listing.status_code == 200, listing.text
            assert [e["caption"] for e in listing.json()["entries"]] == ["before the outage"]
            assert save("after the outage").status_code == 201
            assert caption({"Authorization": f"Bearer {never_used}"}).status_code == 200
        finally:
            server.stop()
    log = server.log_tail(1_000_000)
    assert "history database unavailable" in log and "Traceback" not in log
    assert key not in log and never_used not in log
