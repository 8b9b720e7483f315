"""The reference pages, generated from the code at every build, so that they cannot drift from it.

- the command line from ``captioner.cli.build_parser()``: every subcommand, every flag with its help;
- the HTTP API from the OpenAPI document the app serves at ``/api/v1/openapi.json`` (fetched through
  Flask's test client from an app with no models; no server runs);
- the configuration from the settings dataclasses, whose field comments are the descriptions, and from
  the environment module's map of variables.

Each generator returns MyST Markdown. A page asks for one with a line of its own, ``% generated: NAME``
(a Markdown comment, so the page still reads sensibly as a file); :func:`setup` replaces that line
when Sphinx reads the page. A generator that cannot produce its page is a build warning, which the strict
build (``make docs-strict``, part of ``make test``) turns into a failure.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import json
import logging
import re
import tempfile
import textwrap
import tokenize
from pathlib import Path

MARKER = re.compile(r"^% generated: ([a-z-]+)[ \t]*$", re.MULTILINE)
OPENAPI_URL = "/api/v1/openapi.json"


class GenerationError(Exception):
    """A reference page could not be generated (the build reports it as a warning)."""


# -- Markdown helpers --------------------------------------------------------------------------------------


MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>|{}#!~])")
FLAG = re.compile(r"(?<![\w`-])(--?[A-Za-z][\w-]*)")


def escape(text: str) -> str:
    """Plain text safe inside Markdown and table cells: every punctuation mark that means something to
    CommonMark or MyST gets a backslash, and line breaks become spaces."""
    return MARKDOWN_PUNCTUATION.sub(r"\\\1", " ".join(str(text).split()))


def prose(text: str) -> str:
    """Help text for the page: escaped, with every ``--flag`` it names set as code, so that the site's
    typography (which turns ``--`` into an en dash in prose) leaves it as a reader must type it."""
    parts = FLAG.split(" ".join(str(text).split()))
    return "".join(code(part) if index % 2 else MARKDOWN_PUNCTUATION.sub(r"\\\1", part)
                   for index, part in enumerate(parts))


def code(text: str) -> str:
    """Inline code that may itself contain backticks or bars (table cells)."""
    text = str(text).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def anchor(*parts: str) -> str:
    return "-".join(re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in parts if part)


# -- the command line --------------------------------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser, prefix: str = "captioner"):
    """``(command line, parser, help)`` for ``parser`` and, depth first, every subcommand below it."""
    yield prefix, parser, parser.description or ""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            seen = set()
            for name, child in action.choices.items():
                if id(child) in seen:  # an alias of a subcommand already listed
                    continue
                seen.add(id(child))
                for found in subcommands(child, f"{prefix} {name}"):
                    if found[1] is child and not found[2]:
                        found = (found[0], child, helps.get(name, ""))
                    yield found


def option_rows(parser: argparse.ArgumentParser) -> list[list[str]]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            name = ", ".join(code(option) for option in action.option_strings)
        else:
            name = code(action.metavar or action.dest)
        if action.nargs == 0:
            value = ""
        elif action.choices is not None:
            value = " \\| ".join(code(choice) for choice in action.choices)
        else:
            metavar = action.metavar or (action.dest.upper() if action.option_strings else "")
            value = code(" ".join(metavar) if isinstance(metavar, tuple) else metavar) if metavar else ""
            if action.nargs in ("*", "+"):
                value += " …"
        default = action.default
        unset = default is None or default is False or default is argparse.SUPPRESS or action.nargs == 0
        shown_default = "" if unset else code(default)
        help_text = (action.help or "") % {"default": default, "prog": parser.prog} if action.help else ""
        rows.append([name, value, prose(help_text), shown_default])
    return rows


def cli_markdown(parser: argparse.ArgumentParser | None = None) -> str:
    """Every subcommand of ``captioner``, with its usage, description and every argument's help."""
    if parser is None:
        from captioner.cli import build_parser

        parser = build_parser()
    sections = []
    for command, sub, help_text in subcommands(parser):
        has_children = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
        usage = " ".join(sub.format_usage().replace("usage: ", "", 1).split())
        level = "#" * min(2 + command.count(" ") - 1, 4) if command != "captioner" else "##"
        lines = [f"({anchor('cli', command)})=", f"{level} `{command}`", ""]
        description = sub.description or help_text
        if description:
            lines += [prose(description), ""]
        if sub.epilog:
            lines += [prose(sub.epilog), ""]
        lines += ["```text", textwrap.fill(usage, 100, subsequent_indent="    ", break_on_hyphens=False), "```", ""]
        rows = option_rows(sub)
        if rows:
            lines += [table(["argument", "value", "what it does", "default"], rows), ""]
        if has_children:
            children = [c for c, p, _ in subcommands(sub, command) if p is not sub and c.count(" ") == command.count(" ") + 1]
            lines += ["Subcommands: " + ", ".join(f"[`{c}`](#{anchor('cli', c)})" for c in children) + ".", ""]
        sections.append("\n".join(lines))
    return "\n".join(sections)


# -- configuration -----------------------------------------------------------------------------------------


def field_comments(cls) -> dict[str, str]:
    """Each dataclass field's comment: the one at the end of its line, else the comment lines just above it
    (fields that follow one another without their own comment share the comment above the first)."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            code_lines.add(token.start[0])
    body = ast.parse(source).body[0].body
    field_lines = {node.lineno: node.target.id for node in body
                   if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    found = {}
    for line, name in field_lines.items():
        if line in comments:  # at the end of the field's line
            found[name] = comments[line]
            continue
        above = line - 1
        while above in field_lines and above not in comments:  # a group of fields under one comment
            above -= 1
        block = []
        while above in comments and above not in code_lines:
            block.insert(0, comments[above])
            above -= 1
        found[name] = " ".join(block)
    return found


def default_value(item: dataclasses.Field):
    """A field's default (its factory's product), or MISSING."""
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return item.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def shown_default(item: dataclasses.Field) -> str:
    value = default_value(item)
    if value is dataclasses.MISSING:
        return "(required)"
    if isinstance(value, str):
        return code(json.dumps(value)) if value else "empty"
    return code(value)


def settings_table(cls, variables: dict[str, str] | None = None) -> str:
    """One row per field of the dataclass ``cls``; with ``variables``, the variable that sets each field."""
    comments = field_comments(cls)
    rows = []
    for item in dataclasses.fields(cls):
        description = comments.get(item.name, "")
        if not description:
            raise GenerationError(f"{cls.__module__}.{cls.__qualname__}.{item.name} has no comment to describe it")
        row = [code(item.name), shown_default(item), escape(description)]
        if variables is not None:
            row.insert(0, code(variables[item.name]) if item.name in variables else "(none of its own)")
        rows.append(row)
    header = ["field", "default", "what it is"]
    return table((["variable"] if variables is not None else []) + header, rows)


def settings_sources():
    """The settings classes the configuration page shows: (title, intro, class, variable of each field)."""
    from captioner import config, environment
    from captioner.translation import TranslationSettings, VARIABLES as TRANSLATION_VARIABLES
    from captioner.web.settings import ENV_NAMES, WebSettings

    yield ("The web app", "Read by `captioner serve`, `flask run`, Docker and Procfile hosts from the environment "
           "or a `.env` file (class `captioner.web.settings.WebSettings`).", WebSettings, ENV_NAMES)
    yield ("Translation", "Which translation backend the caption page and collections use "
           "(class `captioner.translation.TranslationSettings`).", TranslationSettings, TRANSLATION_VARIABLES)
    yield ("Every command", "How the package runs, for the command line and the web app alike "
           "(class `captioner.environment.Environment`).", environment.Environment, environment.VARIABLES)
    for cls in (config.DataSettings, config.LstmSettings, config.AttentionSettings, config.TrainingSettings,
                config.ImageToTextSettings):
        doc = " ".join(re.sub(r"``(.+?)``", r"`\1`", inspect.getdoc(cls) or "").split())  # reST literals
        yield (f"`{cls.__name__}`", doc + " Stored in every bundle's "
               "`captioner.json`; set through the command's flags.", cls, None)


def configuration_markdown() -> str:
    parts = []
    for title, intro, cls, variables in settings_sources():
        parts += [f"({anchor('settings', cls.__name__)})=", f"## {title}", "", intro, "",
                  settings_table(cls, variables), ""]
    return "\n".join(parts)


# -- the HTTP API ------------------------------------------------------------------------------------------

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Sections of the HTTP page, where the document does not order its tags itself: the native API first.
TAG_ORDER = ("captions", "models", "jobs", "history", "translation", "openai", "ollama", "aliases", "health")
TAG_TITLES = {"openai": "OpenAI-compatible routes", "ollama": "Ollama-compatible routes",
              "aliases": "The original project's endpoints"}


def check_openapi(document) -> None:
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3."):
        raise GenerationError("the HTTP API document is not an OpenAPI 3 document (no 'openapi: 3.x' field)")
    if not isinstance(document.get("paths"), dict) or not document["paths"]:
        raise GenerationError("the HTTP API document lists no paths")


def schema_text(schema: dict | None) -> str:
    """A short type for a schema: a link to a named schema, or its type."""
    if not schema:
        return ""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{escape(name)}](#{anchor('schema', name)})"
    for combiner in ("oneOf", "anyOf", "allOf"):
        if combiner in schema:
            return " or ".join(schema_text(part) for part in schema[combiner])
    kind = schema.get("type", "")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        return f"array of {schema_text(schema.get('items'))}".strip()
    if "enum" in schema:
        return " \\| ".join(code(json.dumps(value)) for value in schema["enum"])
    if schema.get("format"):
        kind = f"{kind} ({schema['format']})"
    return escape(kind)


def operation_markdown(path: str, method: str, operation: dict) -> str:
    title = f"{method.upper()} {path}"
    lines = [f"({anchor('http', method, path)})=", f"### `{title}`", ""]
    if operation.get("summary"):
        lines += [f"**{escape(operation['summary'])}**", ""]
    if operation.get("description"):
        lines += [escape(operation["description"]), ""]
    parameters = operation.get("parameters") or []
    if parameters:
        rows = [[code(p.get("name", "")), escape(p.get("in", "")), "yes" if p.get("required") else "no",
                 schema_text(p.get("schema")), escape(p.get("description", ""))] for p in parameters]
        lines += ["Parameters:", "", table(["name", "in", "required", "type", "what it is"], rows), ""]
    body = operation.get("requestBody")
    if body:
        rows = []
        for media, content in (body.get("content") or {}).items():
            rows.append([code(media), schema_text(content.get("schema")), escape(body.get("description", ""))])
        lines += ["Request body" + (" (required)" if body.get("required") else "") + ":", "",
                  table(["content type", "schema", "what it is"], rows), ""]
    responses = operation.get("responses") or {}
    if responses:
        rows = []
        for status, response in responses.items():
            content = response.get("content") or {}
            media = ", ".join(code(m) for m in content)
            schemas = ", ".join(filter(None, (schema_text(c.get("schema")) for c in content.values())))
            rows.append([code(status), escape(response.get("description", "")), media, schemas])
        lines += ["Responses:", "", table(["status", "what it means", "content type", "schema"], rows), ""]
    return "\n".join(lines)


def schema_markdown(name: str, schema: dict) -> str:
    lines = [f"({anchor('schema', name)})=", f"### {escape(name)}", ""]
    if schema.get("description"):
        lines += [escape(schema["description"]), ""]
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    if properties:
        rows = [[code(prop), schema_text(value), "yes" if prop in required else "no", escape(value.get("description", ""))]
                for prop, value in properties.items()]
        lines += [table(["field", "type", "required", "what it is"], rows), ""]
    else:
        lines += [f"Type: {schema_text(schema) or 'any'}.", ""]
    return "\n".join(lines)


def openapi_markdown(document: dict) -> str:
    """The operations (grouped by their first tag, in the document's order) and the named schemas."""
    check_openapi(document)
    info = document.get("info") or {}
    lines = [f"Generated from the OpenAPI {escape(document['openapi'])} document of "
             f"{escape(info.get('title', 'the API'))} {escape(info.get('version', ''))}, served at "
             f"`{OPENAPI_URL}`.", ""]
    if info.get("description"):
        lines += [escape(info["description"]), ""]
    groups: dict[str, list[str]] = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                tag = (operation.get("tags") or ["Other"])[0]
                groups.setdefault(tag, []).append(operation_markdown(path, method, operation))
    declared = {tag["name"]: tag for tag in document.get("tags") or []}
    order = list(declared) + [tag for tag in TAG_ORDER if tag not in declared]
    for tag in sorted(groups, key=lambda t: order.index(t) if t in order else len(order)):
        lines += [f"## {escape(TAG_TITLES.get(tag, tag[:1].upper() + tag[1:]))}", ""]
        if declared.get(tag, {}).get("description"):
            lines += [escape(declared[tag]["description"]), ""]
        lines += groups[tag]
    schemas = (document.get("components") or {}).get("schemas") or {}
    if schemas:
        lines += ["## Schemas", ""] + [schema_markdown(name, schema) for name, schema in schemas.items()]
    return "\n".join(lines)


def served_openapi() -> dict:
    """The OpenAPI document as the app serves it, from an app with no models (test client, no server)."""
    logging.disable(logging.INFO)  # the app's start-up lines (migrations, "models ready") are no news here
    try:
        return _fetch_openapi()
    finally:
        logging.disable(logging.NOTSET)


def _fetch_openapi() -> dict:
    from captioner.web import create_app

    with tempfile.TemporaryDirectory(prefix="captioner-docs-") as scratch:
        app = create_app({"models_dir": str(Path(scratch) / "models"), "try_pretrained": False,
                          "build_demo": False, "secret_key": "docs", "instance_dir": scratch,
                          "database_url": f"sqlite:///{scratch}/captioner.db", "TESTING": True})
        try:
            response = app.test_client().get(OPENAPI_URL)
        finally:
            app.extensions["captioner"].close()
    if response.status_code != 200:
        raise GenerationError(f"the app answers {response.status_code} for {OPENAPI_URL}; the HTTP reference "
                              "is generated from the OpenAPI document the app serves there")
    try:
        return json.loads(response.get_data(as_text=True))
    except ValueError as error:
        raise GenerationError(f"{OPENAPI_URL} is not JSON: {error}") from None


def http_markdown() -> str:
    return openapi_markdown(served_openapi())


GENERATORS = {"cli": cli_markdown, "configuration": configuration_markdown, "http-api": http_markdown}


# -- Sphinx ------------------------------------------------------------------------------------------------


def expand(text: str) -> str:
    """``text`` with each ``% generated: NAME`` line replaced by that generator's Markdown."""
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise GenerationError(f"no generator named {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(replace, text)


def add_field_comments(app, what, name, obj, options, lines) -> None:
    """A dataclass of the package documents its fields with comments (a habit of the code base): autodoc
    shows them as a field list under the class's docstring."""
    if what != "class" or not dataclasses.is_dataclass(obj) or not obj.__module__.startswith("captioner"):
        return
    comments = field_comments(obj)
    lines.append("")
    for item in dataclasses.fields(obj):
        value = default_value(item)
        default = "" if value is dataclasses.MISSING else f" (default ``{value!r}``)"
        lines.append(f":param {item.name}: {comments.get(item.name) or '(no comment)'}{default}")


def setup(app):
    from sphinx.util import logging

    logger = logging.getLogger(__name__)

    def on_source_read(app, docname, source):
        try:
            source[0] = expand(source[0])
        except GenerationError as error:
            logger.warning("cannot generate the reference: %s", error, location=docname,
                           type="captioner", subtype="reference")
            source[0] += f"\n\n```{{error}}\nThis page could not be generated: {error}\n```\n"

    def generated_pages(app, env, added, changed, removed):
        """Pages with a generated part are read again at every build: the code they come from may have changed."""
        return [name for name in env.found_docs
                if MARKER.search(Path(env.doc2path(name)).read_text(encoding="utf-8"))]

    app.connect("source-read", on_source_read)
    app.connect("env-get-outdated", generated_pages)
    app.connect("autodoc-process-docstring", add_field_comments)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
