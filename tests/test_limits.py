"""Rate limits and the proxy setting: 429 with Retry-After, counted per key or per client address,
translation's own lower limit, open health checks, X-Forwarded-For believed only from trusted proxies,
and counters shared through a real Redis server between two app processes' worth of apps."""

from __future__ import annotations

import logging

import pytest

from captioner.web.settings import WebSettings
from support.cli import assert_clean_failure
from support.fake_azure_translator import KEY, REGION, FakeAzureTranslator
from support.real_services import redis_server


@pytest.fixture
def app_with(make_app, tmp_path):
    """``app_with(**settings)``: an app with its own SQLite history in this test's folder."""
    def build(**settings):
        return make_app(tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'history.db'}", **settings)
    return build


def assert_rate_limited(response):
    assert response.status_code == 429, response.text
    assert response.json["error"]["code"] == "rate_limited"
    assert "per 1 minute" in response.json["error"]["message"]
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_429_with_retry_after_past_the_limit(app_with):
    app = app_with(rate_limit="3 per minute")
    client = app.test_client()
    answers = [client.get("/api/v1/models") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert_rate_limited(client.get("/api/v1/models"))
    page = client.get("/caption")  # pages count against the same budget and say it in words
    assert page.status_code == 429 and "Too many requests" in page.text and page.headers["Retry-After"]
    for _ in range(5):  # load balancers' checks never count
        assert client.get("/healthz").status_code == 200
    app.extensions["captioner"].close()


def test_limits_count_per_key_and_wrong_keys_per_address(app_with):
    app = app_with(rate_limit="3 per minute", require_keys=True)
    store = app.extensions["captioner.keys"]
    alice, bob = store.create("alice")[1], store.create("bob")[1]
    client = app.test_client()
    for _ in range(3):
        assert client.get("/api/v1/history", headers={"Authorization": f"Bearer {alice}"}).status_code == 200
    assert_rate_limited(client.get("/api/v1/history", headers={"Authorization": f"Bearer {alice}"}))
    assert client.get("/api/v1/history", headers={"Authorization": f"Bearer {bob}"}).status_code == 200
    # guessing keys from one address: three 401s, then the address is limited
    wrong = [client.get("/api/v1/history", headers={"Authorization": f"Bearer cap_guess{n}"}) for n in range(3)]
    assert [w.status_code for w in wrong] == [401, 401, 401]
    assert_rate_limited(client.get("/api/v1/history", headers={"Authorization": "Bearer cap_guess9"}))
    app.extensions["captioner"].close()


def test_translation_has_its_own_lower_limit(app_with):
    with FakeAzureTranslator() as fake:
        app = app_with(rate_limit="50 per minute", translate_rate_limit="2 per minute",
                       translator_key=KEY, translator_endpoint=fake.endpoint, translator_location=REGION)
        client = app.test_client()
        for _ in range(2):
            assert client.post("/api/v1/translate", json={"text": "a red circle", "to": "de"}).status_code == 200
        assert_rate_limited(client.post("/api/v1/translate", json={"text": "a red circle", "to": "de"}))
        assert len(fake.requests) == 2  # the paid service never saw the third
        assert client.get("/api/v1/models").status_code == 200  # the general limit still has room
        app.extensions["captioner"].close()


@pytest.mark.parametrize("hops, separate", [(1, True), (0, False)])
def test_forwarded_addresses_count_only_from_trusted_proxies(app_with, caplog, hops, separate):
    app = app_with(rate_limit="2 per minute", trusted_proxies=hops)
    client = app.test_client()
    first = {"X-Forwarded-For": "203.0.113.1"}
    for _ in range(2):
        assert client.get("/api/v1/models", headers=first).status_code == 200
    with caplog.at_level(logging.WARNING, logger="captioner.web.limits"):
        assert_rate_limited(client.get("/api/v1/models", headers=first))
    other = client.get("/api/v1/models", headers={"X-Forwarded-For": "203.0.113.2"})
    assert (other.status_code == 200) is separate  # a forged header from a direct client changes nothing
    logged = "address:203.0.113.1" if hops else "address:127.0.0.1"
    assert any(logged in record.getMessage() for record in caplog.records), caplog.text
    app.extensions["captioner"].close()


def test_two_processes_share_limits_through_redis(app_with):
    with redis_server() as url:
        apps = [app_with(rate_limit="3 per minute", rate_limit_storage=url) for _worker in range(2)]
        clients = [app.test_client() for app in apps]
        answers = [clients[n % 2].get("/api/v1/models").status_code for n in range(3)]
        assert answers == [200, 200, 200]
        assert_rate_limited(clients[1].get("/api/v1/models"))
        assert_rate_limited(clients[0].get("/api/v1/models"))
        for app in apps:
            app.extensions["captioner"].close()


def test_bad_limit_settings_fail_in_one_line(runner, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="CAPTIONER_RATE_LIMIT must be a rate"):
        WebSettings(rate_limit="lots", secret_key="x")
    assert WebSettings(rate_limit="off", secret_key="x").rate_limit == "off"
    monkeypatch.setenv("CAPTIONER_TRANSLATE_RATE_LIMIT", "fast")
    result = runner("serve", "--models-dir", tmp_path)
    assert_clean_failure(result, "CAPTIONER_TRANSLATE_RATE_LIMIT must be a rate")


def test_no_retry_after_on_ordinary_answers(app_with):
    app = app_with(rate_limit="5 per minute")
    answer = app.test_client().get("/api/v1/models")
    assert answer.status_code == 200 and "Retry-After" not in answer.headers
    assert answer.headers["X-RateLimit-Limit"] == "5"
    app.extensions["captioner"].close()
