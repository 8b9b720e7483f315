"""Errors of the compatible protocols in each protocol's own shape, decided in one place for every source of
error (the routes, the upload size limit, unknown URLs), and the native API's shape left as it was."""

from __future__ import annotations

import base64

import pytest

from support.web import shapes_image_bytes


@pytest.fixture(scope="module")
def app(make_app, demo_models_dir):
    app = make_app(demo_models_dir, max_upload_mb=0.05)
    yield app
    app.extensions["captioner"].close()


def chat_body(image: bytes) -> dict:
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    return {"model": "shapes-demo", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}]}]}


def test_openai_shape_for_every_error(client):
    too_big = client.post("/v1/chat/completions", json=chat_body(b"x" * 100_000))
    assert too_big.status_code == 413
    assert set(too_big.json["error"]) == {"message", "type", "param", "code"}
    assert too_big.json["error"]["type"] == "invalid_request_error" and "MB" in too_big.json["error"]["message"]
    invalid = client.post("/v1/chat/completions", json={"model": "shapes-demo", "messages": [], "n": 99})
    assert invalid.status_code == 400 and invalid.json["error"]["param"] == "messages"
    not_base64 = client.post("/v1/chat/completions", json={"model": "shapes-demo", "messages": [{"role": "user",
                             "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]})
    assert not_base64.status_code == 400 and not_base64.json["error"]["code"] == "bad_image"
    assert not_base64.json["error"]["param"] == "messages.0.content.0.image_url.url"
    url = "data:image/png;base64," + base64.b64encode(b"x" * 100_000).decode()
    too_big_response = client.post("/v1/responses", json={"model": "shapes-demo", "input": [
        {"role": "user", "content": [{"type": "input_image", "image_url": url}]}]})
    assert too_big_response.status_code == 413 and too_big_response.json["error"]["type"] == "invalid_request_error"
    nowhere = client.get("/v1/nothing-here")
    assert nowhere.status_code == 404 and nowhere.json["error"]["type"] == "invalid_request_error"


def test_ollama_shape_for_every_error(client, shapes_dataset):
    assert client.post("/api/generate", data="{not json").json == {"error": "the body must be a JSON object"}
    missing = client.post("/api/generate", json={"prompt": "hi"})
    assert missing.status_code == 400 and missing.json["error"].startswith("model:")
    text_only = client.post("/api/chat", json={"model": "shapes-demo", "messages": [{"role": "user", "content": "hi"}]})
    assert text_only.status_code == 400 and isinstance(text_only.json["error"], str)
    image = base64.b64encode(shapes_image_bytes(shapes_dataset, 1)).decode()
    answer = client.post("/api/generate", json={"model": "shapes-demo", "images": [image], "stream": False})
    assert answer.status_code == 200 and answer.json["done"] and answer.json["response"]


def test_native_errors_keep_their_shape(client):
    answer = client.post("/api/v1/captions", data=b"", content_type="image/png")
    assert answer.status_code == 400 and set(answer.json["error"]) == {"code", "message"}


def test_what_each_kind_takes_from_the_message_text():
    """The guide's table: text is a caption start for BLIP and GIT, a known task for Florence-2, and ignored by
    kinds that take no prompt (and, for Florence-2, when it is no task the model knows), the instruction for
    vision-language models."""
    from types import SimpleNamespace

    from captioner.models.transformers.architectures import ARCHITECTURES
    from captioner.web.compat import followed_text

    def model(name):
        return SimpleNamespace(prompt_option=ARCHITECTURES[name].prompt)

    assert followed_text(model("blip"), " a photo of ") == "a photo of"
    assert followed_text(model("git"), "Describe this image.") == "Describe this image."
    assert followed_text(model("florence-2"), "<DETAILED_CAPTION>") == "<DETAILED_CAPTION>"
    assert followed_text(model("florence-2"), "Describe this image.") is None
    assert followed_text(model("vit-gpt2"), "Describe this image.") is None
    assert followed_text(model("smolvlm"), "Describe the colours.") == "Describe the colours."
    assert followed_text(SimpleNamespace(), "Describe this image.") is None  # lstm and attention have no option
    assert followed_text(model("blip"), "   ") is None
