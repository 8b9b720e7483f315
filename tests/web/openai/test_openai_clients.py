"""The OpenAI-compatible routes, judged by the real `openai` client package against a real `captioner serve`
(keys on, a rate limit): plain, streamed and several answers, the errors the SDK turns into its own exception
classes, and the same caption as the native API gives for the same image."""

from __future__ import annotations

import pytest
import requests

from support.compat_server import RATE_LIMIT
from support.web import data_url

pytestmark = pytest.mark.slow


def image_message(data: bytes, text: str = "Describe this image.") -> list[dict]:
    return [{"role": "system", "content": "You write captions."},
            {"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": data_url(data)}}]}]


@pytest.fixture(scope="module")
def openai_client(compat_server):
    import openai

    return openai.OpenAI(base_url=compat_server.url + "/v1", api_key=compat_server.key(), max_retries=0, timeout=60)


def test_openai_chat_completion_is_the_native_caption(openai_client, compat_server, picture, native_caption):
    completion = openai_client.chat.completions.create(model=compat_server.model, messages=image_message(picture))
    assert completion.object == "chat.completion" and completion.model == compat_server.model
    assert completion.id.startswith("chatcmpl-") and completion.created > 0
    [choice] = completion.choices
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert choice.message.content == native_caption and native_caption.strip()
    assert completion.usage.completion_tokens == len(native_caption.split())
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_openai_stream_gives_the_same_text(openai_client, compat_server, picture, native_caption):
    stream = openai_client.chat.completions.create(model=compat_server.model, messages=image_message(picture),
                                                   stream=True, stream_options={"include_usage": True})
    chunks = list(stream)  # the SDK stops at data: [DONE]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == native_caption
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage.completion_tokens == len(native_caption.split())


def test_openai_n_gives_different_alternatives(openai_client, compat_server, picture):
    completion = openai_client.chat.completions.create(model=compat_server.model, messages=image_message(picture),
                                                       n=3)
    texts = [choice.message.content for choice in completion.choices]
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert len(set(texts)) == 3 and all(texts)


def test_openai_word_limit(openai_client, compat_server, picture):
    completion = openai_client.chat.completions.create(model=compat_server.model, messages=image_message(picture),
                                                       max_completion_tokens=2)
    assert len(completion.choices[0].message.content.split()) <= 2
    assert completion.choices[0].finish_reason == "length"


def test_openai_structured_outputs_parse_into_the_pydantic_model(openai_client, compat_server, picture,
                                                                 native_caption):
    """The SDK's own structured-outputs path: ``parse`` sends the model's strict JSON schema as
    ``response_format`` and reads the answer back into the model."""
    import json

    from pydantic import BaseModel

    class Label(BaseModel):
        name: str
        confidence: float

    class PhotoLabels(BaseModel):
        caption: str
        labels: list[Label]

    completion = openai_client.chat.completions.parse(model=compat_server.model, messages=image_message(picture),
                                                      response_format=PhotoLabels)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, PhotoLabels) and parsed.caption == native_caption
    assert parsed.labels and all(label.name and 0 < label.confidence <= 1 for label in parsed.labels)
    plain = openai_client.chat.completions.create(model=compat_server.model, messages=image_message(picture),
                                                  response_format={"type": "json_object"})
    document = json.loads(plain.choices[0].message.content)
    assert document["caption"] == native_caption and [label["name"] for label in document["labels"]] == [
        label.name for label in parsed.labels]


def test_openai_errors_are_the_sdks_exceptions(openai_client, compat_server, picture):
    import openai

    with pytest.raises(openai.BadRequestError) as damaged:
        openai_client.chat.completions.create(model=compat_server.model, messages=image_message(picture[:200]))
    assert damaged.value.code == "bad_image" and "damaged" in damaged.value.message
    with pytest.raises(openai.NotFoundError) as unknown:
        openai_client.chat.completions.create(model="no-such-model", messages=image_message(picture))
    assert unknown.value.param == "model" and "no-such-model" in unknown.value.message
    with pytest.raises(openai.NotFoundError):
        openai_client.models.retrieve("no-such-model")
    with pytest.raises(openai.BadRequestError) as remote:  # a host the server was not told to fetch from
        openai_client.chat.completions.create(model=compat_server.model, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest/meta-data"}}]}])
    assert "CAPTIONER_IMAGE_URL_HOSTS" in remote.value.message
    with pytest.raises(openai.BadRequestError) as text_only:
        openai_client.chat.completions.create(model=compat_server.model, messages=[{"role": "user", "content": "hi"}])
    assert text_only.value.code == "no_image"


def test_openai_without_a_valid_key_is_an_authentication_error(compat_server, picture):
    import openai

    stranger = openai.OpenAI(base_url=compat_server.url + "/v1", api_key="not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        stranger.chat.completions.create(model=compat_server.model, messages=image_message(picture))
    assert refused.value.status_code == 401 and refused.value.body["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()


def test_openai_over_the_rate_limit_is_a_rate_limit_error(compat_server):
    import openai

    key = compat_server.key("limited")
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {key}"
        statuses = [session.get(compat_server.url + "/v1/models", timeout=30).status_code for _ in range(RATE_LIMIT)]
    assert statuses.count(200) >= RATE_LIMIT - 1  # the minute may roll over once
    client = openai.OpenAI(base_url=compat_server.url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.RateLimitError) as limited:
        for _ in range(2):
            client.models.list()
    assert limited.value.response.headers["Retry-After"]


def test_openai_models(openai_client, compat_server):
    assert [model.id for model in openai_client.models.list()] == [compat_server.model]
    model = openai_client.models.retrieve(compat_server.model)
    assert model.id == compat_server.model and model.owned_by == "captioner"


def test_sampling_options_reach_the_decoding(compat_server, picture):
    """temperature above 0 is the sampling method (the same seed, the same caption); 0 is the model's own."""
    headers = {"Authorization": f"Bearer {compat_server.key()}"}
    body = {"model": compat_server.model, "messages": image_message(picture), "temperature": 0.7, "seed": 11}
    answers = [requests.post(compat_server.url + "/v1/chat/completions", json=body, headers=headers, timeout=60)
               for _ in range(2)]
    assert [answer.status_code for answer in answers] == [200, 200], answers[0].text
    texts = [answer.json()["choices"][0]["message"]["content"] for answer in answers]
    assert texts[0] == texts[1] and texts[0].strip()


def test_with_keys_on_the_reference_page_asks_to_sign_in_and_the_document_needs_a_key(compat_server):
    page = requests.get(compat_server.url + "/api/docs", allow_redirects=False, timeout=30)
    assert page.status_code == 302 and "/sign-in" in page.headers["Location"]
    assert requests.get(compat_server.url + "/api/v1/openapi.json", timeout=30).status_code == 401
    document = requests.get(compat_server.url + "/api/v1/openapi.json", timeout=30,
                            headers={"Authorization": f"Bearer {compat_server.key()}"}).json()
    assert document["openapi"] == "3.1.0"


def test_extra_body_asks_for_a_language_tags_and_a_template(tagging):
    import openai

    from support.tagging import TAGGER, VLM, red_png

    client = openai.OpenAI(base_url=tagging.url + "/v1", api_key="unused", max_retries=0, timeout=60)
    translated = client.chat.completions.create(model=TAGGER, messages=image_message(red_png()),
                                                extra_body={"language": "de"})
    assert translated.choices[0].message.content == "[de] red theme, [de] ^_^, [de] long hair"
    instructed = client.chat.completions.create(model=VLM, messages=image_message(red_png(), "Describe it."),
                                                extra_body={"language": "de", "tags_from": TAGGER,
                                                            "template": "{caption} ({tags})"})
    assert tagging.instruction() == "Describe it. These tags describe it: red theme, ^_^, long hair. Write the " \
                                    "answer in German."
    assert instructed.choices[0].message.content.endswith("(red theme, ^_^, long hair)")
    with pytest.raises(openai.BadRequestError, match="nothing here can write 'ko'"):
        client.chat.completions.create(model=TAGGER, messages=image_message(red_png()), extra_body={"language": "ko"})
    responded = client.responses.create(  # the Responses API takes the same fields
        model=VLM, input=[{"role": "user", "content": [
            {"type": "input_text", "text": "Describe it."},
            {"type": "input_image", "image_url": data_url(red_png())}]}],
        extra_body={"language": "de", "tags_from": TAGGER, "template": "{caption} ({tags})"})
    assert tagging.instruction() == "Describe it. These tags describe it: red theme, ^_^, long hair. Write the " \
                                    "answer in German."
    assert responded.output_text.endswith("(red theme, ^_^, long hair)")
    with pytest.raises(openai.BadRequestError, match="nothing here can write 'ko'"):
        client.responses.create(model=TAGGER, input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": data_url(red_png())}]}],
            extra_body={"language": "ko"})
