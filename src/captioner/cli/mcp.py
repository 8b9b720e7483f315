"""`captioner mcp`: the MCP tools over stdio, for desktop assistants and coding agents that start a server."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "mcp", help="serve the captioning tools to an MCP client over stdio",
        description="Serve the MCP tools caption_image, list_models and caption_folder over stdio (an MCP client "
                    "starts this command). Models load as for 'captioner serve' (CAPTIONER_MODELS_DIR, "
                    "CAPTIONER_MODELS, CAPTIONER_PRETRAINED); files are read only under CAPTIONER_MCP_ROOTS. "
                    "The same tools are on 'captioner serve' at /mcp (streamable HTTP, with its API keys).")
    parser.add_argument("--models-dir", metavar="DIR", help="models folder (default: $CAPTIONER_MODELS_DIR or models/)")
    parser.add_argument("--roots", metavar="FOLDERS",
                        help="folders the tools may read, separated like PATH (default: $CAPTIONER_MCP_ROOTS)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    import contextlib
    import sys

    from captioner.translation import TranslationSettings, create_translator
    from captioner.web.mcp.tools import build_server
    from captioner.web.service import CaptionService
    from captioner.web.settings import WebSettings

    overrides = {name: value for name, value in (("models_dir", args.models_dir), ("mcp_roots", args.roots))
                 if value is not None}
    settings = WebSettings.from_env(secret_key="unused-over-stdio", **overrides)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the protocol alone
        service = CaptionService(settings, translator=create_translator(TranslationSettings.from_env()))
        service.load()
    if not service.models:
        problems = "; ".join(f"{p['name']}: {p['message']}" for p in service.problems) or "none found"
        raise ValueError(f"no model could be loaded ({problems}); check --models-dir")
    try:
        build_server(service, settings).run("stdio")
    finally:
        service.close()
    return 0
