"""The documentation: the generated reference pages list every subcommand, flag and setting of the code
they come from, the HTTP reference reads an OpenAPI 3.1 document, and the README stays short.
(``make test`` also builds the whole site strictly; see the Makefile's ``docs`` target.)"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys

import pytest

from support import ROOT

sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import reference_pages  # noqa: E402  (the documentation's own Sphinx extension)

README_MOST_LINES = 200


def every_command(parser: argparse.ArgumentParser, prefix: str = "captioner"):
    """(command line, parser) for every subcommand, found by walking argparse's own tree."""
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from every_command(child, f"{prefix} {name}")


@pytest.fixture(scope="module")
def cli_page() -> str:
    return reference_pages.cli_markdown()


def test_the_cli_page_lists_every_subcommand_and_flag(cli_page):
    from captioner.cli import build_parser

    commands = list(every_command(build_parser()))
    assert len(commands) > 15  # data download ... keys revoke
    for command, parser in commands:
        assert f"`{command}`\n" in cli_page, f"{command} is missing from the CLI reference"
        section = cli_page.split(f"`{command}`\n", 1)[1].split("\n(cli-", 1)[0]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or isinstance(action, argparse._SubParsersAction):
                continue
            for option in action.option_strings:
                assert f"`{option}`" in section, f"{command} {option} is missing from the CLI reference"
            if action.help:
                first_words = " ".join(action.help.split()[:3])
                assert reference_pages.prose(first_words) in section, f"{command} {action.dest}: no help shown"


def test_a_new_flag_appears_by_itself(cli_page):
    from captioner.cli import build_parser

    parser = build_parser()
    caption = dict(every_command(parser))["captioner caption"]
    caption.add_argument("--brand-new-flag", metavar="X", help="a flag added to the code")
    page = reference_pages.cli_markdown(parser)
    assert "`--brand-new-flag`" in page and "a flag added to the code" in page
    assert "--brand-new-flag" not in cli_page


def every_setting():
    """(class, field, variable or None) for every field of every settings class the page shows."""
    for _, _, cls, variables in reference_pages.settings_sources():
        for item in dataclasses.fields(cls):
            yield cls, item.name, (variables or {}).get(item.name)


def test_the_configuration_page_lists_every_setting_with_its_comment():
    from captioner import config, environment
    from captioner.web.settings import ENV_NAMES, WebSettings

    page = reference_pages.configuration_markdown()
    classes = {cls for cls, _, _ in every_setting()}
    assert {WebSettings, environment.Environment, config.LstmSettings, config.ImageToTextSettings} <= classes
    comments = {cls: reference_pages.field_comments(cls) for cls in classes}
    for cls, name, variable in every_setting():
        section = page.split(f"(settings-{cls.__name__.lower()})=", 1)[1].split("\n(settings-", 1)[0]
        assert f"`{name}`" in section, f"{cls.__name__}.{name} is missing from the configuration reference"
        assert comments[cls][name] and reference_pages.escape(comments[cls][name]) in section
        if variable:
            assert f"`{variable}`" in section
    for variable in [*ENV_NAMES.values(), *environment.VARIABLES.values()]:
        assert f"`{variable}`" in page


def test_field_comments_at_the_end_above_and_shared():
    comments = reference_pages.field_comments(Commented)
    assert comments == {"plain": "at the end of the line", "above": "above the field, on two lines",
                        "first": "one comment for a group", "second": "one comment for a group"}


def test_a_setting_without_a_comment_stops_the_page():
    with pytest.raises(reference_pages.GenerationError, match="Uncommented.missing has no comment"):
        reference_pages.settings_table(Uncommented)


@dataclasses.dataclass
class Commented:
    plain: int = 1  # at the end of the line
    # above the field,
    # on two lines
    above: str = ""
    # one comment for a group
    first: str = ""
    second: str = ""


@dataclasses.dataclass
class Uncommented:
    described: int = 1  # fine
    missing: int = 2


OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "captioner", "version": "0.1.0", "description": "Caption images."},
    "paths": {
        "/api/v1/captions": {"post": {
            "tags": ["Captions"], "summary": "Caption one image",
            "parameters": [{"name": "beam", "in": "query", "required": False, "schema": {"type": "integer"},
                            "description": "beam width | K"}],
            "requestBody": {"required": True, "content": {"multipart/form-data": {
                "schema": {"type": "object", "properties": {"image": {"type": "string", "format": "binary"}}}}}},
            "responses": {"200": {"description": "the caption", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Caption"}}}},
                "400": {"description": "no image", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"}}}}},
        }},
        "/healthz": {"get": {"summary": "Alive", "responses": {"200": {"description": "alive"}}}},
    },
    "components": {"schemas": {
        "Caption": {"type": "object", "required": ["caption"], "properties": {
            "caption": {"type": "string", "description": "the <best> caption"},
            "score": {"type": ["number", "null"]}}},
        "Error": {"type": "object", "properties": {"error": {"type": "object"}}},
    }},
}


def test_the_http_page_from_an_openapi_document():
    page = reference_pages.openapi_markdown(OPENAPI)
    assert "## Captions" in page and "## Other" in page  # grouped by tag
    assert "### `POST /api/v1/captions`" in page and "### `GET /healthz`" in page
    assert "beam width \\| K" in page and "`multipart/form-data`" in page
    assert "[Caption](#schema-caption)" in page and "(schema-caption)=" in page
    assert "the \\<best\\> caption" in page and "number or null" in page


@pytest.mark.parametrize("document, message", [
    ({"swagger": "2.0", "paths": {"/": {}}}, "not an OpenAPI 3 document"),
    ({"openapi": "3.1.0", "paths": {}}, "lists no paths"),
])
def test_a_document_that_is_not_openapi_3_stops_the_page(document, message):
    with pytest.raises(reference_pages.GenerationError, match=message):
        reference_pages.openapi_markdown(document)


def test_reference_pages_ask_for_their_generated_parts():
    for page, name in [("cli", "cli"), ("configuration", "configuration"), ("http-api", "http-api")]:
        text = (ROOT / "docs" / "reference" / f"{page}.md").read_text()
        assert f"% generated: {name}\n" in text
    expanded = reference_pages.expand((ROOT / "docs" / "reference" / "configuration.md").read_text())
    assert "% generated:" not in expanded and "`CAPTIONER_MODELS_DIR`" in expanded
    with pytest.raises(reference_pages.GenerationError, match="no generator named 'nothing'"):
        reference_pages.expand("% generated: nothing\n")


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MOST_LINES, f"README.md has {len(lines)} lines; the details belong in docs/"


def test_the_http_page_from_the_document_the_app_serves():
    """The real app's document (test client, no server): every route it describes gets a section."""
    document = reference_pages.served_openapi()
    page = reference_pages.openapi_markdown(document)
    for path, item in document["paths"].items():
        for method in item:
            if method in reference_pages.METHODS:
                assert f"### `{method.upper()} {path}`" in page
    assert "### `POST /api/v1/captions`" in page and "### `POST /v1/chat/completions`" in page


def test_flags_in_help_text_survive_the_sites_typography(cli_page):
    """Sphinx's smart quotes turn ``--`` in prose into an en dash: a reader copying "–metadata" from the
    rendered page would type a wrong flag. Rendered as the site renders it, every flag keeps its hyphens."""
    from docutils.core import publish_string
    from myst_parser.parsers.docutils_ import Parser

    html = publish_string(cli_page, parser=Parser(), writer="html5",
                          settings_overrides={"smart_quotes": True, "report_level": 5}).decode()
    assert "<code" in html and "--metadata" in html
    assert not re.findall(r"[\u2013\u2014][A-Za-z]", html), "a flag lost its hyphens on the CLI reference"
