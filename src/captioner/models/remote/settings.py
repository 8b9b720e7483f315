"""What a remote model's bundle records: where its endpoints are, which protocol they speak, and the limits
every request to them keeps.

The bundle names the environment variable that holds the API key (``key_env``), never the key itself, so a
bundle can be copied, committed or shared without leaking a secret; the key is read when a request is sent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from urllib.parse import urlsplit

from captioner.errors import ModelError

APIS = ("openai", "ollama")  # the protocols a remote model can speak
KEY_ENV_PATTERN = "an environment variable name such as OPENAI_API_KEY"


@dataclass(frozen=True)
class RemoteSettings:
    """The ``remote`` section of a remote model's ``captioner.json``."""

    api: str  # "openai" (POST {url}/chat/completions) or "ollama" (POST {url}/api/generate)
    urls: tuple[str, ...]  # the endpoints' base URLs; requests are spread over them in turn
    model: str  # the model's id on the endpoint, e.g. "Qwen/Qwen3-VL-2B-Instruct" or "qwen2.5vl:3b"
    key_env: str = ""  # the environment variable holding the API key ("" = no key is sent)
    concurrency: int = 4  # most requests in flight to this model from one process, over all its endpoints
    timeout_s: float = 60.0  # seconds to connect, and to wait for the answer (for each part of it that arrives)
    retries: int = 3  # further tries of a request answered 429 or 5xx, or that timed out or could not connect
    backoff_s: float = 0.5  # the wait before the first retry; it doubles for each further one
    max_backoff_s: float = 30.0  # the longest wait between tries, a Retry-After header's included
    max_side: int = 1024  # images are shrunk to at most this many pixels a side before they are sent
    jpeg_quality: int = 90  # the JPEG quality images are re-encoded at
    logprobs: bool = True  # ask for token log-probabilities (a caption's score); off for endpoints that refuse it
    extra: dict = field(default_factory=dict)  # further fields sent as they are in every request body

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise ModelError(f"--api must be one of {', '.join(APIS)}, not {self.api!r}")
        if not self.urls:
            raise ModelError("a remote model needs at least one --url")
        object.__setattr__(self, "urls", tuple(check_url(url) for url in self.urls))
        if not self.model.strip():
            raise ModelError("--model must name the model on the endpoint, e.g. Qwen/Qwen3-VL-2B-Instruct")
        if self.key_env and not self.key_env.replace("_", "a").isalnum():
            raise ModelError(f"--key-env takes {KEY_ENV_PATTERN}, not a key: the key itself is never stored")
        for name in ("concurrency", "max_side"):
            if getattr(self, name) < 1:
                raise ModelError(f"{name.replace('_', ' ')} must be at least 1")
        if self.retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ModelError("retries and backoff must not be negative")
        if not self.timeout_s > 0:
            raise ModelError("the request timeout must be above 0 seconds")
        if not 1 <= self.jpeg_quality <= 95:
            raise ModelError("the JPEG quality must be between 1 and 95")

    @classmethod
    def from_dict(cls, data: dict) -> "RemoteSettings":
        if not isinstance(data, dict):
            raise ModelError("a remote bundle's captioner.json needs a 'remote' object in its settings")
        known = {item.name for item in fields(cls)}
        try:
            values = {key: value for key, value in data.items() if key in known}
            values["urls"] = tuple(values.get("urls") or ())
            return cls(**values)
        except TypeError as error:
            raise ModelError(f"the remote settings in captioner.json are incomplete ({error})") from None

    def to_dict(self) -> dict:
        return {**asdict(self), "urls": list(self.urls)}


def check_url(url: str) -> str:
    """``url`` as an endpoint base (no trailing slash); ModelError with what is wrong for anything else."""
    text = str(url).strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a port that is no number or out of range
    except ValueError as error:
        raise ModelError(f"the URL {text!r} is not valid ({error}); write it like http://gpu-1:8000/v1") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelError(f"the URL {text!r} must start with http:// or https:// and name a host, "
                         "like http://gpu-1:8000/v1")
    if port == 0:
        raise ModelError(f"the URL {text!r} names port 0; give the port the server listens on")
    if parts.query or parts.fragment:
        raise ModelError(f"the URL {text!r} must be the endpoint's base, without ?query or #fragment")
    return text.rstrip("/")
