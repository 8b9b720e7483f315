"""The headers every route shares: the page's security policy, ``no-store`` on answers that hold a person's
captions, keys or jobs, and streamed answers that proxies pass on as they are written."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, Flask, Response, stream_with_context

# Scripts and styles come only from our own static files (no inline code); previews are data: and blob:
# URLs; nobody may frame the pages.
SECURITY_HEADERS = {
    "Content-Security-Policy": "; ".join([
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
        "connect-src 'self'", "font-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'",
        "frame-ancestors 'none'",
    ]),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def secure(app: Flask) -> None:
    """Every answer of ``app`` carries :data:`SECURITY_HEADERS` unless a route set its own."""
    @app.after_request
    def security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def never_stored(blueprint: Blueprint) -> Blueprint:
    """Every answer of ``blueprint`` is ``Cache-Control: no-store`` (no browser or proxy keeps a caption, a key
    or a job), unless a route set its own: a thumbnail whose URL names the image's version may be kept."""
    @blueprint.after_request
    def no_store(response):
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return blueprint


def streamed(chunks: Iterable[str], mimetype: str) -> Response:
    """An answer written as ``chunks`` arrive (Server-Sent Events, NDJSON), in the request's context, that a
    buffering proxy such as nginx passes on at once."""
    return Response(stream_with_context(chunks), mimetype=mimetype, headers={"X-Accel-Buffering": "no"})
