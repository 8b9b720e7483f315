"""``/mcp`` on the web server: the SDK's streamable HTTP transport, driven from Flask one request at a time.

The SDK's transport is ASGI and the server is WSGI (waitress, gunicorn). Rather than a second server, each
request to ``/mcp`` is handed, whole, to the SDK's own ``StreamableHTTPSessionManager`` running on one event
loop in a background thread of the worker, and its answer is returned as the Flask response. The manager runs
**stateless with JSON responses** (the spec's mode for servers that keep no sessions): every POST carries
one JSON-RPC message and gets its answer as one JSON body, so nothing needs a long-lived stream, and any
worker can answer any request. Being a Flask route, ``/mcp`` has the API's keys (``Authorization: Bearer``)
and rate limits, and requests from other sites' pages (a foreign ``Origin``) are refused.
"""

from __future__ import annotations

import asyncio
import threading

from flask import Blueprint, Response, current_app, request

from captioner.web.history import refuse_cross_site

bp = Blueprint("mcp", __name__)
EXTENSION = "captioner.mcp"
ANSWER_MARGIN_S = 30.0  # beyond the request timeout, for the transport's own work


class McpBridge:
    """The SDK's session manager on its own event loop; ``answer(...)`` passes one HTTP request through it."""

    def __init__(self, server, timeout_s: float):
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        self.timeout_s = timeout_s
        self.manager = StreamableHTTPSessionManager(app=server._lowlevel_server, json_response=True, stateless=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mcp-http", daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def _run(self) -> None:
        async def serve():
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with self.manager.run():
                self._ready.set()
                await self._stop.wait()

        asyncio.run(serve())

    def close(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def answer(self, scope: dict, body: bytes) -> tuple[int, list, bytes]:
        """Status, headers and body of the manager's answer to one request."""
        future = asyncio.run_coroutine_threadsafe(self._call(scope, body), self._loop)
        return future.result(self.timeout_s + ANSWER_MARGIN_S)

    async def _call(self, scope: dict, body: bytes):
        sent = {"status": 500, "headers": [], "body": bytearray()}
        done = asyncio.Event()
        delivered = False

        async def receive():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                sent["status"], sent["headers"] = message["status"], message.get("headers", [])
            elif message["type"] == "http.response.body":
                sent["body"] += message.get("body", b"")
                if not message.get("more_body"):
                    done.set()

        await self.manager.handle_request(scope, receive, send)
        done.set()
        return sent["status"], sent["headers"], bytes(sent["body"])


bp.before_request(refuse_cross_site)


@bp.route("/mcp", methods=["GET", "POST", "DELETE"])
def mcp_endpoint():
    bridge = current_app.extensions[EXTENSION]()
    body = request.get_data(cache=False)
    host = request.host.rsplit(":", 1)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
             "scheme": request.scheme, "path": "/mcp", "raw_path": b"/mcp", "root_path": "",
             "query_string": request.query_string,
             "headers": [(name.lower().encode("latin-1"), value.encode("latin-1"))
                         for name, value in request.headers.items()],
             "client": (request.remote_addr or "", 0),
             "server": (host[0], int(host[1]) if len(host) == 2 and host[1].isdigit() else 80)}
    status, headers, answer = bridge.answer(scope, body)
    response = Response(answer, status=status)
    for name, value in headers:
        if name.lower() not in (b"content-length", b"transfer-encoding"):
            response.headers[name.decode("latin-1")] = value.decode("latin-1")
    return response


def init_mcp(app, service) -> None:
    """Serve the MCP tools of ``service`` at ``/mcp``; the SDK loads on the first request there."""
    settings = app.config["CAPTIONER_SETTINGS"]
    made: list[McpBridge] = []
    lock = threading.Lock()

    def bridge() -> McpBridge:
        with lock:
            if not made:
                from captioner.web.errors import ApiError
                from captioner.web.mcp.tools import McpMissing, build_server

                try:
                    server = build_server(service, settings)
                except McpMissing as error:
                    raise ApiError("mcp_unavailable", str(error), 501) from None
                made.append(McpBridge(server, settings.request_timeout_s))
            return made[0]

    app.extensions[EXTENSION] = bridge
    app.register_blueprint(bp)
