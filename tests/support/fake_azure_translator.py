"""A local stand-in for the Azure Translator REST API v3: a real HTTP server on 127.0.0.1 in a thread.

It checks what the real service checks (api-version, from/to, subscription key and region headers,
JSON content type, a client trace id, the ``[{"text": ...}]`` body) and answers in the real shape
``[{"translations": [{"text": ..., "to": ...}]}]``. Set ``fail_with`` to 401, 429 or 500 to make it
fail like the real service, or ``delay`` to make it slow.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KEY = "test-subscription-key"
REGION = "westeurope"
LANGUAGES = {"ar", "it", "ja", "ru", "de", "es", "fr", "nl", "pt", "zh-Hans"}
# A few phrases the fake knows; anything else comes back marked with the target language.
PHRASES = {
    ("de", "a red circle"): "ein roter Kreis",
    ("it", "a red circle"): "un cerchio rosso",
    ("ja", "a red circle"): "赤い円",
    ("ru", "a red circle"): "красный круг",
    ("ar", "a red circle"): "دائرة حمراء",
}
ERRORS = {
    401: (401000, "The request is not authorized because credentials are missing or invalid."),
    429: (429000, "The server rejected the request because the client has exceeded request limits."),
    500: (500000, "An unexpected error occurred."),
}


def fake_translation(text: str, to: str) -> str:
    return PHRASES.get((to, text.strip().lower()), f"[{to}] {text}")


class FakeAzureTranslator:
    """``with FakeAzureTranslator() as fake:`` serves on ``fake.endpoint`` until the block ends."""

    def __init__(self, key: str = KEY, region: str = REGION):
        self.key = key
        self.region = region
        self.fail_with: int | None = None  # answer every request with this HTTP error
        self.delay = 0.0  # seconds to wait before answering
        self.requests: list[dict] = []  # what each request carried (headers, query, body)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def __enter__(self) -> "FakeAzureTranslator":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload) -> None:
                body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("X-RequestId", str(uuid.uuid4()))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            def _error(self, status: int, code: int, message: str) -> None:
                self._send(status, {"error": {"code": code, "message": message}})

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                fake.requests.append({"path": url.path, "query": query, "headers": dict(self.headers), "body": raw})
                if fake.delay:
                    time.sleep(fake.delay)
                if fake.fail_with:
                    code, message = ERRORS.get(fake.fail_with, (fake.fail_with * 1000, "failure"))
                    return self._error(fake.fail_with, code, message)
                if url.path != "/translate":
                    return self._error(404, 404000, "The requested resource was not found.")
                if query.get("api-version") != ["3.0"]:
                    return self._error(400, 400021, "The API version parameter is missing or invalid.")
                if self.headers.get("Ocp-Apim-Subscription-Key") != fake.key:
                    return self._error(401, *ERRORS[401])
                if self.headers.get("Ocp-Apim-Subscription-Region") != fake.region:
                    return self._error(401, 401015, "The region parameter is missing or does not match the key.")
                if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                    return self._error(415, 415000, "The Content-Type header is missing or invalid.")
                try:
                    uuid.UUID(self.headers.get("X-ClientTraceId", ""))
                except ValueError:
                    return self._error(400, 400050, "X-ClientTraceId is not a GUID.")
                if query.get("from", ["en"]) != ["en"]:
                    return self._error(400, 400035, "The source language is not valid.")
                targets = query.get("to", [])
                if not targets or any(to not in LANGUAGES for to in targets):
                    return self._error(400, 400036, "The target language is not valid.")
                try:
                    items = json.loads(raw)
                    texts = [item["Text" if "Text" in item else "text"] for item in items]
                except (ValueError, TypeError, KeyError):
                    return self._error(400, 400074, "The body of the request is not valid JSON.")
                self._send(200, [{"translations": [{"text": fake_translation(text, to), "to": to} for to in targets]}
                                 for text in texts])

        return Handler
