"""Structured answers: a caption and its keywords as the JSON a request asks for, every document checked with
the independent ``jsonschema`` validator against realistic schemas (PhotoPrism's labels schema, a plain caption,
tags as strings and as objects, nested objects, pydantic's ``model_json_schema()``), and every schema that
cannot be filled refused with a 400 naming the field."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import BaseModel

from captioner.web.errors import ApiError
from captioner.web.structured import UNKNOWN_CONFIDENCE, parse_format, render

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
