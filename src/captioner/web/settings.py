"""Web app settings: one dataclass, read from the environment or a ``.env`` file.

Every field says what it does and which variable sets it. ``WebSettings.from_env()`` reads ``.env`` from
the current folder (python-dotenv; real environment variables win) and then the environment, through
:mod:`captioner.environment`, so the same settings work for ``captioner serve``, ``flask run``, Docker and
a Procfile host. Server workers receive the settings object itself; nothing is passed through ``os.environ``.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from captioner import environment
from captioner.environment import parse_value

log = logging.getLogger(__name__)

# Environment variable of each field; fields missing here are not read from the environment.
ENV_NAMES = {
    "secret_key": "SECRET_KEY",
    "models_dir": "CAPTIONER_MODELS_DIR",
    "models": "CAPTIONER_MODELS",
    "reports_dir": "CAPTIONER_REPORTS_DIR",
    "default_model": "CAPTIONER_DEFAULT_MODEL",
    "max_upload_mb": "MAX_UPLOAD_MB",
    "max_pixels": "CAPTIONER_MAX_PIXELS",
    "queue_size": "CAPTIONER_QUEUE_SIZE",
    "batch_size": "CAPTIONER_BATCH_SIZE",
    "batch_wait_ms": "CAPTIONER_BATCH_WAIT_MS",
    "request_timeout_s": "CAPTIONER_REQUEST_TIMEOUT_S",
    "max_beam": "CAPTIONER_MAX_BEAM",
    "max_caption_length": "CAPTIONER_MAX_CAPTION_LENGTH",
    "try_pretrained": "CAPTIONER_TRY_PRETRAINED",
    "pretrained": "CAPTIONER_PRETRAINED",
    "build_demo": "CAPTIONER_BUILD_DEMO",
    "load_in_background": "CAPTIONER_LOAD_IN_BACKGROUND",
    "secure_cookies": "CAPTIONER_SECURE_COOKIES",
    "translator_key": "KEY",
    "translator_endpoint": "ENDPOINT",
    "translator_location": "LOCATION",
    "database_url": "DATABASE_URL",
    "instance_dir": "CAPTIONER_INSTANCE_DIR",
    "host": "HOST",
    "port": "PORT",
    "require_keys": "CAPTIONER_REQUIRE_KEYS",
    "rate_limit": "CAPTIONER_RATE_LIMIT",
    "translate_rate_limit": "CAPTIONER_TRANSLATE_RATE_LIMIT",
    "rate_limit_storage": "CAPTIONER_RATE_LIMIT_STORAGE",
    "history_max_entries": "CAPTIONER_HISTORY_MAX_ENTRIES",
    "history_max_mb": "CAPTIONER_HISTORY_MAX_MB",
    "history_retention_days": "CAPTIONER_HISTORY_RETENTION_DAYS",
    "history_cleanup_interval_s": "CAPTIONER_HISTORY_CLEANUP_INTERVAL_S",
    "trusted_proxies": "CAPTIONER_TRUSTED_PROXIES",
    "client_timeout_s": "CAPTIONER_CLIENT_TIMEOUT_S",
    "image_url_hosts": "CAPTIONER_IMAGE_URL_HOSTS",
    "image_url_timeout_s": "CAPTIONER_IMAGE_URL_TIMEOUT_S",
    "mcp_roots": "CAPTIONER_MCP_ROOTS",
    "mcp_max_images": "CAPTIONER_MCP_MAX_IMAGES",
    "datasets_dir": "CAPTIONER_DATASETS_DIR",
}


@dataclass
class WebSettings:
    """How the web app and its model service run."""

    # Signs session cookies and CSRF tokens. Set it in production (SECRET_KEY); when unset, each process
    # makes a random one and logs a warning (forms then fail across restarts and between workers).
    secret_key: str = ""
    # Folder of model bundles to serve (CAPTIONER_MODELS_DIR); every bundle inside is loaded at start.
    models_dir: str = "models"
    # Comma-separated bundle names to load instead of every bundle in the folder (CAPTIONER_MODELS).
    models: str = ""
    # Folder of `captioner compare` reports (CAPTIONER_REPORTS_DIR): the models page links to the newest and the
    # app serves it at /compare-report/. Empty: no report is shown (a report holds thumbnails of your photos).
    reports_dir: str = ""
    # Model used when a request names none (CAPTIONER_DEFAULT_MODEL); empty: the best-known loaded one.
    default_model: str = ""
    # Largest accepted upload in megabytes (MAX_UPLOAD_MB); bigger requests get 413 image_too_large.
    max_upload_mb: float = 10.0
    # Largest accepted image in pixels (width x height), against decompression bombs (CAPTIONER_MAX_PIXELS).
    max_pixels: int = 40_000_000
    # Requests waiting per model before new ones are refused with 503 overloaded (CAPTIONER_QUEUE_SIZE).
    queue_size: int = 64
    # Most images captioned together in one model call (CAPTIONER_BATCH_SIZE); 1 turns micro-batching off.
    batch_size: int = 8
    # How long a model's worker waits for more images to join a batch, in ms (CAPTIONER_BATCH_WAIT_MS).
    batch_wait_ms: float = 5.0
    # Seconds a request may wait for its caption before 504 timeout (CAPTIONER_REQUEST_TIMEOUT_S).
    request_timeout_s: float = 30.0
    # Widest beam a request may ask for (CAPTIONER_MAX_BEAM).
    max_beam: int = 8
    # Longest caption a request may ask for, in words (CAPTIONER_MAX_CAPTION_LENGTH).
    max_caption_length: int = 50
    # Load pretrained models from the cache or the hub (CAPTIONER_TRY_PRETRAINED); false: bundles only.
    try_pretrained: bool = True
    # Which pretrained models (CAPTIONER_PRETRAINED): comma-separated short names or hub ids, loaded beside the
    # bundles; "none" loads none. Empty: vit-gpt2 and florence-2-base-ft, and only while no bundle was
    # trained on real photos.
    pretrained: str = ""
    # With nothing else to load, train the small shapes demo model into the models folder (CAPTIONER_BUILD_DEMO).
    build_demo: bool = True
    # Load models in a background thread so /healthz answers at once (CAPTIONER_LOAD_IN_BACKGROUND).
    load_in_background: bool = False
    # Send cookies only over HTTPS (CAPTIONER_SECURE_COOKIES); turn on when served behind TLS.
    secure_cookies: bool = False
    # Translation service subscription key (KEY), endpoint URL (ENDPOINT) and region (LOCATION).
    translator_key: str = ""
    translator_endpoint: str = ""
    translator_location: str = ""
    # Database for saved captions (DATABASE_URL), e.g. postgresql+psycopg://user:pass@host/db;
    # empty: the SQLite file captioner.db in the instance folder.
    database_url: str = ""
    # The app's own writable folder, home of the default SQLite history (CAPTIONER_INSTANCE_DIR);
    # a relative path counts from the working folder.
    instance_dir: str = "instance"
    # Address `captioner serve` listens on (HOST); 0.0.0.0 for every interface.
    host: str = "127.0.0.1"
    # Port `captioner serve` listens on (PORT); 0 picks a free one.
    port: int = 5000
    # Request threads per server worker (`captioner serve --threads`).
    threads: int = 8
    # Server worker processes (`captioner serve --workers`): 1 runs waitress; more run gunicorn (Unix only).
    workers: int = 1
    # Every page and endpoint but /healthz and /readyz needs an API key (CAPTIONER_REQUIRE_KEYS): the API as
    # "Authorization: Bearer KEY", the pages through /sign-in. Off for a local install; keys: `captioner keys`.
    require_keys: bool = False
    # Requests one caller may make (CAPTIONER_RATE_LIMIT): per API key, or per client address without one,
    # in Flask-Limiter's notation ("120 per minute", "10 per second; 2000 per hour"); "off" for no limit.
    rate_limit: str = "120 per minute"
    # Translation's own, lower limit per caller (CAPTIONER_TRANSLATE_RATE_LIMIT): Azure calls cost money.
    translate_rate_limit: str = "20 per minute"
    # Where the limits' counters live (CAPTIONER_RATE_LIMIT_STORAGE): memory:// counts in each process;
    # redis://HOST:6379/0 shares them between workers and hosts.
    rate_limit_storage: str = "memory://"
    # Saved captions one key may keep (CAPTIONER_HISTORY_MAX_ENTRIES; without keys: the whole history); 0: no cap.
    history_max_entries: int = 2000
    # Megabytes of thumbnails one key may keep (CAPTIONER_HISTORY_MAX_MB); 0: no cap.
    history_max_mb: float = 100.0
    # Days a saved caption is kept before the cleanup deletes it (CAPTIONER_HISTORY_RETENTION_DAYS); 0: forever.
    history_retention_days: float = 0.0
    # Seconds between runs of that cleanup, which runs by itself in every server process
    # (CAPTIONER_HISTORY_CLEANUP_INTERVAL_S).
    history_cleanup_interval_s: float = 3600.0
    # Reverse proxies in front of the server whose X-Forwarded-For/-Proto/-Host are believed
    # (CAPTIONER_TRUSTED_PROXIES); 0: none, the socket's address is the client.
    trusted_proxies: int = 0
    # Seconds a client connection may send nothing before waitress closes it (CAPTIONER_CLIENT_TIMEOUT_S).
    client_timeout_s: float = 60.0
    # Hosts whose http(s) image URLs the OpenAI-compatible route fetches (CAPTIONER_IMAGE_URL_HOSTS):
    # comma-separated names, "*.example.com" for every name under one; empty: none (data: URLs only).
    # Even a listed host is refused when it resolves to a loopback, private or link-local address.
    image_url_hosts: str = ""
    # Seconds one image URL fetch may take, redirects included (CAPTIONER_IMAGE_URL_TIMEOUT_S).
    image_url_timeout_s: float = 10.0
    # Folders whose images the MCP tools may read (CAPTIONER_MCP_ROOTS), separated by the path separator
    # (":" on Linux and macOS, ";" on Windows); empty: none (images come as base64 or URLs only).
    mcp_roots: str = ""
    # Most images one MCP caption_folder call captions (CAPTIONER_MCP_MAX_IMAGES).
    mcp_max_images: int = 20
    # Folder of training sets the review page (/dataset) may open and edit (CAPTIONER_DATASETS_DIR): only
    # folders under it, never a path outside; empty: the page and its API are off.
    datasets_dir: str = ""
    # Extra Flask config (tests set TESTING, WTF_CSRF_ENABLED, ...); not read from the environment.
    flask: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_upload_mb <= 0:
            raise ValueError(f"MAX_UPLOAD_MB must be positive, not {self.max_upload_mb}")
        for name in ("max_pixels", "queue_size", "batch_size", "max_beam", "max_caption_length", "mcp_max_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"{ENV_NAMES[name]} must be at least 1, not {getattr(self, name)}")
        if self.batch_wait_ms < 0:
            raise ValueError(f"CAPTIONER_BATCH_WAIT_MS must not be negative, not {self.batch_wait_ms}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {self.port}")
        if self.threads < 1 or self.workers < 1:
            raise ValueError("threads and workers must be at least 1")
        if self.request_timeout_s <= 0:
            raise ValueError(f"CAPTIONER_REQUEST_TIMEOUT_S must be positive, not {self.request_timeout_s}")
        for name in ("history_max_entries", "history_max_mb", "history_retention_days", "trusted_proxies"):
            if getattr(self, name) < 0:
                raise ValueError(f"{ENV_NAMES[name]} must not be negative, not {getattr(self, name)}")
        for name in ("history_cleanup_interval_s", "client_timeout_s", "image_url_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{ENV_NAMES[name]} must be positive, not {getattr(self, name)}")
        for name in ("rate_limit", "translate_rate_limit"):
            check_rate_limit(ENV_NAMES[name], getattr(self, name))

    @property
    def instance_path(self) -> str:
        return str(Path(self.instance_dir).resolve())

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def pretrained_names(self) -> list[str]:
        """The pretrained models asked for (CAPTIONER_PRETRAINED), or the default ones when it is empty."""
        from captioner.models.transformers.pretrained import DEFAULT_PRETRAINED

        if self.pretrained.strip().lower() == "none":
            return []
        return [name.strip() for name in self.pretrained.split(",") if name.strip()] or list(DEFAULT_PRETRAINED)

    @property
    def mcp_root_paths(self) -> list[Path]:
        """The MCP roots, resolved (``~`` expanded)."""
        return [Path(part).expanduser().resolve() for part in self.mcp_roots.split(os.pathsep) if part.strip()]

    @property
    def datasets_root(self) -> Path | None:
        """The review page's root folder, resolved; None while the page is off."""
        return Path(self.datasets_dir).expanduser().resolve() if self.datasets_dir.strip() else None

    @property
    def model_names(self) -> list[str]:
        return [name.strip() for name in self.models.split(",") if name.strip()]

    @classmethod
    def from_env(cls, environ=None, dotenv_path: str | os.PathLike | None = None, defaults: dict | None = None,
                 **overrides) -> "WebSettings":
        """Settings from ``environ`` (default: the environment over ``.env``); ``defaults`` (field names)
        stand where the environment sets nothing, ``overrides`` win over everything."""
        if environ is None:
            environment.use_dotenv(dotenv_path)
            environ = environment.variables()
        values = {}
        for item in fields(cls):
            variable = ENV_NAMES.get(item.name)
            if variable and (environ.get(variable) or "").strip():
                values[item.name] = parse_value(variable, environ[variable].strip(), item.default)
        settings = cls(**{**(defaults or {}), **values, **overrides})
        return settings.with_secret_key()

    def with_secret_key(self) -> "WebSettings":
        if self.secret_key:
            return self
        log.warning("SECRET_KEY is not set: using a random key for this process; set SECRET_KEY in production")
        return replace(self, secret_key=secrets.token_hex(32))


def rate_limit_off(text: str) -> bool:
    return text.strip().lower() in ("", "off", "none", "0")


def check_rate_limit(variable: str, text: str) -> None:
    """A clear message for a limit Flask-Limiter cannot read (e.g. "120 per minute; 2000 per hour")."""
    if rate_limit_off(text):
        return
    from limits import parse_many

    try:
        parse_many(text)
    except ValueError:
        raise ValueError(f"{variable} must be a rate like '120 per minute' or '10/second; 1000/day', "
                         f"or 'off'; not {text!r}") from None
