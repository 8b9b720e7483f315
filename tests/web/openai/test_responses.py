"""POST /v1/responses, judged by the real `openai` package (`client.responses.create`, plain and streamed, and
`client.responses.stream`) and by the request PhotoPrism's OpenAI engine sends, against a real `captioner serve`
(keys on, a rate limit): the same caption as the native API, the Responses event sequence, and the errors the
SDK turns into its own exception classes."""

from __future__ import annotations

import pytest
import requests

from support.web import data_url, shapes_image_bytes

pytestmark = pytest.mark.slow

# PhotoPrism's caption request, as its OpenAI engine builds it (photoprism/photoprism,
# internal/ai/vision/api_request.go, openAIJSON, with the defaults of internal/ai/vision/openai/defaults.go):
# a system message and a user message, each {"role", "type": "message", "content": [...]}, the user's holding
# the prompt as input_text and the thumbnail as an input_image data URL with detail "low"; reasoning effort
# "low", max_output_tokens 512 for captions (1024 for labels). Temperature and top_p are left out when unset
# (omitempty). For labels it adds text.format: json_schema named photoprism_vision_labels_v1.
PHOTOPRISM_CAPTION_SYSTEM = ("You are a PhotoPrism vision model. Return concise, user-friendly captions that "
                             "describe the main subjects accurately.")
PHOTOPRISM_CAPTION_PROMPT = ("Provide exactly one sentence describing the key subject and action in the image. "
                             "Avoid filler words and technical jargon.")


def photoprism_caption_request(model: str, image: bytes) -> dict:
    return {
        "model": model,
        "input": [
            {"role": "system", "type": "message",
             "content": [{"type": "input_text", "text": PHOTOPRISM_CAPTION_SYSTEM}]},
            {"role": "user", "type": "message",
             "content": [{"type": "input_text", "text": PHOTOPRISM_CAPTION_PROMPT},
                         {"type": "input_image", "image_url": data_url(image, "jpeg"), "detail": "low"}]},
        ],
        "reasoning": {"effort": "low"},
        "max_output_tokens": 512,
    }


PHOTOPRISM_LABELS_SYSTEM = ("You are a PhotoPrism vision model. Emit JSON that matches the provided schema and keep "
                            "label names short, singular nouns.")
PHOTOPRISM_LABELS_PROMPT = ("Analyze the image and return label objects with name, confidence (0-1), and topicality "
                            "(0-1).")
# internal/ai/vision/schema/labels.go, LabelsJsonSchemaDefault; named by schema.JsonSchemaName.
PHOTOPRISM_LABELS_SCHEMA = {
    "type": "object",
    "properties": {"labels": {
        "type": "array",
        "items": {"type": "object",
                  "properties": {"name": {"type": "string", "minLength": 1},
                                 "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                                 "topicality": {"type": "number", "minimum": 0, "maximum": 1}},
                  "required": ["name", "confidence", "topicality"], "additionalProperties": False},
        "default": []}},
    "required": ["labels"],
    "additionalProperties": False,
}


def photoprism_labels_request(model: str, image: bytes) -> dict:
    request = photoprism_caption_request(model, image)
    request["input"][0]["content"][0]["text"] = PHOTOPRISM_LABELS_SYSTEM
    request["input"][1]["content"][0]["text"] = PHOTOPRISM_LABELS_PROMPT
    request["max_output_tokens"] = 1024
    request["text"] = {"format": {"type": "json_schema", "name": "photoprism_vision_labels_v1",
                                  "schema": PHOTOPRISM_LABELS_SCHEMA}}
    return request


def photoprism_first_text(answer: dict) -> str:
    """The text PhotoPrism's parser takes (openai/transport.go, FirstText): the first non-empty content text of
    any output item."""
    for item in answer.get("output") or []:
        for content in item.get("content") or []:
            if (content.get("text") or "").strip():
                return content["text"].strip()
    return ""


def image_input(data: bytes, text: str = "Describe this image.") -> list[dict]:
    return [{"role": "system", "content": "You write captions."},
            {"role": "user", "content": [{"type": "input_text", "text": text},
                                         {"type": "input_image", "image_url": data_url(data)}]}]


@pytest.fixture(scope="module")
def openai_client(compat_server):
    import openai

    return openai.OpenAI(base_url=compat_server.url + "/v1", api_key=compat_server.key(), max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def jpeg_picture(shapes_dataset) -> bytes:
    return shapes_image_bytes(shapes_dataset, 3, "JPEG")  # the picture, as PhotoPrism sends thumbnails


def test_responses_create_is_the_native_caption(openai_client, compat_server, picture, native_caption):
    response = openai_client.responses.create(model=compat_server.model, input=image_input(picture),
                                              instructions="Be brief.", metadata={"album": "shapes"})
    assert response.object == "response" and response.status == "completed" and response.model == compat_server.model
    assert response.id.startswith("resp_") and isinstance(response.created_at, (int, float)) and response.created_at > 0
    assert response.output_text == native_caption and native_caption.strip()
    [message] = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert message.id.startswith("msg_")
    [part] = message.content
    assert part.type == "output_text" and part.annotations == []
    assert response.usage.output_tokens == len(native_caption.split())
    assert response.usage.input_tokens == len("Be brief. You write captions. Describe this image.".split())
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert response.instructions == "Be brief." and response.metadata == {"album": "shapes"}
    assert response.incomplete_details is None and response.error is None and response.tools == []


def test_responses_stream_sends_the_event_sequence(openai_client, compat_server, picture, native_caption):
    events = list(openai_client.responses.create(model=compat_server.model, input=image_input(picture), stream=True))
    kinds = [event.type for event in events]
    words = len(native_caption.split())
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", *["response.output_text.delta"] * words,
                     "response.output_text.done", "response.content_part.done", "response.output_item.done",
                     "response.completed"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert "".join(event.delta for event in events if event.type == "response.output_text.delta") == native_caption
    created, completed = events[0].response, events[-1].response
    assert created.status == "in_progress" and created.output == [] and created.id == completed.id
    assert completed.status == "completed" and completed.output_text == native_caption
    item_ids = {event.item_id for event in events if hasattr(event, "item_id")}
    assert item_ids == {completed.output[0].id}
    assert events[-4].text == native_caption


def test_responses_stream_helper_accumulates_the_caption(openai_client, compat_server, picture, native_caption):
    deltas = []
    with openai_client.responses.stream(model=compat_server.model, input=image_input(picture)) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
                assert event.snapshot == "".join(deltas)  # the SDK's running text, built from our events
        final = stream.get_final_response()
    assert final.output_text == native_caption == "".join(deltas)


def test_the_word_limit_makes_the_response_incomplete(openai_client, compat_server, picture):
    response = openai_client.responses.create(model=compat_server.model, input=image_input(picture),
                                              max_output_tokens=2)
    assert len(response.output_text.split()) <= 2 and response.output_text
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.max_output_tokens == 2
    events = list(openai_client.responses.create(model=compat_server.model, input=image_input(picture),
                                                 max_output_tokens=2, stream=True))
    assert events[-1].type == "response.incomplete" and events[-1].response.output_text == response.output_text


def test_photoprism_caption_request(compat_server, jpeg_picture):
    """PhotoPrism's request gets an answer its parser reads: the caption as the first output text."""
    jpeg_caption = requests.post(compat_server.url + "/api/v1/captions", timeout=60,
                                 files={"image": ("p.jpg", jpeg_picture, "image/jpeg")},
                                 headers={"Authorization": f"Bearer {compat_server.key()}"}).json()["caption"]
    answer = requests.post(compat_server.url + "/v1/responses", timeout=60,
                           json=photoprism_caption_request(compat_server.model, jpeg_picture),
                           headers={"Authorization": f"Bearer {compat_server.key()}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert photoprism_first_text(body) == jpeg_caption and jpeg_caption.strip()
    assert body["object"] == "response" and body["status"] == "completed" and body["model"] == compat_server.model
    assert body["reasoning"]["effort"] == "low" and body["max_output_tokens"] == 512
    assert isinstance(body["created_at"], int)
    from openai.types.responses import Response

    Response.model_validate(body)  # every field the SDK's type requires, with its type (the SDK itself never checks)


def test_the_raw_stream_validates_as_the_sdks_event_types(compat_server, picture):
    from openai.types.responses import ResponseStreamEvent
    from pydantic import TypeAdapter

    body = {"model": compat_server.model, "input": image_input(picture), "stream": True}
    answer = requests.post(compat_server.url + "/v1/responses", json=body, timeout=60,
                           headers={"Authorization": f"Bearer {compat_server.key()}"})
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/event-stream")
    blocks = [block.split("\n") for block in answer.text.strip().split("\n\n")]
    events = TypeAdapter(ResponseStreamEvent)
    for lines in blocks:
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), lines
        event = events.validate_json(lines[1][len("data: "):])
        assert event.type == lines[0][len("event: "):]
    assert event.type == "response.completed"


def test_photoprism_labels_request(compat_server, jpeg_picture):
    """PhotoPrism's labels request (a json_schema text.format) gets JSON valid against its schema, with the labels
    its parser keeps: a name each (openai/engine_openai.go, populateOpenAIJSONResult)."""
    import json

    import jsonschema

    answer = requests.post(compat_server.url + "/v1/responses", timeout=60,
                           json=photoprism_labels_request(compat_server.model, jpeg_picture),
                           headers={"Authorization": f"Bearer {compat_server.key()}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    document = json.loads(photoprism_first_text(body))
    jsonschema.validate(document, PHOTOPRISM_LABELS_SCHEMA)
    assert document["labels"] and all(label["name"].strip() for label in document["labels"])
    assert body["text"]["format"]["name"] == "photoprism_vision_labels_v1" and body["status"] == "completed"


def test_json_object_and_schema_formats(openai_client, compat_server, picture, native_caption):
    import json

    import openai

    response = openai_client.responses.create(model=compat_server.model, input=image_input(picture),
                                              text={"format": {"type": "json_object"}})
    document = json.loads(response.output_text)
    assert document["caption"] == native_caption and document["keywords"]
    assert [label["name"] for label in document["labels"]] == document["keywords"]
    schema = {"type": "object", "properties": {"alt": {"type": "string"}, "tags": {"type": "array",
              "items": {"type": "string"}}}, "required": ["alt", "tags"], "additionalProperties": False}
    events = list(openai_client.responses.create(
        model=compat_server.model, input=image_input(picture), stream=True,
        text={"format": {"type": "json_schema", "name": "alt_text", "schema": schema, "strict": True}}))
    streamed = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert json.loads(streamed) == {"alt": native_caption, "tags": document["keywords"]}
    assert events[-1].type == "response.completed" and events[-1].response.output_text == streamed
    with pytest.raises(openai.BadRequestError) as unfillable:
        openai_client.responses.create(model=compat_server.model, input=image_input(picture), text={"format": {
            "type": "json_schema", "name": "shop", "schema": {"type": "object", "required": ["price"],
                                                              "properties": {"price": {"type": "number"}}}}})
    assert unfillable.value.param == "text.format.schema.properties.price" and "price" in unfillable.value.message
    with pytest.raises(openai.BadRequestError) as unknown_type:
        openai_client.responses.create(model=compat_server.model, input=image_input(picture),
                                       text={"format": {"type": "yaml"}})
    assert unknown_type.value.param.startswith("text.format")


def test_responses_errors_are_the_sdks_exceptions(openai_client, compat_server, picture):
    import openai

    with pytest.raises(openai.BadRequestError) as text_only:
        openai_client.responses.create(model=compat_server.model, input="Describe my photo.")
    assert text_only.value.code == "no_image" and text_only.value.param == "input"
    with pytest.raises(openai.BadRequestError) as not_base64:
        openai_client.responses.create(model=compat_server.model, input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": "data:image/png,raw-bytes"}]}])
    assert not_base64.value.code == "bad_image" and not_base64.value.param == "input.0.content.0.image_url"
    with pytest.raises(openai.BadRequestError) as damaged:
        openai_client.responses.create(model=compat_server.model, input=image_input(picture[:200]))
    assert damaged.value.code == "bad_image" and "damaged" in damaged.value.message
    with pytest.raises(openai.BadRequestError) as uploaded:
        openai_client.responses.create(model=compat_server.model, input=[{"role": "user", "content": [
            {"type": "input_image", "file_id": "file-123"}]}])
    assert "file_id is not supported" in uploaded.value.message
    with pytest.raises(openai.BadRequestError) as remote:  # a host the server was not told to fetch from
        openai_client.responses.create(model=compat_server.model, input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": "http://169.254.169.254/latest/meta-data"}]}])
    assert "CAPTIONER_IMAGE_URL_HOSTS" in remote.value.message
    with pytest.raises(openai.NotFoundError) as unknown:
        openai_client.responses.create(model="no-such-model", input=image_input(picture))
    assert unknown.value.code == "model_not_found" and unknown.value.param == "model"
    assert "no-such-model" in unknown.value.message
    with pytest.raises(openai.BadRequestError) as bad_role:
        openai_client.responses.create(model=compat_server.model, input=[{"role": "robot", "content": "hi"}])
    assert bad_role.value.param == "input.0.role"  # the shape meant (messages), not "input.str"
    with pytest.raises(openai.BadRequestError) as a_file:
        openai_client.responses.create(model=compat_server.model, input=[{"role": "user", "content": [
            {"type": "input_file", "file_id": "file-123"}]}])
    assert a_file.value.param == "input.0.content.0" and "input_image" in a_file.value.message


def test_responses_without_a_valid_key_is_an_authentication_error(compat_server, picture):
    import openai

    stranger = openai.OpenAI(base_url=compat_server.url + "/v1", api_key="not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        stranger.responses.create(model=compat_server.model, input=image_input(picture))
    assert refused.value.status_code == 401 and refused.value.body["type"] == "authentication_error"
    assert refused.value.code == "unauthorized"
