"""A local stand-in for a vision-language model server: a real HTTP server on 127.0.0.1 in a thread that
speaks both protocols a remote model uses (OpenAI ``POST /v1/chat/completions`` and Ollama
``POST /api/generate``), in their real request and answer shapes.

It checks what a real server would (the model id, a JPEG image, the bearer key when one is set) and
answers with a caption made from the instruction it got, so a test sees what was asked. Its behaviour is
a script: ``fake.script = ["429", "500", "ok"]`` answers the next requests so, then "ok" (or
``fake.default``) for the rest. Steps: "ok", "429" (with ``Retry-After: fake.retry_after``), "500", "503",
"garbage" (a 200 that is not JSON), "wrong" (JSON of another shape), "400", "401", "slow" (answers after
``fake.slow_s``). It records when each request came and how many were in flight at most.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "tiny-vlm"
LOGPROBS = (-0.25, -0.5, -0.125, -1.0)  # per token of an answer, in turn


class FakeVisionEndpoint:
    """``with FakeVisionEndpoint() as fake:`` serves on ``fake.url`` until the block ends."""

    def __init__(self, key: str = "", service_s: float = 0.0, logprobs: bool = True):
        self.key = key  # the bearer key it requires ("" = none)
        self.service_s = service_s  # seconds every answer takes
        self.logprobs = logprobs  # give token log-probabilities when asked
        self.script: list[str] = []  # behaviours for the next requests, in order
        self.default = "ok"  # the behaviour once the script is used up
        self.retry_after = "1"  # the Retry-After header of a 429
        self.slow_s = 5.0  # how long a "slow" answer takes
        self.answer = ""  # the text to answer with ("" = made from the instruction)
        self.requests: list[dict] = []  # {"path", "at", "body"} of each request, in arrival order
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "FakeVisionEndpoint":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_step(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                step = fake._next_step()
                with fake._lock:
                    fake.in_flight += 1
                    fake.most_in_flight = max(fake.most_in_flight, fake.in_flight)
                try:
                    body = json.loads(raw or b"{}")
                    fake.requests.append({"path": self.path, "at": arrived, "body": body})
                    time.sleep(fake.service_s + (fake.slow_s if step == "slow" else 0))
                finally:
                    # A request stops counting before its answer is written: once the client has the answer
                    # it may send the next one, which must not find this one still counted.
                    with fake._lock:
                        fake.in_flight -= 1
                self._answer(body, step)

            def _answer(self, body: dict, step: str) -> None:
                if step in ("429", "500", "503", "400"):
                    headers = {"Retry-After": fake.retry_after} if step == "429" else {}
                    return self._send(int(step), {"error": {"message": f"fake says {step}"}}, headers)
                if fake.key and self.headers.get("Authorization") != f"Bearer {fake.key}":
                    return self._send(401, {"error": {"message": "invalid api key"}})
                if step == "401":
                    return self._send(401, {"error": {"message": "invalid api key"}})
                if step == "garbage":
                    return self._send_bytes(200, b"<html>Bad gateway</html>", "text/html")
                if step == "wrong":
                    return self._send(200, {"result": "no caption here"})
                if self.path == "/v1/chat/completions":
                    return self._openai(body)
                if self.path == "/api/generate":
                    return self._ollama(body)
                return self._send(404, {"error": f"no route {self.path}"})

            def _openai(self, body: dict) -> None:
                content = body["messages"][0]["content"]
                instruction = next(part["text"] for part in content if part["type"] == "text")
                image_url = next(part["image_url"]["url"] for part in content if part["type"] == "image_url")
                prefix = "data:image/jpeg;base64,"
                if body.get("model") != MODEL or not image_url.startswith(prefix):
                    return self._send(400, {"error": {"message": "unknown model or no JPEG data URL"}})
                check_jpeg(image_url[len(prefix):])
                text = fake.answer or caption_for(instruction)
                choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                if body.get("logprobs") and fake.logprobs:
                    choice["logprobs"] = {"content": [{"token": token, "logprob": log_prob, "top_logprobs": []}
                                                      for token, log_prob in tokens_of(text)]}
                self._send(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                                 "model": MODEL, "choices": [choice]})

            def _ollama(self, body: dict) -> None:
                if body.get("model") != MODEL or not body.get("images") or body.get("stream") is not False:
                    return self._send(404, {"error": f"model '{body.get('model')}' not found"})
                check_jpeg(body["images"][0])
                text = fake.answer or caption_for(body.get("prompt", ""))
                answer = {"model": MODEL, "created_at": "2026-01-01T00:00:00Z", "response": text, "done": True,
                          "done_reason": "stop"}
                if body.get("logprobs") and fake.logprobs:
                    answer["logprobs"] = [{"token": token, "logprob": log_prob} for token, log_prob in tokens_of(text)]
                self._send(200, answer)

            def _send(self, status: int, data: dict, headers: dict | None = None) -> None:
                self._send_bytes(status, json.dumps(data).encode(), "application/json", headers)

            def _send_bytes(self, status: int, data: bytes, content_type: str, headers: dict | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a timeout test)
                    self.close_connection = True

        return Handler


def check_jpeg(data: str) -> None:
    if not base64.b64decode(data).startswith(b"\xff\xd8\xff"):
        raise ValueError("the image is not a JPEG")


def caption_for(instruction: str) -> str:
    """The fake model's text: the style the instruction asked for, so a test can tell them apart."""
    if "keywords" in instruction.lower():
        return "Red, circle, shape, Red, white background"
    if "alt text" in instruction.lower():
        return "Image of a red circle on a white background"
    if "in detail" in instruction.lower():
        return "A red circle sits in the middle of a plain white background, lit evenly, with sharp edges."
    return "A red circle." if "one sentence" in instruction.lower() else f"a red circle [{instruction[:40]}]"


def tokens_of(text: str) -> list[tuple[str, float]]:
    """The text as tokens (each word with its leading space), each with a log-probability."""
    words = text.split(" ")
    tokens = [words[0]] + [" " + word for word in words[1:]]
    return [(token, LOGPROBS[index % len(LOGPROBS)]) for index, token in enumerate(tokens)]
