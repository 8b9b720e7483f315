"""--language: a model that takes instructions is told to write in the language, any other writes English that
goes through the configured translator (here the fake Azure Translator, a real local HTTP server); the answer
says which happened, and a language nothing can produce is one clear line."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from captioner.models.remote.registration import add_remote
from captioner.models.remote.settings import RemoteSettings
from support.cli import assert_clean_failure, run_main
from support.fake_azure_translator import KEY, REGION, FakeAzureTranslator
from support.fake_vision_endpoint import MODEL, FakeVisionEndpoint
from support.tiny_tagger import build_tagger


@pytest.fixture
def red_photo(tmp_path):
    path = tmp_path / "photos" / "red.png"
    path.parent.mkdir()
    Image.new("RGB", (40, 40), (255, 0, 0)).save(path)
    return path


def test_a_vision_language_model_is_instructed_in_the_language(red_photo, tmp_path):
    models = tmp_path / "models"
    with FakeVisionEndpoint() as fake:
        add_remote("vlm", RemoteSettings(api="openai", urls=(fake.url,), model=MODEL, retries=1, timeout_s=10.0),
                   models)
        done = run_main("caption", red_photo, "--model", "vlm", "--models-dir", models, "--language", "de", "--json")
        assert done.returncode == 0, done.stderr
        content = fake.requests[-1]["body"]["messages"][0]["content"]
    instruction = next(part["text"] for part in content if part["type"] == "text")
    assert instruction == "Describe this image in one sentence. Write the answer in German."
    assert json.loads(done.stdout)["language"] == {"code": "de", "how": "instructed"}


def test_other_kinds_write_english_through_the_translator_or_are_refused(red_photo, tmp_path, monkeypatch):
    tagger = build_tagger(tmp_path / "tagger")
    monkeypatch.setenv("CAPTIONER_TRANSLATOR", "none")
    assert_clean_failure(run_main("caption", red_photo, "--model", tagger, "--language", "de"),
                         "nothing here can write 'de'", "no translator is configured")
    with FakeAzureTranslator() as fake:
        for name, value in (("CAPTIONER_TRANSLATOR", "azure"), ("KEY", KEY), ("ENDPOINT", fake.endpoint),
                            ("LOCATION", REGION), ("CAPTIONER_TRANSLATION_LANGUAGES", "de,it")):
            monkeypatch.setenv(name, value)
        done = run_main("caption", red_photo, "--model", tagger, "--language", "de", "--json")
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["language"] == {"code": "de", "how": "translated", "translator": "azure"}
        (entry,) = answer["captions"]
        assert entry["keywords"] == ["[de] red theme", "[de] ^_^", "[de] long hair"]  # each tag, translated
        assert len(entry["keyword_scores"]) == 3
        assert_clean_failure(run_main("caption", red_photo, "--model", tagger, "--language", "ko"),
                             "nothing here can write 'ko'", "azure translator offers de, it")
        out = tmp_path / "rows.jsonl"
        collected = run_main("collection", red_photo.parent, "--out", out, "--model", tagger, "--language", "it",
                             "--json")
        assert collected.returncode == 0, collected.stderr
        assert json.loads(out.read_text().splitlines()[0])["caption"].startswith("[it] red theme")


def test_the_api_says_whether_the_language_was_instructed_or_translated(tagging):
    from support.tagging import TAGGER, VLM

    instructed = tagging.caption(model=VLM, language="de")
    assert instructed.status_code == 200, instructed.get_json()
    assert tagging.instruction() == "Describe this image in one sentence. Write the answer in German."
    assert instructed.get_json()["language"] == {"code": "de", "how": "instructed"}
    translated = tagging.caption(model=TAGGER, language="de").get_json()
    assert translated["language"] == {"code": "de", "how": "translated", "translator": "azure"}
    assert translated["keywords"] == ["[de] red theme", "[de] ^_^", "[de] long hair"]
    assert translated["keyword_scores"][1] == 0.5  # each tag keeps its probability through translation
    assert json.loads(tagging.translator.requests[-1]["body"]) == [{"text": "long hair"}]
    tagging.translator.fail_with = 500
    try:
        failed = tagging.caption(model=TAGGER, language="de")
    finally:
        tagging.translator.fail_with = None
    assert failed.status_code == 502 and failed.get_json()["error"]["code"] == "translation_failed"
    for model, language, fragment in ((TAGGER, "ko", "the azure translator offers"), (VLM, "xx", "instructed in")):
        refused = tagging.caption(model=model, language=language)
        assert refused.status_code == 400, refused.get_json()
        assert f"nothing here can write {language!r}" in refused.get_json()["error"]["message"]
        assert fragment in refused.get_json()["error"]["message"]
