"""The Ollama-compatible routes, judged by the real `ollama` client package against a real `captioner serve`
(keys on): generate and chat, plain and streamed, the model list, and the errors the client raises."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ollama_client(compat_server):
    import ollama

    return ollama.Client(host=compat_server.url, headers={"Authorization": f"Bearer {compat_server.key()}"},
                         timeout=60)


def test_ollama_generate_with_an_image_path_streamed_or_not(ollama_client, compat_server, picture, native_caption,
                                                            tmp_path):
    path = tmp_path / "picture.png"
    path.write_bytes(picture)
    answer = ollama_client.generate(model=compat_server.model, prompt="Describe this image.", images=[path])
    assert answer.done and answer.done_reason in ("stop", "length") and answer.response == native_caption
    assert answer.eval_count == len(native_caption.split()) and answer.total_duration > 0
    parts = list(ollama_client.generate(model=f"{compat_server.model}:latest", prompt="", images=[path], stream=True))
    assert "".join(part.response for part in parts) == native_caption
    assert parts[-1].done and not any(part.done for part in parts[:-1])


def test_ollama_chat_streamed_or_not(ollama_client, compat_server, picture, native_caption):
    messages = [{"role": "user", "content": "What is in this picture?", "images": [picture]}]
    answer = ollama_client.chat(model=compat_server.model, messages=messages)
    assert answer.message.role == "assistant" and answer.message.content == native_caption
    streamed = "".join(part.message.content for part in ollama_client.chat(model=compat_server.model,
                                                                           messages=messages, stream=True))
    assert streamed == native_caption


def test_ollama_format_json_and_a_pydantic_schema(ollama_client, compat_server, picture, native_caption):
    """The client's structured outputs: ``format="json"`` gives captioner's JSON object, and a pydantic model's
    ``model_json_schema()`` gives a document the model validates, in generate and in chat."""
    import json

    from pydantic import BaseModel

    class Photo(BaseModel):
        description: str
        tags: list[str]

    labels = json.loads(ollama_client.generate(model=compat_server.model, prompt="", images=[picture],
                                               format="json").response)
    assert labels["caption"] == native_caption and all(label["name"] for label in labels["labels"])
    answer = ollama_client.generate(model=compat_server.model, prompt="", images=[picture],
                                    format=Photo.model_json_schema(), think=False, keep_alive="5m",
                                    options={"stop": ["\n\n"], "temperature": 0})
    photo = Photo.model_validate_json(answer.response)
    assert photo.description == native_caption and photo.tags == labels["keywords"] and answer.thinking is None
    chat = ollama_client.chat(model=compat_server.model, format=Photo.model_json_schema(), messages=[
        {"role": "user", "content": "Describe this image.", "images": [picture]}])
    assert Photo.model_validate_json(chat.message.content) == photo


def test_ollama_list_show_version_and_errors(ollama_client, compat_server, picture):
    import ollama

    assert [model.model for model in ollama_client.list().models] == [f"{compat_server.model}:latest"]
    shown = ollama_client.show(compat_server.model)
    assert shown.details.family == "lstm" and "vision" in shown.capabilities
    assert requests.get(compat_server.url + "/api/version", timeout=30,
                        headers={"Authorization": f"Bearer {compat_server.key()}"}).json()["version"]
    with pytest.raises(ollama.ResponseError) as unknown:
        ollama_client.generate(model="no-such-model", prompt="", images=[picture])
    assert unknown.value.status_code == 404 and "no-such-model" in unknown.value.error
    with pytest.raises(ollama.ResponseError) as damaged:
        ollama_client.generate(model=compat_server.model, prompt="", images=[picture[:100]])
    assert damaged.value.status_code == 400
    stranger = ollama.Client(host=compat_server.url)
    with pytest.raises(ollama.ResponseError) as refused:
        stranger.list()
    assert refused.value.status_code == 401 and "API key" in refused.value.error


def test_options_ask_for_a_language_tags_and_a_template(tagging):
    import ollama

    from support.tagging import TAGGER, VLM, red_png

    client = ollama.Client(host=tagging.url, timeout=60)
    answer = client.generate(model=VLM, prompt="Describe it.", images=[red_png()], options={"language": "de"})
    assert tagging.instruction() == "Describe it. Write the answer in German."
    assert answer.done and answer.response
    tagged = client.chat(model=TAGGER, messages=[{"role": "user", "content": "", "images": [red_png()]}],
                         options={"template": "ohwx, {tags}", "language": "it"})
    assert tagged.message.content == "ohwx, [it] red theme, [it] ^_^, [it] long hair"
    with pytest.raises(ollama.ResponseError, match="give a template too"):
        client.generate(model=TAGGER, prompt="", images=[red_png()], options={"trigger": "ohwx"})
