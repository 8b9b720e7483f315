"""An app serving the tiny WD tagger and a vision-language model (a real local endpoint that records the instruction
it was given), with the fake Azure Translator as its translator, also behind a real HTTP server in a thread: what
the tests of tags, templates and languages on the native API, the compatible routes and the pages share."""

from __future__ import annotations

import io
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from captioner.models.remote.registration import add_remote
from captioner.models.remote.settings import RemoteSettings
from support.fake_azure_translator import KEY, REGION, FakeAzureTranslator
from support.fake_vision_endpoint import MODEL, FakeVisionEndpoint
from support.tiny_tagger import build_tagger

TAGGER, VLM = "tiny-wd-tagger", "vlm"


def red_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class TaggingApp:
    app: object  # the Flask app
    url: str  # where the real HTTP server serves it
    vision: FakeVisionEndpoint
    translator: FakeAzureTranslator

    def instruction(self) -> str:
        """The text of the last request the vision-language model got."""
        content = self.vision.requests[-1]["body"]["messages"][0]["content"]
        return next(part["text"] for part in content if part["type"] == "text")

    def caption(self, **fields):
        """POST /api/v1/captions of a red picture with ``fields``, through the test client."""
        data = {"image": (io.BytesIO(red_png()), "red.png"), **fields}
        return self.app.test_client().post("/api/v1/captions", data=data)


@contextmanager
def tagging_app(folder: Path, make_app):
    from werkzeug.serving import make_server

    models = folder / "models"
    build_tagger(models / TAGGER)
    with ExitStack() as stack:
        vision = stack.enter_context(FakeVisionEndpoint())
        translator = stack.enter_context(FakeAzureTranslator())
        add_remote(VLM, RemoteSettings(api="openai", urls=(vision.url,), model=MODEL, retries=1, timeout_s=10.0),
                   models)
        app = make_app(models, translator_key=KEY, translator_endpoint=translator.endpoint,
                       translator_location=REGION)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="tagging-app", daemon=True)
        thread.start()
        try:
            yield TaggingApp(app, f"http://127.0.0.1:{server.server_port}", vision, translator)
        finally:
            server.shutdown()
            app.extensions["captioner"].close()
