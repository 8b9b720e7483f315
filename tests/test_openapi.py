"""The OpenAPI 3.1 document of the whole API, and Schemathesis against the app from the document it serves: every
operation with valid and malformed inputs, checking that nothing answers 5xx, that every answer matches the
document, and that every status code is documented. Examples are bounded so the module stays short."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

import schemathesis
from captioner.web.openapi import OPERATIONS, undocumented
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)
from support.fake_azure_translator import KEY, REGION, FakeAzureTranslator

EXAMPLES_PER_OPERATION = 8


@pytest.fixture(scope="module")
def translator():
    with FakeAzureTranslator() as fake:
        yield fake


@pytest.fixture(scope="module")
def app(make_app, demo_models_dir, translator, tmp_path_factory):
    folder = tmp_path_factory.mktemp("openapi")
    (folder / "sets" / "empty").mkdir(parents=True)  # the training-set routes answer for real, on an empty set
    app = make_app(demo_models_dir, database_url=f"sqlite:///{folder / 'history.db'}", rate_limit="off",
                   datasets_dir=str(folder / "sets"),
                   translator_key=KEY, translator_endpoint=translator.endpoint, translator_location=REGION,
                   WTF_CSRF_ENABLED=False)
    yield app
    app.extensions["captioner"].close()


def test_the_document_covers_every_api_route(client, app):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert undocumented(app) == []
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert operations == {endpoint.replace(".", "_") for endpoint in OPERATIONS}
    for path in ("/api/v1/captions", "/api/v1/jobs", "/api/v1/history", "/api/v1/translate", "/api/v1/models",
                 "/healthz", "/readyz", "/v1/chat/completions", "/v1/responses", "/v1/models/{model_id}",
                 "/api/generate", "/api/chat", "/api/tags", "/api/show", "/api/version"):
        assert path in document["paths"], path
    upload = document["paths"]["/api/v1/captions"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["schema"] == {"$ref": "#/components/schemas/CaptionForm"}
    image = document["components"]["schemas"]["CaptionForm"]["properties"]["image"]
    assert image["type"] == "string" and image["format"] == "binary"
    schemas = document["components"]["schemas"]
    for form in ("CaptionForm", "ChatCompletionRequest", "Options"):  # tags, templates and languages on each route
        assert {"tags_from", "template", "trigger", "language"} <= set(schemas[form]["properties"]), form


def test_the_reference_page_uses_local_assets_within_the_policy(client):
    page = client.get("/api/docs")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html and "<script>" not in html
    assert "https://" not in html.split("<main", 1)[1].split("</main>")[0]
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert 'href="/api/docs"' in client.get("/").get_data(as_text=True)  # the footer links it


OPERATION_IDS = sorted(endpoint.replace(".", "_") for endpoint in OPERATIONS)


@pytest.fixture(scope="module")
def served_schema(app):
    """The document as the app serves it, loaded by Schemathesis through the app's WSGI interface."""
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("operation_id", OPERATION_IDS)
def test_every_operation_keeps_its_contract(served_schema, operation_id, mode):
    [operation] = [result.ok() for result in served_schema.get_all_operations()
                   if result.ok().definition.raw.get("operationId") == operation_id]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def keeps_contract(case):
        case.call_and_validate(checks=[not_a_server_error, status_code_conformance, response_schema_conformance,
                                       content_type_conformance])

    try:
        keeps_contract()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        pytest.skip(f"{operation_id} takes no input that could be malformed")
