"""One real `captioner serve` for the tests of the compatible protocols and of the guide's snippets: the shapes
demo model, API keys required, a rate limit, and image URLs allowed from one host name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from captioner.history import open_history
from captioner.history.keys import KeyStore
from captioner.web.launch import RunningServer, start_server

RATE_LIMIT = 240  # requests per minute per key (the client tests share one key); the rate-limit test spends a key of its own


@dataclass
class CompatServer:
    server: RunningServer
    keys: dict[str, str]  # name -> key
    model: str = "shapes-demo"

    @property
    def url(self) -> str:
        return self.server.url

    def key(self, name: str = "main") -> str:
        return self.keys[name]


def start_compat_server(models_dir: Path, folder: Path) -> CompatServer:
    url = f"sqlite:///{folder / 'captioner.db'}"
    store = open_history(url)
    keys = KeyStore(store.session_factory)
    made = {name: keys.create(name)[1] for name in ("main", "docs", "limited")}
    store.close()
    env = {"CAPTIONER_REQUIRE_KEYS": "true", "DATABASE_URL": url, "SECRET_KEY": "compat-test-secret",
           "CAPTIONER_RATE_LIMIT": f"{RATE_LIMIT} per minute", "CAPTIONER_TRY_PRETRAINED": "0",
           "CAPTIONER_IMAGE_URL_HOSTS": "images.example.test"}
    server = start_server(models_dir, "--threads", "4", env=env, timeout=240, log_path=folder / "server.log")
    return CompatServer(server, made)
