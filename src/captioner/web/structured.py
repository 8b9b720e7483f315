"""Structured (JSON) answers: a caption and its keywords written as the JSON document a request asks for.

Photo managers ask a vision model for JSON rather than a sentence: PhotoPrism's Ollama engine sends
``"format": "json"`` for labels and reads ``labels[].name``; its OpenAI engine sends a JSON schema. A captioner
does not write JSON, so the answer is built here from what it does write, the caption and its keywords, and
it is checked with ``jsonschema`` before it leaves. The protocols only say where the format is asked for
(Ollama's ``format``, Chat Completions' ``response_format``, the Responses API's ``text.format``).

The public API is two functions and one class:

- ``parse_format(value, param) -> Format | None`` reads a request's format: ``None``, ``"text"`` or
  ``{"type": "text"}`` (plain text: None), ``"json"`` or ``{"type": "json_object"}`` (captioner's own object),
  a JSON schema object (Ollama), ``{"type": "json_schema", "json_schema": {"schema": ...}}`` (Chat Completions)
  or ``{"type": "json_schema", "schema": ...}`` (Responses). Anything else, a schema that is not valid JSON
  Schema, or one nested deeper than ``MAX_SCHEMA_DEPTH`` or larger than ``MAX_SCHEMA_NODES``, is an
  :class:`~captioner.web.errors.ApiError` 400 naming ``param``.
- ``render(fmt, caption, keywords, scores) -> str`` writes the answer. For ``json`` it is
  ``{"caption": ..., "keywords": [...], "labels": [{"name", "confidence", "topicality"}]}``, the shape
  PhotoPrism reads. For a schema, fields are filled by their names' meaning: caption, description, text, alt,
  summary (and the like) get the caption; labels, tags, keywords get the keywords, as strings or as objects
  whose name/label/tag get the keyword and confidence/score/probability/topicality its confidence; nested
  objects are filled the same way. A required field that means nothing captioner knows is a 400 naming it
  (``format.properties.price``); so is a document that still fails the schema (too few keywords for
  ``minItems``, ...). Never a 500.

Keywords are the model's own (a tagger's tags, the ``keywords`` style); a model that writes sentences gets
the nouns of its caption (:func:`captioner.collections.keywords.caption_nouns`). Confidences are a tagger's
probabilities where it gives them, else ``UNKNOWN_CONFIDENCE``, the value PhotoPrism itself assumes when a
label comes without one; topicality is the confidence (PhotoPrism's own fallback as well).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from captioner.collections.keywords import caption_nouns
from captioner.web.errors import ApiError

UNKNOWN_CONFIDENCE = 0.5  # a keyword's confidence where the model gives none (PhotoPrism's default as well)
MAX_SCHEMA_DEPTH = 24  # nesting of objects and lists in a schema
MAX_SCHEMA_NODES = 2000  # objects, lists and values in a schema, all together
MAX_REF_HOPS = 16  # $ref followed in a row (a schema that refers to itself ends here)

CAPTION_NAMES = frozenset({"caption", "captions", "description", "desc", "text", "alt", "alttext", "summary",
                           "sentence", "title"})
KEYWORD_NAMES = frozenset({"labels", "label", "tags", "tag", "keywords", "keyword", "subjects", "objects"})
NAME_NAMES = frozenset({"name", "label", "tag", "keyword", "text", "value", "word", "title"})
CONFIDENCE_NAMES = frozenset({"confidence", "score", "probability", "certainty", "topicality", "relevance"})
WRAPPER_TYPES = {"text", "json_object", "json_schema"}


@dataclass(frozen=True)
class Format:
    """A structured answer asked for: captioner's own JSON object, or a document valid against ``schema``."""

    kind: Literal["json", "schema"]
    param: str  # where the request asked for it, for messages: "format", "response_format.json_schema.schema"
    schema: dict | None = None


def parse_format(value: Any, param: str) -> Format | None:
    """The structured answer ``value`` asks for, or None for plain text; 400 naming ``param`` else."""
    if value is None or value == "" or value == "text":
        return None
    if value == "json":
        return Format("json", param)
    if not isinstance(value, dict):
        raise ApiError("bad_parameter", f"{param}: must be \"json\", a JSON schema object or "
                                        "{\"type\": \"text\" | \"json_object\" | \"json_schema\", ...}", 400, param)
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return Format("json", param)
    if kind == "json_schema":
        if isinstance(value.get("json_schema"), dict):  # Chat Completions
            return schema_format(value["json_schema"].get("schema"), f"{param}.json_schema.schema")
        return schema_format(value.get("schema"), f"{param}.schema")  # Responses
    return schema_format(value, param)  # Ollama: the schema itself


def schema_format(schema: Any, param: str) -> Format:
    if not isinstance(schema, dict):
        raise ApiError("bad_parameter", f"{param}: a JSON schema object is required", 400, param)
    check_size(schema, param)
    from jsonschema.exceptions import SchemaError

    validator = validator_class(schema, param)
    try:
        validator.check_schema(schema)
    except SchemaError as error:
        raise ApiError("bad_parameter", f"{param}: not a valid JSON schema: {error.message}", 400, param) from None
    except Exception as error:  # a metaschema that cannot be read, ...
        raise ApiError("bad_parameter", f"{param}: the schema cannot be checked: {error}", 400, param) from None
    fill(schema, param, SAMPLE)  # a field nothing could fill is refused before a model spends time on the image
    return Format("schema", param, schema)


def validator_class(schema: dict, param: str):
    """The ``jsonschema`` validator of the draft ``$schema`` names (2020-12 where it names none)."""
    from jsonschema import validators

    if not isinstance(schema.get("$schema", ""), str):
        raise ApiError("bad_parameter", f"{param}.$schema: must be a string naming a JSON Schema draft", 400,
                       f"{param}.$schema")
    return validators.validator_for(schema, default=validators.Draft202012Validator)


def check_size(schema: dict, param: str) -> None:
    """400 for a schema nested deeper than MAX_SCHEMA_DEPTH or holding more than MAX_SCHEMA_NODES parts."""
    nodes, pending = 0, [(schema, 1)]
    while pending:
        node, depth = pending.pop()
        nodes += 1
        if depth > MAX_SCHEMA_DEPTH or nodes > MAX_SCHEMA_NODES:
            raise ApiError("bad_parameter", f"{param}: the schema is too large (at most {MAX_SCHEMA_DEPTH} levels "
                                            f"deep and {MAX_SCHEMA_NODES} parts)", 400, param)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        pending.extend((child, depth + 1) for child in children)


def render(fmt: Format, caption: str, keywords: list[str], scores: list[float]) -> str:
    """The answer's text: ``fmt``'s JSON document built from the caption and its keywords (see the module)."""
    words = list(keywords) or list(caption_nouns(caption))
    confidences = ([round(float(s), 4) for s in scores] if len(scores) == len(words) and keywords
                   else [UNKNOWN_CONFIDENCE] * len(words))
    facts = Facts(caption, words, confidences)
    if fmt.kind == "json":
        document = {"caption": caption, "keywords": words,
                    "labels": [{"name": w, "confidence": c, "topicality": c} for w, c in zip(words, confidences)]}
    else:
        document = fill(fmt.schema, fmt.param, facts)
        check_document(document, fmt)
    return json.dumps(document, ensure_ascii=False)


@dataclass(frozen=True)
class Facts:
    """What an answer is built from."""

    caption: str
    keywords: list[str]
    confidences: list[float]


SAMPLE = Facts("a caption", ["keyword"], [UNKNOWN_CONFIDENCE])


def fill(schema: dict, param: str, facts: Facts) -> Any:
    """The document ``schema`` asks for, filled from ``facts``; 400 naming the first field nothing fills."""
    try:
        return Filler(schema, facts).fill(schema, param, None, required=True)
    except Unfillable as error:
        raise ApiError("bad_parameter", f"{error.where}: {error}", 400, error.where) from None


class Unfillable(Exception):
    """A required part of the schema that nothing known fills; ``where`` names it."""

    def __init__(self, where: str, why: str):
        super().__init__(why)
        self.where = where


MISSING = object()  # a part left out of the document (None is JSON's null, a value like any other)


def meaning(name: str | None, names: frozenset) -> bool:
    return name is not None and re.sub(r"[^a-z]", "", name.lower()) in names


class Filler:
    """Fills one schema from the facts: ``fill`` returns a value, MISSING for an optional part nothing fits, or
    raises Unfillable for a required one."""

    def __init__(self, root: dict, facts: Facts):
        self.root, self.facts = root, facts

    def fill(self, schema: Any, where: str, name: str | None, required: bool, label: int | None = None,
             hops: int = 0) -> Any:
        """The value for ``schema`` found at ``where`` under the property ``name``; ``label`` is the keyword's
        index inside a list of labels; ``hops`` counts the references followed on the way here."""
        try:
            schema, hops = self.resolve(schema, where, hops)
            value = self.fill_resolved(schema, where, name, label, hops)
        except Unfillable:
            if isinstance(schema, dict) and "default" in schema:
                return schema["default"]
            if not required:
                return MISSING
            raise
        if value is MISSING and required:
            if isinstance(schema, dict) and "default" in schema:
                return schema["default"]
            if isinstance(schema, dict) and "object" in guessed_types(schema, schema.get("type")):
                return {}  # an object whose fields are all optional, and none of them known
            raise Unfillable(where, f"captioner knows nothing to put in {name or 'the answer'!r}")
        return value

    def fill_resolved(self, schema: Any, where: str, name: str | None, label: int | None, hops: int) -> Any:
        if schema is True:
            schema = {}
        if not isinstance(schema, dict):
            raise Unfillable(where, "this part of the schema accepts nothing")
        if "const" in schema:
            return schema["const"]
        for combinator in ("anyOf", "oneOf"):
            if isinstance(schema.get(combinator), list):
                return self.first_fitting(schema[combinator], f"{where}.{combinator}", name, label, hops)
        if isinstance(schema.get("allOf"), list):
            return self.fill_resolved(merged(schema), where, name, label, hops)
        types = guessed_types(schema, schema.get("type"))
        for kind in [t for t in types if t != "null"]:
            value = self.value_of(kind, schema, where, name, label, hops)
            if value is not MISSING and ("enum" not in schema or value in schema["enum"]):
                return value
        return None if "null" in types else MISSING

    def value_of(self, kind: str, schema: dict, where: str, name: str | None, label: int | None,
                 hops: int) -> Any:
        facts = self.facts
        if kind == "object":
            return self.object_of(schema, where, label, hops)
        if kind == "array":
            return self.array_of(schema, where, name, label, hops)
        if kind == "string":
            if label is not None:  # inside a list of labels: the keyword, under a name that means it
                return facts.keywords[label] if name is None or meaning(name, NAME_NAMES) else MISSING
            if name is None or meaning(name, CAPTION_NAMES):
                return cut(facts.caption, schema.get("maxLength"))
            if meaning(name, KEYWORD_NAMES):
                return ", ".join(facts.keywords)
            return MISSING
        if kind in ("number", "integer") and meaning(name, CONFIDENCE_NAMES):
            confidence = facts.confidences[label] if label is not None else UNKNOWN_CONFIDENCE
            if kind == "integer":  # a percentage where the schema allows more than 1
                return round(confidence * 100) if schema.get("maximum", 100) > 1 else round(confidence)
            return confidence
        return MISSING

    def object_of(self, schema: dict, where: str, label: int | None, hops: int) -> Any:
        properties = schema.get("properties") or {}
        needed = [key for key in schema.get("required") or [] if isinstance(key, str)]
        for key in needed:
            if key not in properties:
                raise Unfillable(f"{where}.required", f"captioner knows nothing to put in {key!r}")
        document = {}
        for key, part in properties.items():
            value = self.fill(part, f"{where}.properties.{key}", key, key in needed, label, hops)
            if value is not MISSING:
                document[key] = value
        return document if document or needed or not properties else MISSING

    def array_of(self, schema: dict, where: str, name: str | None, label: int | None, hops: int) -> Any:
        items = schema.get("items", {})
        if not isinstance(items, (dict, bool)) or "prefixItems" in schema:
            raise Unfillable(where, "lists of fixed positions (tuples) are not filled")
        if label is None and meaning(name, CAPTION_NAMES):
            return [self.fill(items, f"{where}.items", name, True, None, hops)]
        if label is not None or (name is not None and not meaning(name, KEYWORD_NAMES)):
            return MISSING
        most = schema.get("maxItems")
        count = len(self.facts.keywords) if not isinstance(most, int) else min(most, len(self.facts.keywords))
        return [self.fill(items, f"{where}.items", None, True, i, hops) for i in range(count)]

    def first_fitting(self, options: list, where: str, name: str | None, label: int | None, hops: int) -> Any:
        """The first option that gives a value (null only where no option gives more)."""
        null = MISSING
        for index, option in enumerate(options):
            value = self.fill(option, f"{where}.{index}", name, False, label, hops)
            if value is None:
                null = None
            elif value is not MISSING:
                return value
        return null

    def resolve(self, schema: Any, where: str, hops: int) -> tuple[Any, int]:
        """``schema`` with its local ``$ref`` followed ("#/$defs/Label", as pydantic writes them)."""
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            hops += 1
            reference = schema["$ref"]
            if hops > MAX_REF_HOPS:
                raise Unfillable(where, "the schema refers to itself too often")
            if not reference.startswith("#"):
                raise Unfillable(where, f"only references inside the schema are followed, not {reference!r}")
            target: Any = self.root
            for part in [p for p in reference[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, dict) or part not in target:
                    raise Unfillable(where, f"the reference {reference!r} leads nowhere")
                target = target[part]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest} if isinstance(target, dict) and rest else target
        return schema, hops


def merged(schema: dict) -> dict:
    """An ``allOf`` schema as one: properties and required lists joined, other keywords the later part's."""
    result = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        if isinstance(part, dict):
            properties = {**result.get("properties", {}), **part.get("properties", {})}
            needed = [*result.get("required", []), *part.get("required", [])]
            result = {**result, **part, "properties": properties, "required": needed}
    return result


def guessed_types(schema: dict, declared: Any = None) -> list[str]:
    """The types a schema declares, or those a schema without ``type`` stands for, as far as filling goes."""
    if declared:
        return [declared] if isinstance(declared, str) else [t for t in declared if isinstance(t, str)]
    if "properties" in schema or "required" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    return ["string", "number"]


def cut(text: str, limit: Any) -> str:
    """``text``, cut on a word boundary to ``limit`` characters where the schema sets a maxLength."""
    if not isinstance(limit, int) or len(text) <= limit:
        return text
    head = text[:limit + 1]
    return (head.rsplit(" ", 1)[0] if " " in head else text[:limit])[:limit].rstrip(" ,;:")


def check_document(document: Any, fmt: Format) -> None:
    """400 naming the schema's part that the built document still fails (checked with ``jsonschema``)."""
    from jsonschema import exceptions

    try:
        error = exceptions.best_match(validator_class(fmt.schema, fmt.param)(fmt.schema).iter_errors(document))
    except Exception as failure:  # an unresolvable reference, a pattern Python cannot compile, ...
        raise ApiError("bad_parameter", f"{fmt.param}: the schema cannot be checked: {failure}", 400,
                       fmt.param) from None
    if error is not None:
        path = [str(p) for p in error.absolute_schema_path][:-1]
        param = ".".join([fmt.param, *path])
        raise ApiError("bad_parameter", f"{param}: captioner's answer cannot satisfy the schema here: "
                                        f"{error.message}", 400, param)
