"""Translation in the web app against the local fake Azure Translator: the languages the backend
serves, translations, and every failure of the service as a 502 with a clear message, never a 500."""

from __future__ import annotations

import pytest
from support.fake_azure_translator import KEY, REGION, FakeAzureTranslator


@pytest.fixture
def fake():
    with FakeAzureTranslator() as server:
        yield server


@pytest.fixture
def app_for(make_app, tmp_path):
    """An app without models, with its own history database; settings are WebSettings fields."""
    return lambda **settings: make_app(tmp_path / "models", database_url=f"sqlite:///{tmp_path / 'history.db'}",
                                       **settings)


@pytest.fixture
def client(app_for, fake, monkeypatch):
    monkeypatch.setenv("CAPTIONER_TRANSLATION_TIMEOUT", "0.5")
    app = app_for(translator_key=KEY, translator_endpoint=fake.endpoint, translator_location=REGION)
    yield app.test_client()
    app.extensions["captioner"].close()


def test_languages_are_those_of_the_backend(client):
    answer = client.get("/api/v1/translate/languages").json
    assert answer["backend"] == "azure"
    assert answer["languages"] == [{"code": "ar", "name": "Arabic"}, {"code": "it", "name": "Italian"},
                                   {"code": "ja", "name": "Japanese"}, {"code": "ru", "name": "Russian"},
                                   {"code": "de", "name": "German"}]


def test_translates(client, fake):
    answer = client.post("/api/v1/translate", json={"text": "a red circle", "to": "ar"})
    assert answer.status_code == 200
    assert answer.json == {"text": "دائرة حمراء", "to": "ar", "backend": "azure"}
    assert fake.requests[-1]["headers"]["Ocp-Apim-Subscription-Key"] == KEY


@pytest.mark.parametrize("failure, fragment", [
    (401, "check KEY and LOCATION"),
    (429, "rate-limiting"),
    (500, "try again later"),
    ("slow", "did not answer within 0.5 s"),
])
def test_service_failures_are_502_with_a_message(client, fake, failure, fragment):
    if failure == "slow":
        fake.delay = 1.5
    else:
        fake.fail_with = failure
    answer = client.post("/api/v1/translate", json={"text": "a red circle", "to": "de"})
    assert answer.status_code == 502
    assert answer.json["error"]["code"] == "translation_failed"
    assert fragment in answer.json["error"]["message"]


@pytest.mark.parametrize("body, fragment", [
    ({"text": "a dog", "to": "xx"}, "cannot translate into 'xx'"),
    ({"text": "  ", "to": "de"}, "empty"),
    ({"text": 5, "to": "de"}, "must both be strings"),
    ("not json", '{"text"'),
])
def test_bad_requests_are_400(client, fake, body, fragment):
    answer = (client.post("/api/v1/translate", data=body, content_type="text/plain") if isinstance(body, str)
              else client.post("/api/v1/translate", json=body))
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == "bad_parameter" and fragment in answer.json["error"]["message"]
    assert fake.requests == []


def test_other_sites_may_not_spend_the_translation_service(client, fake):
    answer = client.post("/api/v1/translate", json={"text": "a dog", "to": "de"},
                         headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and fake.requests == []


def test_without_a_backend_nothing_is_offered(app_for, tmp_path, monkeypatch):
    for name in ("KEY", "ENDPOINT", "LOCATION", "CAPTIONER_TRANSLATION_MODELS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAPTIONER_TRANSLATION_MODELS", str(tmp_path))  # an empty folder: no local models
    app = app_for()
    client = app.test_client()
    assert client.get("/api/v1/translate/languages").json == {"backend": None, "languages": []}
    answer = client.post("/api/v1/translate", json={"text": "a dog", "to": "de"})
    assert answer.status_code == 503 and answer.json["error"]["code"] == "translation_unavailable"
    app.extensions["captioner"].close()
