"""The OpenAPI 3.1 document of the whole HTTP API (``GET /api/v1/openapi.json``) and its reference page
(``GET /api/docs``, Swagger UI from the package's own static files).

One source of truth: the schemas are the pydantic classes the code itself uses (the compatible protocols
validate their requests and build their answers with them; see :mod:`captioner.web.native_schemas` for the
native API), and each operation's URL comes from the app's own routing table. :data:`OPERATIONS` adds what a
route cannot say about itself: its summary, its tag, which classes it takes and answers, and its error
statuses. A route under ``/api``, ``/v1`` or the health checks without an entry here is a test failure.

The document is assembled with apispec: it builds OpenAPI 3.1 from plain schema dictionaries, which is what
pydantic produces, and stays out of the request path. (Libraries that wrap the views to validate them,
spectree or flask-openapi3, would read streamed answers into memory and replace the API's own error JSON.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Blueprint, current_app, jsonify, render_template
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from captioner import __version__
from captioner.web import dataset_schemas as dataset
from captioner.web import native_schemas as native
from captioner.web.ollama import schemas as ollama
from captioner.web.openai import responses_schemas as responses
from captioner.web.openai import schemas as openai

bp = Blueprint("openapi", __name__)
EXTENSION = "captioner.openapi"
REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    """What the document says about one route besides its URL."""

    tag: str
    summary: str
    answer: type[BaseModel] | None  # the JSON answer of the success status
    status: int = 200  # the success status
    json: type[BaseModel] | None = None  # a JSON body
    form: type[BaseModel] | None = None  # a multipart/form-data body
    query: type[BaseModel] | None = None  # query-string parameters
    errors: tuple[int, ...] = (400, 401, 404, 413, 429, 503, 504)
    streams: tuple[str, ...] = ()  # other media types of the success answer (a streamed one)
    other_media: tuple[str, ...] = ()  # non-JSON success answers (CSV export)


OPENAI_ERRORS = (400, 401, 404, 413, 429, 503, 504)
OLLAMA_ERRORS = (400, 401, 404, 413, 429, 503, 504)
ENTRY_ERRORS = (401, 403, 404, 405, 429, 503)  # 404 or 405 for an id that is no number the routes take
DATASET_ERRORS = (401, 403, 404, 413, 429, 503)  # 404 also while CAPTIONER_DATASETS_DIR is unset
OPERATIONS: dict[str, Operation] = {
    "api.create_caption": Operation("captions", "Caption one image", native.CaptionAnswer, form=native.CaptionForm),
    "api.list_models": Operation("models", "The loaded models", native.ModelsAnswer, errors=(401, 429)),
    "ops.healthz": Operation("health", "Alive", native.Health, errors=()),
    "ops.readyz": Operation("health", "Ready: the models are loaded", native.Readiness, errors=(503,)),
    "aliases.flickr8k_alias": Operation("aliases", "The original /flickr8k endpoint", native.AliasAnswer,
                                        form=native.ImageForm),
    "aliases.flickr30k_alias": Operation("aliases", "The original /flickr30k endpoint", native.AliasAnswer,
                                         form=native.ImageForm),
    "aliases.vit_gpt2_alias": Operation("aliases", "The original /VitGpt2ImageCaption endpoint", native.AliasAnswer,
                                        form=native.ImageForm),
    "history_api.list_history_api": Operation("history", "Saved captions, newest first", native.HistoryPage,
                                              query=native.HistoryQuery, errors=(400, 401, 403, 429, 503)),
    "history_api.save_history_api": Operation("history", "Save a caption", native.HistoryEntry, 201,
                                              form=native.HistoryForm, errors=(400, 401, 403, 409, 413, 429, 503)),
    "history_api.get_history_api": Operation("history", "One saved caption", native.HistoryEntry,
                                             errors=ENTRY_ERRORS),
    "history_api.update_history_api": Operation("history", "Add translations to a saved caption",
                                                native.HistoryEntry, json=native.TranslationsUpdate,
                                                errors=(400, *ENTRY_ERRORS)),
    "history_api.delete_history_api": Operation("history", "Delete a saved caption", None, 204,
                                                errors=ENTRY_ERRORS),
    "history_api.export_history_api": Operation("history", "Export saved captions as CSV or JSON", None,
                                                query=native.ExportQuery, errors=(400, 401, 403, 429, 503),
                                                other_media=("text/csv", "application/json")),
    "translate.translation_languages_api": Operation("translation", "Languages captions can be translated into",
                                                     native.Languages, errors=(401, 403, 429, 502, 503)),
    "translate.translate_api": Operation("translation", "Translate a caption", native.Translation,
                                         json=native.TranslateRequest, errors=(400, 401, 403, 429, 502, 503)),
    "jobs_api.create_job": Operation("jobs", "Caption many images in the background", native.Job, 202,
                                     form=native.JobForm),
    "jobs_api.get_job": Operation("jobs", "A job's progress and captions", native.Job, query=native.JobQuery,
                                  errors=(400, 401, 404, 429), other_media=("text/csv",)),
    "jobs_api.edit_caption": Operation("jobs", "Correct one caption of a job", native.JobItem,
                                       json=native.CaptionEdit, errors=(400, 401, 404, 429)),
    "jobs_api.save_to_history": Operation("jobs", "Save a job's captions to the history", native.SavedToHistory,
                                          201, errors=(400, 401, 403, 404, 409, 429, 503)),
    "datasets_api.list_folders": Operation("datasets", "Training-set folders under CAPTIONER_DATASETS_DIR",
                                           dataset.FolderList, errors=DATASET_ERRORS),
    "datasets_api.list_items": Operation("datasets", "One folder's images and caption files", dataset.ItemsPage,
                                         query=dataset.ItemsQuery, errors=(400, *DATASET_ERRORS)),
    "datasets_api.thumbnail": Operation("datasets", "A small JPEG of one image", None, query=dataset.ThumbnailQuery,
                                        errors=(400, *DATASET_ERRORS), other_media=("image/jpeg",)),
    "datasets_api.save_caption_file": Operation("datasets", "Save one image's caption file", dataset.Item,
                                                json=dataset.CaptionFileSave, errors=(400, 409, *DATASET_ERRORS)),
    "datasets_api.find_and_replace": Operation("datasets", "Find and replace across the caption files",
                                               dataset.Replaced, json=dataset.ReplaceRequest,
                                               errors=(400, *DATASET_ERRORS)),
    "datasets_api.edit_tags": Operation("datasets", "Add or remove a tag across a selection", dataset.Edited,
                                        json=dataset.TagsRequest, errors=(400, *DATASET_ERRORS)),
    "datasets_api.set_trigger": Operation("datasets", "Set the trigger word", dataset.Edited,
                                          json=dataset.TriggerRequest, errors=(400, *DATASET_ERRORS)),
    "datasets_api.caption_images": Operation("datasets", "Caption images into their caption files",
                                             dataset.CaptionedImages, json=dataset.CaptionImagesRequest,
                                             errors=(400, *DATASET_ERRORS, 504)),
    "openai.chat_completions": Operation("openai", "OpenAI Chat Completions: caption the conversation's last image",
                                         openai.ChatCompletion, json=openai.ChatCompletionRequest,
                                         errors=OPENAI_ERRORS, streams=("text/event-stream",)),
    "openai_responses.create_response": Operation("openai", "OpenAI Responses: caption the input's last image",
                                                  responses.ResponseObject, json=responses.ResponseRequest,
                                                  errors=OPENAI_ERRORS, streams=("text/event-stream",)),
    "openai.list_models": Operation("openai", "OpenAI: the loaded models", openai.ModelList, errors=(401, 429)),
    "openai.get_model": Operation("openai", "OpenAI: one model", openai.ModelCard, errors=(401, 404, 429)),
    "ollama.generate": Operation("ollama", "Ollama generate: caption the last of 'images'", ollama.GenerateAnswer,
                                 json=ollama.GenerateRequest, errors=OLLAMA_ERRORS,
                                 streams=("application/x-ndjson",)),
    "ollama.chat": Operation("ollama", "Ollama chat: caption the last image the user sent", ollama.ChatAnswer,
                             json=ollama.ChatRequest, errors=OLLAMA_ERRORS, streams=("application/x-ndjson",)),
    "ollama.tags": Operation("ollama", "Ollama: the loaded models", ollama.TagList, errors=(401, 429)),
    "ollama.show": Operation("ollama", "Ollama: one model's details", ollama.ShowAnswer, json=ollama.ShowRequest,
                             errors=(400, 401, 404, 429, 503)),
    "ollama.version": Operation("ollama", "Ollama: the server's version", ollama.Version, errors=(401, 429)),
}
DOCUMENTED_PREFIXES = ("/api/", "/v1/", "/healthz", "/readyz", "/flickr8k", "/flickr30k", "/VitGpt2ImageCaption")


def error_model(path: str) -> type[BaseModel]:
    from captioner.web.errors import OLLAMA_PATHS, OPENAI_PREFIX

    if path.startswith(OPENAI_PREFIX):
        return openai.OpenAIError
    if path in OLLAMA_PATHS:
        return ollama.OllamaError
    return native.ApiErrorAnswer


def openapi_path(rule: str) -> str:
    """Flask's ``/v1/models/<path:model_id>`` as OpenAPI's ``/v1/models/{model_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>:]+)>", r"{\1}", rule)


def build_document(app) -> dict:
    """The OpenAPI 3.1 document of ``app``'s routes."""
    from apispec import APISpec

    routes = [(rule, OPERATIONS[rule.endpoint]) for rule in app.url_map.iter_rules() if rule.endpoint in OPERATIONS]
    models = {op.json for _, op in routes} | {op.form for _, op in routes} | {op.query for _, op in routes}
    answers = {op.answer for _, op in routes} | {error_model(rule.rule) for rule, _ in routes}
    wanted = [(m, "validation") for m in models if m] + [(m, "serialization") for m in answers if m]
    wanted.sort(key=lambda pair: (pair[0].__module__, pair[0].__name__, pair[1]))
    refs, definitions = models_json_schema(wanted, ref_template=REF)
    spec = APISpec(title="captioner", version=__version__, openapi_version="3.1.0", info={
        "description": "Caption images: the native API under /api/v1, and OpenAI- and Ollama-compatible routes. "
                       "With CAPTIONER_REQUIRE_KEYS on, send 'Authorization: Bearer KEY'."})
    for name, schema in definitions.get("$defs", {}).items():
        spec.components.schema(name, schema)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for rule, op in sorted(routes, key=lambda pair: pair[0].rule):
        path = openapi_path(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            spec.path(path=path, operations={method.lower(): operation(rule, op, refs)})
    return spec.to_dict()


def operation(rule, op: Operation, refs: dict) -> dict:
    def ref(model, mode):
        return refs[(model, mode)]

    parameters = [{"name": name, "in": "path", "required": True, "schema": path_schema(rule, name)}
                  for name in rule.arguments]
    if op.query is not None:
        for name, field in op.query.model_fields.items():
            schema = op.query.model_json_schema()["properties"][name]
            parameters.append({"name": name, "in": "query", "required": field.is_required(), "schema": schema})
    success: dict = {"description": "success"}
    if op.answer is not None:
        success["content"] = {"application/json": {"schema": ref(op.answer, "serialization")}}
        for media in op.streams:
            success["content"][media] = {"schema": {"type": "string"}}
    elif op.other_media:
        success["content"] = {media: {"schema": {}} for media in op.other_media}
    if op.answer is not None and op.other_media:
        for media in op.other_media:
            success["content"].setdefault(media, {"schema": {"type": "string"}})
    responses = {str(op.status): success}
    for status in op.errors:
        responses[str(status)] = {"description": "error",
                                  "content": {"application/json": {"schema": ref(error_model(rule.rule),
                                                                                 "serialization")}}}
    answer = {"tags": [op.tag], "summary": op.summary, "operationId": rule.endpoint.replace(".", "_"),
              "parameters": parameters, "responses": responses, "security": [{}, {"bearer": []}]}
    if op.json is not None:
        answer["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": ref(op.json, "validation")}}}
    if op.form is not None:
        answer["requestBody"] = {"required": True,
                                 "content": {"multipart/form-data": {"schema": ref(op.form, "validation")}}}
    return answer


def path_schema(rule, name: str) -> dict:
    """The schema of a path parameter, from the route's own converter (``<int(max=N):id>``, ``<path:id>``)."""
    converter = rule._converters.get(name)  # werkzeug keeps each argument's converter here
    if type(converter).__name__ == "IntegerConverter":
        schema = {"type": "integer", "minimum": max(converter.min or 0, 0)}
        if converter.max is not None:
            schema["maximum"] = converter.max
        return schema
    return {"type": "string", "minLength": 1}


def undocumented(app) -> list[str]:
    """API routes of ``app`` that the document leaves out (none, when OPERATIONS is complete)."""
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if rule.rule.startswith(DOCUMENTED_PREFIXES) and rule.endpoint not in OPERATIONS
                  and rule.endpoint.split(".")[0] != "openapi")


@bp.get("/api/v1/openapi.json")
def openapi_document():
    document = current_app.extensions.get(EXTENSION)
    if document is None:
        document = current_app.extensions[EXTENSION] = build_document(current_app)
    return jsonify(document)


@bp.get("/api/docs")
def api_reference_page():
    return render_template("pages/api-docs.html")
