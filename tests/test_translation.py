"""The Azure Translator backend against a local fake of the real v3 service, and backend selection."""

from __future__ import annotations

import json
import uuid

import pytest
from support.fake_azure_translator import KEY, REGION, FakeAzureTranslator

from captioner.translation import TranslationError, TranslationSettings, create_translator
from captioner.translation.azure import AzureTranslator
from captioner.translation.base import ORIGINAL_LANGUAGES


@pytest.fixture
def fake():
    with FakeAzureTranslator() as server:
        yield server


def azure(fake, **kwargs) -> AzureTranslator:
    options = {"key": KEY, "endpoint": fake.endpoint, "location": REGION, "timeout": 2.0, **kwargs}
    return AzureTranslator(**options)


def test_translates_with_the_real_request_shape(fake):
    translator = azure(fake)
    assert translator.translate("A red circle", "de") == "ein roter Kreis"
    assert translator.translate("a red circle", "ja") == "赤い円"
    sent = fake.requests[0]
    assert sent["path"] == "/translate"
    assert sent["query"] == {"api-version": ["3.0"], "from": ["en"], "to": ["de"]}
    assert sent["headers"]["Ocp-Apim-Subscription-Key"] == KEY
    assert sent["headers"]["Ocp-Apim-Subscription-Region"] == REGION
    assert sent["headers"]["Content-type"].startswith("application/json")
    uuid.UUID(sent["headers"]["X-ClientTraceId"])
    assert json.loads(sent["body"]) == [{"text": "A red circle"}]
    # every request has its own trace id
    assert fake.requests[1]["headers"]["X-ClientTraceId"] != sent["headers"]["X-ClientTraceId"]


def test_offers_the_original_languages(fake):
    languages = azure(fake).languages()
    assert tuple(languages) == ORIGINAL_LANGUAGES
    assert languages["ja"] == "Japanese" and languages["ar"] == "Arabic"
    assert set(azure(fake, languages=("de", "fr")).languages()) == {"de", "fr"}


def test_endpoint_with_or_without_trailing_slash(fake):
    assert azure(fake, endpoint=fake.endpoint.rstrip("/")).translate("a dog", "it") == "[it] a dog"


@pytest.mark.parametrize("status, fragments", [
    (401, ("refused the credentials", "401", "check KEY and LOCATION")),
    (429, ("rate-limiting", "429", "try again")),
    (500, ("failed", "500", "try again later")),
])
def test_service_failures_become_clear_errors(fake, status, fragments):
    fake.fail_with = status
    with pytest.raises(TranslationError) as caught:
        azure(fake).translate("a dog", "de")
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_a_wrong_key_is_reported_by_the_service(fake):
    with pytest.raises(TranslationError, match="refused the credentials.*not authorized"):
        azure(fake, key="wrong").translate("a dog", "de")


def test_slow_service_times_out(fake):
    fake.delay = 1.5
    with pytest.raises(TranslationError, match=r"did not answer within 0.3 s"):
        azure(fake, timeout=0.3).translate("a dog", "de")


def test_unreachable_service():
    with FakeAzureTranslator() as gone:
        endpoint = gone.endpoint
    translator = AzureTranslator(KEY, endpoint, REGION, timeout=2.0)
    with pytest.raises(TranslationError, match="cannot reach the translation service"):
        translator.translate("a dog", "de")


def test_bad_requests_are_refused_before_sending(fake):
    translator = azure(fake)
    with pytest.raises(ValueError, match="empty"):
        translator.translate("   ", "de")
    with pytest.raises(ValueError, match="cannot translate into 'xx'.*de \\(German\\)"):
        translator.translate("a dog", "xx")
    with pytest.raises(ValueError, match="too long"):
        translator.translate("a" * 5001, "de")
    assert fake.requests == []


def test_bad_configuration_is_explained():
    with pytest.raises(ValueError, match="KEY"):
        AzureTranslator("", "https://example.invalid")
    with pytest.raises(ValueError, match="ENDPOINT"):
        AzureTranslator("k", "example.invalid")
    with pytest.raises(ValueError, match="unknown translation language"):
        AzureTranslator("k", "https://example.invalid", languages=("de", "klingon"))


def test_settings_choose_the_backend(fake, tmp_path):
    env = {"KEY": KEY, "ENDPOINT": fake.endpoint, "LOCATION": REGION}
    translator = create_translator(TranslationSettings.from_env(env))
    assert isinstance(translator, AzureTranslator)
    assert translator.translate("a red circle", "ru") == "красный круг"
    assert create_translator(TranslationSettings.from_env({**env, "CAPTIONER_TRANSLATOR": "none"})) is None
    # no Azure settings and an empty models folder: nothing to translate with
    empty = {"CAPTIONER_TRANSLATION_MODELS": str(tmp_path)}
    assert create_translator(TranslationSettings.from_env(empty)) is None
    with pytest.raises(ValueError, match="CAPTIONER_TRANSLATOR must be one of"):
        create_translator(TranslationSettings.from_env({"CAPTIONER_TRANSLATOR": "google"}))
    with pytest.raises(ValueError, match="number of seconds"):
        TranslationSettings.from_env({"CAPTIONER_TRANSLATION_TIMEOUT": "soon"})


def test_empty_variables_from_a_dotenv_file_mean_unset():
    settings = TranslationSettings.from_env({"KEY": "", "ENDPOINT": "https://x.example", "CAPTIONER_TRANSLATOR": "",
                                             "CAPTIONER_TRANSLATION_TIMEOUT": "", "CAPTIONER_TRANSLATION_LANGUAGES": ""})
    assert (settings.backend, settings.key, settings.timeout) == ("auto", "", 10.0)
    assert settings.languages == ",".join(ORIGINAL_LANGUAGES)
    with pytest.raises(ValueError, match="positive"):
        TranslationSettings.from_env({"CAPTIONER_TRANSLATION_TIMEOUT": "0"})
