"""The remote kind against a real local HTTP server that stands in for a vision-language model server
(OpenAI and Ollama shapes): captions and styles, scores from log-probabilities, retries on 429 and 5xx that
honour Retry-After, timeouts, clean failures for garbage and refusals, and one in-flight bound per model
shared by every caller in the process. Then the same model through the command line and the web API."""

from __future__ import annotations

import io
import json
import shutil
import threading

import pytest
from PIL import Image

from captioner.errors import ModelError, RemoteError
from captioner.models.base import Decoding
from captioner.models.registry import load_captioner
from captioner.models.remote.registration import add_remote
from captioner.models.remote.settings import RemoteSettings
from support.cli import assert_clean_failure
from support.fake_vision_endpoint import MODEL, FakeVisionEndpoint

PICTURE = Image.new("RGB", (1600, 900), "red")  # shrunk to max_side before it is sent


@pytest.fixture
def fake():
    with FakeVisionEndpoint() as endpoint:
        yield endpoint


def remote_model(models, url, api="openai", name="vlm", **settings):
    options = {"retries": 2, "backoff_s": 0.01, "timeout_s": 10.0, "max_side": 256, **settings}
    add_remote(name, RemoteSettings(api=api, urls=(url,) if isinstance(url, str) else tuple(url), model=MODEL,
                                    **options), models, replace=True)
    return load_captioner(name, models)


@pytest.mark.parametrize("api", ["openai", "ollama"])
def test_captions_styles_and_scores_in_both_protocols(fake, tmp_path, api):
    model = remote_model(tmp_path, fake.url, api)
    caption = model.caption([PICTURE])[0]
    assert caption.text == "A red circle."
    assert caption.score == pytest.approx(-0.25 - 0.5 - 0.125)  # the tokens' log-probabilities, summed
    assert fake.requests[0]["path"] == ("/v1/chat/completions" if api == "openai" else "/api/generate")

    keywords = model.caption([PICTURE], Decoding(style="keywords"))[0]
    assert keywords.keywords == ("red", "circle", "shape", "white background")
    alt = model.caption([PICTURE], Decoding(style="alt-text"))[0]
    assert alt.text == "A red circle on a white background"  # the "image of" preamble dropped
    detailed = model.caption([PICTURE], Decoding(style="detailed", max_length=5))[0]
    assert detailed.text == "A red circle sits in"  # cut at max_length words
    assert detailed.score == pytest.approx(-0.25 - 0.5 - 0.125 - 1.0 - 0.25)  # only the tokens kept

    asked = model.caption([PICTURE], Decoding(prompt="Name the colour"))[0]
    assert asked.text == "a red circle [Name the colour]"  # a free-text prompt is the instruction
    sampled = model.caption([PICTURE], Decoding(method="sample", temperature=0.7, top_p=0.9, seed=5))[0]
    body = fake.requests[-1]["body"]
    options = body if api == "openai" else body["options"]
    assert (options["temperature"], options["top_p"], options["seed"]) == (0.7, 0.9, 5) and sampled.text


def test_an_endpoint_without_log_probabilities_gives_no_score(tmp_path):
    with FakeVisionEndpoint(logprobs=False) as fake:
        caption = remote_model(tmp_path, fake.url).caption([PICTURE])[0]
    assert caption.text == "A red circle." and caption.score is None


def test_429_is_retried_after_the_endpoints_retry_after(fake, tmp_path):
    fake.script = ["429", "500", "ok"]
    fake.retry_after = "1"
    model = remote_model(tmp_path, fake.url, backoff_s=0.01)
    assert model.caption([PICTURE])[0].text == "A red circle."
    first, second, third = (request["at"] for request in fake.requests)
    assert second - first >= 0.9  # waited as Retry-After said, not the 0.01 s backoff
    assert third - second < 0.9


@pytest.mark.parametrize("step, fragment, unavailable, tries", [
    ("500", "answered 500", True, 3),  # retried, then given up
    ("garbage", "not JSON", False, 1),  # never retried: it will not get better
    ("wrong", "not an openai caption", False, 1),
    ("400", "refused the request: 400", False, 1),
])
def test_failures_end_in_one_clear_error(fake, tmp_path, step, fragment, unavailable, tries):
    fake.default = step
    model = remote_model(tmp_path, fake.url)
    with pytest.raises(RemoteError, match=fragment) as raised:
        model.caption([PICTURE])
    assert raised.value.unavailable is unavailable and len(fake.requests) == tries


def test_a_slow_endpoint_times_out(fake, tmp_path):
    fake.default, fake.slow_s = "slow", 3.0
    model = remote_model(tmp_path, fake.url, timeout_s=0.5, retries=1)
    with pytest.raises(RemoteError, match="no answer within 0.5 s"):
        model.caption([PICTURE])
    assert len(fake.requests) == 2


def test_a_down_endpoint_and_a_missing_key(tmp_path):
    from captioner.web.launch import free_port

    model = remote_model(tmp_path, f"http://127.0.0.1:{free_port()}", retries=1)
    with pytest.raises(RemoteError, match="cannot be reached"):
        model.caption([PICTURE])
    with pytest.raises(ModelError, match=r"\$CAPTIONER_TEST_UNSET_KEY, which is not set"):
        remote_model(tmp_path, "http://127.0.0.1:1", key_env="CAPTIONER_TEST_UNSET_KEY")


def test_concurrency_is_bounded_per_model_across_callers(tmp_path):
    with FakeVisionEndpoint(service_s=0.2) as fake:
        first = remote_model(tmp_path, fake.url, concurrency=3)
        second = load_captioner("vlm", tmp_path)  # a second copy of the same model shares the bound
        results = []
        callers = [threading.Thread(target=lambda m=m: results.append(m.caption([PICTURE] * 6)))
                   for m in (first, second, first)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(timeout=120)
    assert [len(batch) for batch in results] == [6, 6, 6]
    assert fake.most_in_flight == 3  # a batch is sent concurrently, and never more than the bound


def test_requests_are_spread_over_the_endpoints(tmp_path):
    with FakeVisionEndpoint() as one, FakeVisionEndpoint() as two:
        model = remote_model(tmp_path, [one.url, two.url])
        assert len(model.caption([PICTURE] * 6)) == 6
    assert (len(one.requests), len(two.requests)) == (3, 3)


def test_add_remote_writes_a_bundle_without_the_key(runner, tmp_path, monkeypatch, fake):
    monkeypatch.setenv("VLM_KEY", "sk-secret-value-123")
    fake.key = "sk-secret-value-123"
    models = tmp_path / "models"
    added = runner("models", "add-remote", "vlm", "--url", fake.url, "--api", "openai", "--model", MODEL,
                   "--key-env", "VLM_KEY", "--models-dir", models)
    assert added.returncode == 0, added.stderr
    written = (models / "vlm" / "captioner.json").read_text()
    assert "sk-secret" not in written and '"key_env": "VLM_KEY"' in written and '"kind": "remote"' in written

    picture = tmp_path / "red.png"
    PICTURE.save(picture)
    captioned = runner("caption", picture, "--model", "vlm", "--models-dir", models)
    assert captioned.returncode == 0 and "A red circle." in captioned.stdout, captioned.stderr
    assert fake.requests[-1]["body"]["model"] == MODEL
    listed = runner("caption", picture, "--model", "vlm", "--models-dir", models, "--style", "keywords", "--json")
    assert json.loads(listed.stdout)["captions"][0]["keywords"] == ["red", "circle", "shape", "white background"]

    fake.default = "500"
    assert_clean_failure(runner("caption", picture, "--model", "vlm", "--models-dir", models), "answered 500")
    monkeypatch.setenv("VLM_KEY", "wrong")
    fake.default = "ok"
    assert_clean_failure(runner("caption", picture, "--model", "vlm", "--models-dir", models),
                         "401", "$VLM_KEY")


@pytest.mark.parametrize("url, fragment", [
    ("http://127.0.0.1:99999/v1", "port"),
    ("127.0.0.1:8000", "must start with http://"),
    ("http://127.0.0.1:0", "port 0"),
    ("ftp://gpu-1/v1", "must start with http://"),
])
def test_add_remote_refuses_bad_urls_with_one_line(runner, tmp_path, url, fragment):
    result = runner("models", "add-remote", "vlm", "--url", url, "--api", "openai", "--model", MODEL,
                    "--models-dir", tmp_path)
    assert_clean_failure(result, fragment)
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_the_web_api_captions_through_a_remote_model_and_maps_its_failures(make_app, tmp_path, fake, demo_bundle):
    remote_model(tmp_path, fake.url)
    shutil.copytree(demo_bundle, tmp_path / demo_bundle.name)
    app = make_app(tmp_path)
    try:
        client = app.test_client()
        assert app.extensions["captioner"].state == "ready"
        sent = len(fake.requests)  # a remote model is not warmed up with requests
        png = io.BytesIO()
        PICTURE.save(png, format="PNG")

        def post():
            return client.post("/api/v1/captions?model=vlm", data=png.getvalue(), content_type="image/png")

        page = client.get("/models")
        assert page.status_code == 200 and "vlm" in page.get_data(as_text=True)
        answer = post()
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["caption"] == "A red circle." and len(fake.requests) == sent + 1
        compared = client.post("/api/v1/captions", data={"image": (io.BytesIO(png.getvalue()), "red.png"),
                                                          "compare": "all"}, content_type="multipart/form-data")
        results = {result["model"]: result for result in compared.get_json()["results"]}
        assert results["vlm"]["caption"] == "A red circle." and results["shapes-demo"]["caption"]

        fake.default = "503"
        failed = post()
        assert failed.status_code == 503 and failed.get_json()["error"]["code"] == "remote_unavailable"
        compared = client.post("/api/v1/captions", data={"image": (io.BytesIO(png.getvalue()), "red.png"),
                                                          "compare": "all"}, content_type="multipart/form-data")
        results = {result["model"]: result for result in compared.get_json()["results"]}
        assert results["vlm"]["error"]["code"] == "remote_unavailable" and results["shapes-demo"]["caption"]
        fake.default = "garbage"
        failed = post()
        assert failed.status_code == 502 and failed.get_json()["error"]["code"] == "remote_failed"
    finally:
        app.extensions["captioner"].close()


def test_evaluate_compares_a_remote_model_with_a_local_one(runner, prepared_shapes, demo_bundle, tmp_path, fake,
                                                           monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(demo_bundle, models / demo_bundle.name)
    remote_model(models, fake.url, api="ollama")
    (tmp_path / "no-java").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "no-java"))  # the pure-Python metrics: no METEOR, faster
    result = runner("evaluate", "vlm", demo_bundle.name, "--dataset", prepared_shapes, "--limit", "4",
                    "--figure-images", "0", "--models-dir", models, "--report", tmp_path / "report", "--json")
    assert result.returncode == 0, result.stderr
    scored = {entry["model"]: entry for entry in json.loads(result.stdout)["models"]}
    assert set(scored) == {"vlm", demo_bundle.name} and scored["vlm"]["counts"]["images"] == 4
    assert len(fake.requests) == 4 and all(request["path"] == "/api/generate" for request in fake.requests)


def test_retry_after_reads_seconds_and_http_dates():
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    from captioner.models.remote.transport import retry_after

    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert retry_after("7", 0.5) == 7.0 and retry_after(None, 0.5) == 0.5 and retry_after("soon", 0.5) == 0.5
    assert 25 < retry_after(later, 0.5) <= 30
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 0.5) == 0.0  # a date gone by: no wait
