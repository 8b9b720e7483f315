"""Structured answers: a caption and its keywords as the JSON a request asks for, every document checked with
the independent ``jsonschema`` validator against realistic schemas (PhotoPrism's labels schema, a plain caption,
tags as strings and as objects, nested objects, pydantic's ``model_json_schema()``), and every schema that
cannot be filled refused with a 400 naming the field."""

from __future__ import annotations

import base64
import io
import json
import re

import jsonschema
import pytest
from PIL import Image
from pydantic import BaseModel

from captioner.collections.keywords import caption_nouns
from captioner.web.errors import ApiError
from captioner.web.structured import UNKNOWN_CONFIDENCE, parse_format, render
from support.web import shapes_image_bytes

CAPTION = "a man in a red shirt rides a bike on a dirt road"

# PhotoPrism's labels schema, as its OpenAI engine sends it (photoprism/photoprism,
# internal/ai/vision/schema/labels.go, LabelsJsonSchemaDefault).
PHOTOPRISM_LABELS = {
    "type": "object",
    "properties": {"labels": {"type": "array", "items": {
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1},
                       "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                       "topicality": {"type": "number", "minimum": 0, "maximum": 1}},
        "required": ["name", "confidence", "topicality"], "additionalProperties": False}, "default": []}},
    "required": ["labels"], "additionalProperties": False,
}


class Tag(BaseModel):
    name: str
    confidence: float


class PhotoAnswer(BaseModel):
    description: str
    tags: list[Tag]
    alt_text: str | None = None


def answer(value, caption=CAPTION, keywords=(), scores=(), param="format") -> dict:
    fmt = parse_format(value, param)
    text = render(fmt, caption, list(keywords), list(scores))
    return json.loads(text)


SCHEMAS = {
    "photoprism labels": PHOTOPRISM_LABELS,
    "plain caption": {"type": "object", "properties": {"caption": {"type": "string"}}, "required": ["caption"],
                      "additionalProperties": False},
    "tags as strings": {"type": "object", "properties": {"alt": {"type": "string", "maxLength": 20},
                                                         "tags": {"type": "array", "items": {"type": "string"},
                                                                  "maxItems": 2}},
                        "required": ["alt", "tags"]},
    "tags as objects (pydantic)": PhotoAnswer.model_json_schema(),
    "nested": {"type": "object", "required": ["photo"], "properties": {"photo": {
        "type": "object", "required": ["caption", "keywords"], "properties": {
            "caption": {"type": "object", "required": ["text", "confidence"],
                        "properties": {"text": {"type": "string"},
                                       "confidence": {"type": "integer", "minimum": 0, "maximum": 100}}},
            "keywords": {"type": "string"}}}}},
}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_schema_answers_validate_against_their_schema(name):
    schema = SCHEMAS[name]
    document = answer(schema)
    jsonschema.validate(document, schema)
    assert document, name


def test_fields_are_filled_by_meaning():
    labels = answer(PHOTOPRISM_LABELS)["labels"]
    assert [label["name"] for label in labels] == ["man", "shirt", "bike", "road"]  # the caption's nouns
    assert {label["confidence"] for label in labels} == {UNKNOWN_CONFIDENCE}
    short = answer(SCHEMAS["tags as strings"])
    assert short == {"alt": "a man in a red shirt", "tags": ["man", "shirt"]}
    photo = answer(SCHEMAS["tags as objects (pydantic)"])
    assert photo["description"] == CAPTION and photo["tags"][0] == {"name": "man", "confidence": UNKNOWN_CONFIDENCE}
    nested = answer(SCHEMAS["nested"])["photo"]
    assert nested == {"caption": {"text": CAPTION, "confidence": 50}, "keywords": "man, shirt, bike, road"}


def test_a_taggers_probabilities_are_the_confidences():
    document = answer("json", caption="1girl, solo, outdoors", keywords=["1girl", "solo", "outdoors"],
                      scores=[0.981, 0.72, 0.4])
    assert document["caption"] == "1girl, solo, outdoors" and document["keywords"] == ["1girl", "solo", "outdoors"]
    assert document["labels"][0] == {"name": "1girl", "confidence": 0.981, "topicality": 0.981}
    jsonschema.validate({"labels": document["labels"]}, PHOTOPRISM_LABELS)


@pytest.mark.parametrize("value, param", [
    ("json", "format"), ({"type": "json_object"}, "response_format"),
    ({"type": "json_schema", "json_schema": {"name": "labels", "schema": PHOTOPRISM_LABELS, "strict": True}},
     "response_format"),
    ({"type": "json_schema", "name": "photoprism_vision_labels_v1", "schema": PHOTOPRISM_LABELS, "strict": True},
     "text.format"),
])
def test_every_protocols_way_of_asking_gives_labels(value, param):
    document = answer(value, param=param)
    assert [label["name"] for label in document["labels"]][:2] == ["man", "shirt"]


@pytest.mark.parametrize("value", [None, "", "text", {"type": "text"}])
def test_plain_text_asks_for_no_structure(value):
    assert parse_format(value, "format") is None


def refusal(value, param="format", **facts) -> ApiError:
    with pytest.raises(ApiError) as caught:
        answer(value, param=param, **facts)
    assert caught.value.status == 400
    return caught.value


def test_schemas_that_cannot_be_filled_name_the_field():
    price = refusal({"type": "object", "properties": {"caption": {"type": "string"}, "price": {"type": "number"}},
                     "required": ["caption", "price"]})
    assert price.param == "format.properties.price" and "price" in price.message
    owner = {"type": "object", "required": ["owner"], "properties": {"owner": {"type": "string"}}}
    assert answer({"type": "object", "properties": {"caption": {"type": "string"}, "photo": owner}}) == {
        "caption": CAPTION}  # an optional object that cannot be filled is left out
    nested = refusal({"type": "object", "properties": {"photo": owner}, "required": ["photo"]},
                     param="response_format.json_schema.schema")
    assert nested.param == "response_format.json_schema.schema.properties.photo.properties.owner"
    kind = refusal({"type": "object", "properties": {"kind": {"enum": ["photo", "drawing"]}}, "required": ["kind"]})
    assert kind.param == "format.properties.kind"
    too_few = refusal({"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"},
                                                                 "minItems": 12}}, "required": ["tags"]})
    assert too_few.param == "format.properties.tags" and "too short" in too_few.message
    undeclared = refusal({"type": "object", "required": ["camera"]})
    assert "camera" in undeclared.message


def test_bad_formats_and_oversized_schemas_are_refused():
    assert "JSON schema" in refusal(5).message
    assert "not a valid JSON schema" in refusal({"type": "objekt"}).message
    assert refusal({"$schema": ["draft"], "type": "object"}).param == "format.$schema"
    assert refusal({"type": "json_schema"}, param="response_format").param == "response_format.schema"
    deep = {"type": "string"}
    for _ in range(40):
        deep = {"type": "object", "properties": {"a": deep}}
    assert "too large" in refusal(deep).message
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(1500)}}
    assert "too large" in refusal(wide).message
    looping = refusal({"type": "object", "properties": {"next": {"$ref": "#"}}, "required": ["next"]})
    assert "refers to itself" in looping.message
    remote = refusal({"type": "object", "properties": {"caption": {"$ref": "https://example.com/s.json"}},
                      "required": ["caption"]})
    assert "inside the schema" in remote.message


# The routes, through the Flask test client, serving the shapes demo model (a sentence writer) and a tiny WD
# tagger (keywords with probabilities).

GO_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")  # Go's time.RFC3339
TIMING_FIELDS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
                 "eval_duration")

# PhotoPrism's Ollama engine (photoprism/photoprism, internal/ai/vision): the request body is ApiRequest of
# api_request.go (`suffix` and `stream` always sent, `stream: false`; an `id`; images as plain base64, see
# api_ollama.go); the caption prompt, label system prompt and label prompt are ollama/const.go's CaptionPrompt,
# LabelSystem and LabelPromptDefault; labels.go appends "Return JSON that matches this schema:" and the
# schema template to the prompt; engine_ollama.go's Options give labels temperature, top_p 0.9 and stop
# ["\n\n"], captions a temperature; model.go's GetFormat sends "json" for labels; ApplyService adds `think`
# from vision.yml's Service.Think.
PHOTOPRISM_CAPTION_PROMPT = ("Create a caption with exactly one sentence in the active voice that describes the "
                             "main visual content. Begin with the main subject and clear action. Avoid text "
                             "formatting, meta-language, and filler words.")
PHOTOPRISM_LABEL_SYSTEM = ("You are a PhotoPrism vision model. Output concise JSON that matches the schema. Each "
                           "label name MUST be a single-word noun in its canonical singular form. Avoid spaces, "
                           "punctuation, emoji, or descriptive phrases.")
PHOTOPRISM_LABEL_PROMPT = ("Analyze the image and return label objects with name, confidence (0-1), and topicality "
                           "(0-1).\n\nReturn JSON that matches this schema:\n{\n  \"labels\": [{\n    \"name\": \"\","
                           "\n    \"confidence\": 0,\n    \"topicality\": 0 }]\n}")


def photoprism_caption_request(model: str, image: str) -> dict:
    return {"id": "7a7f7e35-3c1b-4a4e-9d55-0c8f3b0e2a11", "model": model, "prompt": PHOTOPRISM_CAPTION_PROMPT,
            "suffix": "", "options": {"temperature": 0.1}, "stream": False, "images": [image], "think": "false"}


def photoprism_labels_request(model: str, image: str) -> dict:
    return {"id": "0b5c1e4e-52f4-4d7f-8a3e-2b7d9a6c4f10", "model": model, "system": PHOTOPRISM_LABEL_SYSTEM,
            "prompt": PHOTOPRISM_LABEL_PROMPT, "suffix": "", "format": "json",
            "options": {"temperature": 0.1, "top_p": 0.9, "stop": ["\n\n"]}, "stream": False, "images": [image]}


def photoprism_labels(body: bytes) -> list[dict]:
    """What PhotoPrism's parser takes from an answer (api_client.go decodeOllamaResponse and parseOllamaLabels):
    the last JSON value of the body, its `response` read as JSON, the `labels` with a name."""
    decoder, text, position, last = json.JSONDecoder(), body.decode(), 0, None
    while position < len(text.rstrip()):
        last, position = decoder.raw_decode(text, position)
        position += len(text[position:]) - len(text[position:].lstrip())
    labels = json.loads(last["response"])["labels"]
    return [label for label in labels if isinstance(label.get("name"), str) and label["name"].strip()]


@pytest.fixture(scope="module")
def app(make_app, demo_bundle, tmp_path_factory):
    from support.tiny_tagger import build_tagger
    from support.web import copy_bundle

    models = tmp_path_factory.mktemp("structured") / "models"
    models.mkdir()
    copy_bundle(demo_bundle, models, "shapes-demo")
    build_tagger(models / "tiny-wd-tagger")
    app = make_app(models)
    yield app
    app.extensions["captioner"].close()


@pytest.fixture(scope="module")
def photo(shapes_dataset) -> tuple[bytes, str]:
    data = shapes_image_bytes(shapes_dataset, 3, "PNG")
    return data, base64.b64encode(data).decode()


def native(client, model: str, data: bytes) -> dict:
    answer = client.post("/api/v1/captions", data={"image": (io.BytesIO(data), "p.png"), "model": model})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def red_picture() -> tuple[bytes, str]:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue(), base64.b64encode(buffer.getvalue()).decode()


def test_photoprisms_ollama_caption_and_labels_requests_get_answers_its_parser_takes(client, photo):
    data, image = photo
    caption = native(client, "shapes-demo", data)["caption"]
    answer = client.post("/api/generate", json=photoprism_caption_request("shapes-demo", image))
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()  # its temperature 0.1 samples (unseeded), so the words may differ from the native
    assert body["response"].strip() and body["done"] and "thinking" not in body
    greedy = {**photoprism_caption_request("shapes-demo", image), "options": {"temperature": 0}}
    assert client.post("/api/generate", json=greedy).get_json()["response"] == caption  # the same caption path
    assert GO_RFC3339.match(body["created_at"]), body["created_at"]
    assert all(isinstance(body[field], int) for field in TIMING_FIELDS if field in body)
    labels = photoprism_labels(client.post("/api/generate", json=photoprism_labels_request("shapes-demo",
                                                                                           image)).data)
    nouns = caption_nouns(caption)
    assert nouns and [label["name"] for label in labels] == list(nouns)
    assert all(0 < label["confidence"] <= 1 and label["topicality"] == label["confidence"] for label in labels)


def test_a_taggers_labels_carry_its_probabilities(client):
    data, image = red_picture()
    tags = native(client, "tiny-wd-tagger", data)
    labels = photoprism_labels(client.post("/api/generate", json=photoprism_labels_request("tiny-wd-tagger",
                                                                                           image)).data)
    assert [label["name"] for label in labels] == tags["keywords"] == ["red theme", "^_^", "long hair"]
    assert [label["confidence"] for label in labels] == tags["keyword_scores"]


def test_ollama_schema_answers_streamed_or_not_and_in_chat(client, photo):
    _, image = photo
    schema = SCHEMAS["tags as objects (pydantic)"]
    whole = client.post("/api/generate", json={"model": "shapes-demo", "images": [image], "format": schema,
                                               "stream": False}).get_json()
    document = json.loads(whole["response"])
    jsonschema.validate(document, schema)
    lines = [json.loads(line) for line in client.post("/api/generate", json={
        "model": "shapes-demo", "images": [image], "format": schema}).data.decode().splitlines()]
    assert json.loads("".join(line["response"] for line in lines)) == document
    assert lines[-1]["done"] and lines[-1]["done_reason"] == "stop" and not any(line["done"] for line in lines[:-1])
    chat = client.post("/api/chat", json={"model": "shapes-demo", "format": "json", "stream": False, "think": True,
                                          "keep_alive": "5m", "messages": [
                                              {"role": "system", "content": "Answer in JSON."},
                                              {"role": "user", "content": "", "images": [image]}]}).get_json()
    assert json.loads(chat["message"]["content"])["caption"] == document["description"]
    assert "thinking" not in chat["message"] and "thinking" not in chat


def test_ollamas_other_fields_are_accepted_and_stop_cuts_the_caption(client, photo):
    data, image = photo
    caption = native(client, "shapes-demo", data)["caption"]
    word = caption.split()[2]
    cut = client.post("/api/generate", json={
        "model": "shapes-demo", "images": [image], "stream": False, "system": "Be brief.", "suffix": "",
        "think": False, "keep_alive": 0, "context": [1, 2, 3], "raw": False,
        "options": {"stop": [f" {word}", "\n\n"], "num_ctx": 4096}}).get_json()
    assert cut["response"] == caption[: caption.index(f" {word}")] and cut["done_reason"] == "stop"
    tags = client.get("/api/tags").get_json()["models"]
    assert all(GO_RFC3339.match(model["modified_at"]) for model in tags)


def test_structured_requests_that_cannot_be_answered_are_clear_400s(client, photo):
    _, image = photo
    price = {"type": "object", "properties": {"price": {"type": "number"}}, "required": ["price"]}
    ollama = client.post("/api/generate", json={"model": "shapes-demo", "images": [image], "format": price})
    assert ollama.status_code == 400 and ollama.get_json() == {
        "error": "format.properties.price: captioner knows nothing to put in 'price'"}
    yaml = client.post("/api/chat", json={"model": "shapes-demo", "format": "yaml", "messages": []})
    assert yaml.status_code == 400 and yaml.get_json()["error"].startswith("format")
    openai = client.post("/v1/chat/completions", json={**chat_completion(image), "response_format": {
        "type": "json_schema", "json_schema": {"name": "price", "schema": price}}})
    assert openai.status_code == 400
    assert openai.get_json()["error"]["param"] == "response_format.json_schema.schema.properties.price"
    unknown = client.post("/v1/chat/completions", json={**chat_completion(image),
                                                        "response_format": {"type": "xml"}})
    assert unknown.status_code == 400 and unknown.get_json()["error"]["param"] == "response_format"


def chat_completion(image: str) -> dict:
    return {"model": "shapes-demo", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}}]}]}


def test_chat_completions_response_format(client, photo):
    data, image = photo
    caption = native(client, "shapes-demo", data)["caption"]
    schema = SCHEMAS["nested"]
    forms = {"text": caption, "json_object": None,
             "json_schema": {"name": "photo", "schema": schema, "strict": True}}
    for kind, expected in forms.items():
        response_format = {"type": kind, "json_schema": expected} if kind == "json_schema" else {"type": kind}
        answer = client.post("/v1/chat/completions", json={**chat_completion(image), "n": 2,
                                                           "response_format": response_format}).get_json()
        contents = [choice["message"]["content"] for choice in answer["choices"]]
        if kind == "text":
            assert contents[0] == caption
        elif kind == "json_object":
            assert [json.loads(c)["caption"] for c in contents][0] == caption
        else:
            for content in contents:
                jsonschema.validate(json.loads(content), schema)
            assert json.loads(contents[0])["photo"]["caption"]["text"] == caption
    streamed = client.post("/v1/chat/completions", json={**chat_completion(image), "stream": True,
                                                         "response_format": {"type": "json_object"}})
    events = [json.loads(line[len("data: "):]) for line in streamed.data.decode().splitlines()
              if line.startswith("data: {")]
    text = "".join(event["choices"][0]["delta"].get("content") or "" for event in events if event["choices"])
    assert json.loads(text)["caption"] == caption and events[-1]["choices"][0]["finish_reason"] == "stop"
