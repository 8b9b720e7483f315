"""Access control (CAPTIONER_REQUIRE_KEYS): 401 without a key or with a wrong or revoked one, history
isolation between keys (history entries and caption jobs), the admin key, page sign-in and sign-out with the session cookie's flags, the
open health checks, and `captioner keys`. Real app, real SQLite, keys made by the real key store."""

from __future__ import annotations

import io
import re
import sqlite3
import time

import pytest
from PIL import Image

from captioner.history.keys import KeyStore
from support.cli import assert_clean_failure


@pytest.fixture
def app_with(make_app, tmp_path):
    """``app_with(**settings)``: an app with its own SQLite history in this test's folder."""
    def build(**settings):
        return make_app(tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'history.db'}", **settings)
    return build


@pytest.fixture
def app(app_with):
    app = app_with(require_keys=True)
    yield app
    app.extensions["captioner"].close()
    app.extensions["captioner.history"].close()


@pytest.fixture
def keys(app) -> dict[str, str]:
    store: KeyStore = app.extensions["captioner.keys"]
    return {name: store.create(name, admin=name == "admin")[1] for name in ("alice", "bob", "admin")}


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def image_bytes(color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, format="PNG")
    return buffer.getvalue()


def save(client, key: str, caption: str):
    response = client.post("/api/v1/history", headers=bearer(key), content_type="multipart/form-data",
                           data={"image": (io.BytesIO(image_bytes()), "p.png"), "caption": caption, "model": "m"})
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_off_by_default_for_a_local_install(app_with):
    app = app_with()
    client = app.test_client()
    assert app.config["CAPTIONER_SETTINGS"].require_keys is False
    assert client.get("/api/v1/history").status_code == 200
    assert client.get("/history").status_code == 200
    assert client.get("/sign-in").status_code == 302  # nothing to sign in to
    app.extensions["captioner"].close()


@pytest.mark.parametrize("path", ["/api/v1/models", "/api/v1/history", "/api/v1/history/export",
                                  "/api/v1/translate/languages"])
def test_401_without_a_key(app, path):
    response = app.test_client().get(path)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert "Authorization: Bearer" in response.json["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_401_without_a_key_for_posts_too(app):
    client = app.test_client()
    captions = client.post("/api/v1/captions", data={"image": (io.BytesIO(image_bytes()), "p.png")},
                           content_type="multipart/form-data")
    assert captions.status_code == 401
    assert client.post("/api/v1/translate", json={"text": "a dog", "to": "de"}).status_code == 401
    assert client.post("/flickr8k", data={"image": (io.BytesIO(image_bytes()), "p.png")},
                       content_type="multipart/form-data").status_code == 401


@pytest.mark.parametrize("header", ["Bearer cap_wrongwrongwrongwrongwrongwrongwrongwrong0", "Bearer nonsense",
                                    "Basic YWxpY2U6c2VjcmV0", "Bearer "])
def test_401_with_a_wrong_key(app, keys, header):
    response = app.test_client().get("/api/v1/history", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert "not accepted" in response.json["error"]["message"]


def test_a_revoked_key_opens_nothing(app, keys):
    client = app.test_client()
    assert client.get("/api/v1/history", headers=bearer(keys["alice"])).status_code == 200
    app.extensions["captioner.keys"].revoke(keys["alice"][:12])
    assert client.get("/api/v1/history", headers=bearer(keys["alice"])).status_code == 401


def test_health_and_readiness_stay_open(app):
    client = app.test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code in (200, 503) and "status" in ready.json  # (no model in this app: "failed")


def test_history_isolation_between_two_keys(app, keys):
    client = app.test_client()
    alice = [save(client, keys["alice"], f"alice's red square {n}") for n in range(2)]
    bob = save(client, keys["bob"], "bob's red square")

    def listing(key):
        return [e["id"] for e in client.get("/api/v1/history", headers=bearer(key)).json["entries"]]

    assert sorted(listing(keys["alice"])) == sorted(alice)
    assert listing(keys["bob"]) == [bob]
    for method, path in [("get", f"/api/v1/history/{alice[0]}"), ("delete", f"/api/v1/history/{alice[0]}"),
                         ("get", f"/history/{alice[0]}/thumbnail.jpg")]:
        assert getattr(client, method)(path, headers=bearer(keys["bob"])).status_code == 404, (method, path)
    patch = client.patch(f"/api/v1/history/{alice[0]}", headers=bearer(keys["bob"]),
                         json={"translations": {"de": "ein rotes Quadrat"}})
    assert patch.status_code == 404
    export = client.get("/api/v1/history/export?format=json", headers=bearer(keys["bob"])).json
    assert [e["caption"] for e in export] == ["bob's red square"]
    search = client.get("/api/v1/history?q=alice", headers=bearer(keys["bob"])).json
    assert search["total"] == 0
    # alice's entries are untouched by bob's attempts, and she may delete her own
    assert client.get(f"/api/v1/history/{alice[0]}", headers=bearer(keys["alice"])).json["translations"] == {}
    assert client.get(f"/history/{alice[0]}/thumbnail.jpg", headers=bearer(keys["alice"])).status_code == 200
    assert client.delete(f"/api/v1/history/{alice[0]}", headers=bearer(keys["alice"])).status_code == 204
    # the admin key sees (and exports) everyone's
    assert sorted(listing(keys["admin"])) == sorted([alice[1], bob])
    admin_export = client.get("/api/v1/history/export?format=csv", headers=bearer(keys["admin"])).text
    assert "alice's red square 1" in admin_export and "bob's red square" in admin_export


@pytest.mark.slow
def test_caption_jobs_belong_to_the_key_that_created_them(make_app, demo_models_dir, tmp_path):
    app = make_app(demo_models_dir, database_url=f"sqlite:///{tmp_path / 'history.db'}", require_keys=True)
    client = app.test_client()
    store: KeyStore = app.extensions["captioner.keys"]
    keys = {name: store.create(name, admin=name == "admin")[1] for name in ("alice", "bob", "admin")}

    def start(key: str) -> str:
        answer = client.post("/api/v1/jobs", headers=bearer(key), content_type="multipart/form-data",
                             data={"images": [(io.BytesIO(image_bytes()), "p.png")]})
        assert answer.status_code == 202, answer.json
        return answer.json["id"]

    try:
        alice, bob = start(keys["alice"]), start(keys["bob"])
        deadline = time.monotonic() + 120
        while client.get(f"/api/v1/jobs/{alice}", headers=bearer(keys["alice"])).json["status"] != "done":
            assert time.monotonic() < deadline, "alice's job did not finish"
            time.sleep(0.05)
        caption = client.get(f"/api/v1/jobs/{alice}", headers=bearer(keys["alice"])).json["items"][0]["caption"]
        assert caption
        for method, path, body in [("get", f"/api/v1/jobs/{alice}", None),
                                   ("get", f"/api/v1/jobs/{alice}?format=csv", None),
                                   ("get", f"/api/v1/jobs/{alice}?format=json", None),
                                   ("patch", f"/api/v1/jobs/{alice}/items/0", {"caption": "bob's words"}),
                                   ("post", f"/api/v1/jobs/{alice}/history", None)]:
            answer = getattr(client, method)(path, headers=bearer(keys["bob"]), json=body)
            assert answer.status_code == 404 and answer.json["error"]["code"] == "not_found", (method, path)
        assert client.get(f"/api/v1/jobs/{bob}", headers=bearer(keys["alice"])).status_code == 404
        assert client.get("/api/v1/history", headers=bearer(keys["bob"])).json["total"] == 0
        # alice's job is untouched by bob's attempts and still hers to edit and save
        mine = client.get(f"/api/v1/jobs/{alice}?format=json", headers=bearer(keys["alice"])).json
        assert mine["items"][0]["caption"] == caption and not mine["items"][0]["edited"]
        assert client.patch(f"/api/v1/jobs/{alice}/items/0", headers=bearer(keys["alice"]),
                            json={"caption": "alice's words"}).status_code == 200
        assert client.post(f"/api/v1/jobs/{alice}/history", headers=bearer(keys["alice"])).json["saved"] == 1
        # the admin key sees and edits everyone's jobs
        assert client.get(f"/api/v1/jobs/{bob}", headers=bearer(keys["admin"])).json["id"] == bob
        assert "alice's words" in client.get(f"/api/v1/jobs/{alice}?format=csv", headers=bearer(keys["admin"])).text
        assert client.patch(f"/api/v1/jobs/{alice}/items/0", headers=bearer(keys["admin"]),
                            json={"caption": "checked"}).status_code == 200
    finally:
        app.extensions["captioner"].close()
        app.extensions["captioner.history"].close()


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_pages_sign_in_with_a_key_and_sign_out(app, keys):
    client = app.test_client()
    save(client, keys["alice"], "alice's entry")
    save(client, keys["bob"], "bob's entry")
    to_sign_in = client.get("/history")
    assert to_sign_in.status_code == 302 and "/sign-in?next=/history" in to_sign_in.headers["Location"]
    page = client.get("/sign-in?next=/history")
    assert page.status_code == 200 and 'type="password"' in page.text
    token = csrf_token(page.text)
    wrong = client.post("/sign-in", data={"csrf_token": token, "key": "cap_not-a-key", "next": "/history"})
    assert wrong.status_code == 401 and "not accepted" in wrong.text
    right = client.post("/sign-in", data={"csrf_token": token, "key": keys["alice"], "next": "/history"})
    assert right.status_code == 302 and right.headers["Location"] == "/history"
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain http here
    assert keys["alice"] not in cookie
    history = client.get("/history")
    assert history.status_code == 200
    assert "alice&#39;s entry" in history.text and "bob&#39;s entry" not in history.text
    assert "Sign out" in history.text
    # the caption page's scripts call the API with the session cookie
    assert client.get("/api/v1/history").json["total"] == 1
    out = client.post("/sign-out", data={"csrf_token": csrf_token(history.text)})
    assert out.status_code == 302
    assert client.get("/history").status_code == 302
    assert client.get("/api/v1/history").status_code == 401


def test_sign_in_sends_only_local_paths_onward(app, keys):
    client = app.test_client()
    token = csrf_token(client.get("/sign-in").text)
    answer = client.post("/sign-in", data={"csrf_token": token, "key": keys["bob"], "next": "https://evil.example/"})
    assert answer.headers["Location"] == "/"


def test_a_session_ends_when_its_key_is_revoked(app, keys):
    client = app.test_client()
    token = csrf_token(client.get("/sign-in").text)
    client.post("/sign-in", data={"csrf_token": token, "key": keys["bob"], "next": "/history"})
    assert client.get("/history").status_code == 200
    app.extensions["captioner.keys"].revoke(keys["bob"][:12])
    assert client.get("/history").status_code == 302


def test_the_session_cookie_is_secure_behind_https(app_with):
    app = app_with(require_keys=True, trusted_proxies=1)
    key = app.extensions["captioner.keys"].create("carol")[1]
    client = app.test_client()
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    token = csrf_token(client.get("/sign-in", headers=https).text)
    answer = client.post("/sign-in", headers={**https, "Referer": "https://localhost/sign-in"},
                         data={"csrf_token": token, "key": key, "next": "/"})
    assert answer.status_code == 302, answer.text
    assert "Secure" in answer.headers["Set-Cookie"] and "HttpOnly" in answer.headers["Set-Cookie"]
    app.extensions["captioner"].close()


def test_keys_command_creates_lists_and_revokes(runner, tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    created = runner("keys", "--database-url", url, "create", "alice")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("cap_") and len(key) >= 40 and "cannot be shown again" in created.stderr
    admin = runner("keys", "--database-url", url, "create", "ops", "--admin", "--json")
    assert '"admin": true' in admin.stdout
    listing = runner("keys", "--database-url", url, "list")
    assert "alice" in listing.stdout and key[:12] in listing.stdout and key not in listing.stdout
    with open(tmp_path / "keys.db", "rb") as handle:  # only hashes are stored
        assert key.encode() not in handle.read()
    with sqlite3.connect(tmp_path / "keys.db") as db:
        assert db.execute("SELECT count(*) FROM api_keys WHERE key_hash = ?", (key,)).fetchone() == (0,)
    store = app_store(url)
    assert store.verify(key).name == "alice"
    revoked = runner("keys", "--database-url", url, "revoke", key[:12])
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert store.verify(key) is None
    assert "revoked" in runner("keys", "--database-url", url, "list").stdout
    assert_clean_failure(runner("keys", "--database-url", url, "revoke", "999"), "no API key matches '999'")
    assert_clean_failure(runner("keys", "--database-url", url, "create", " "), "needs a name")


def app_store(url: str) -> KeyStore:
    from captioner.history import open_history

    return KeyStore(open_history(url).session_factory)
