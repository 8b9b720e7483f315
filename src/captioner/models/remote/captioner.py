"""A model served by an OpenAI-compatible or Ollama endpoint, behind the same ``Captioner`` interface.

A batch is captioned with one request per image, sent at the same time; how many are in flight is bounded
per model by one semaphore that every caller in the process shares (the web server's batches, a
collection run, evaluation threads), so a server is never sent more than ``concurrency`` requests by one
process, however many callers there are. Requests go to the model's endpoints in turn.

Scores: an endpoint that returns token log-probabilities (vLLM, OpenAI, recent Ollama) gives a caption its
total log-probability, as every kind does, less the end marker's (endpoints do not report it). One that
returns none gives ``score = None``: the caption carries no score. Remote captions have no alternatives.
"""

from __future__ import annotations

import itertools
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import requests

from captioner import environment
from captioner.errors import ModelError
from captioner.models.base import ALT_TEXT_CHARACTERS, CAPTION_STYLES, Caption, Decoding, PromptOption
from captioner.models.bundle import BundleInfo
from captioner.models.remote.protocols import Answer, encode_jpeg, read_answer, request_for
from captioner.models.remote.settings import RemoteSettings
from captioner.models.remote.transport import post_json

KIND = "remote"
DEFAULT_MAX_WORDS = 60  # a detailed description needs room; a caption ends well before
PREAMBLE = re.compile(r"^\s*(?:an?\s+|the\s+)?(?:image|picture|photo(?:graph)?)\s+(?:of|showing)\s+", re.IGNORECASE)
KEYWORD_SEPARATORS = re.compile(r"[,;\n]+")
LIST_MARKS = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


@dataclass
class EndpointLimit:
    """What every caller of one remote model in this process shares: the in-flight bound and the turn."""

    size: int  # most requests in flight
    semaphore: threading.BoundedSemaphore = field(init=False)
    turns: itertools.count = field(default_factory=itertools.count)  # which endpoint the next request goes to

    def __post_init__(self) -> None:
        self.semaphore = threading.BoundedSemaphore(self.size)


_limits: dict[tuple, EndpointLimit] = {}
_limits_lock = threading.Lock()


def shared_limit(name: str, settings: RemoteSettings) -> EndpointLimit:
    """The one limit of the model ``name`` at these endpoints; ``CAPTIONER_REMOTE_CONCURRENCY`` overrides the
    bundle's concurrency for every remote model of the process."""
    size = environment.current().remote_concurrency or settings.concurrency
    key = (name, settings.urls, size)
    with _limits_lock:
        return _limits.setdefault(key, EndpointLimit(size))


class RemoteCaptioner:
    """Captions through a remote endpoint; see the module docstring."""

    kind = KIND
    architecture = KIND
    styles = CAPTION_STYLES  # an instruction-following model writes every style when asked
    prompt_option = PromptOption(style="instruction", example="Describe the colours of this photo in one sentence.")
    needs_warm_up = False  # nothing to warm here, and each warm-up image would be a request to the endpoint

    def __init__(self, name: str, info: BundleInfo, settings: RemoteSettings):
        self.name, self.info, self.settings = name, info, settings
        self.default_decoding = Decoding(max_length=DEFAULT_MAX_WORDS, alternatives=0)
        self.limit = shared_limit(name, settings)
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=len(settings.urls), pool_maxsize=self.limit.size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.headers = {"Content-Type": "application/json"}
        if settings.key_env:
            key = environment.secret(settings.key_env)
            if not key:
                raise ModelError(f"the remote model {name!r} reads its API key from ${settings.key_env}, "
                                 "which is not set; export it before starting")
            self.headers["Authorization"] = f"Bearer {key}"

    def caption(self, images: Sequence, decoding: Decoding | None = None) -> list[Caption]:
        decoding = decoding or self.default_decoding
        if len(images) <= 1:
            return [self.caption_one(image, decoding) for image in images]
        with ThreadPoolExecutor(max_workers=min(len(images), self.limit.size),
                                thread_name_prefix=f"remote-{self.name}") as pool:
            return list(pool.map(lambda image: self.caption_one(image, decoding), images))

    def caption_one(self, image, decoding: Decoding) -> Caption:
        settings = self.settings
        jpeg = encode_jpeg(image, settings.max_side, settings.jpeg_quality)
        url = settings.urls[next(self.limit.turns) % len(settings.urls)]
        address, body = request_for(settings.api, url, settings.model, jpeg, decoding, settings.logprobs,
                                    settings.extra)
        with self.limit.semaphore:
            answer = post_json(self.session, address, body, self.headers, settings)
        return caption_of(read_answer(settings.api, answer), decoding)


def caption_of(answer: Answer, decoding: Decoding) -> Caption:
    """The caption of an endpoint's answer, written in the style asked for and cut at ``max_length`` words; its
    score is the log-probability of the tokens up to the cut (None when the endpoint gave none)."""
    raw = answer.text
    if decoding.style == "keywords":
        keywords = keywords_of(raw, decoding.max_length)
        return Caption(", ".join(keywords), score_up_to(answer, len(raw)), keywords=keywords)
    start = 0
    if decoding.style == "alt-text":
        found = PREAMBLE.match(raw)
        start = found.end() if found else 0
    body = raw[start:]
    kept = words_end(body, decoding.max_length)
    if decoding.style == "alt-text" and kept > ALT_TEXT_CHARACTERS:
        space = body.rfind(" ", 0, ALT_TEXT_CHARACTERS + 1)
        kept = space if space > 0 else ALT_TEXT_CHARACTERS
    end = start + kept
    text = raw[start:end].strip()
    if start and text:
        text = text[0].upper() + text[1:]
    return Caption(text, score_up_to(answer, end))


def words_end(text: str, words: int) -> int:
    """Where ``text`` ends after its first ``words`` words (the whole text when it has no more)."""
    found = list(re.finditer(r"\S+", text))
    return found[words - 1].end() if len(found) > words else len(text)


def keywords_of(text: str, max_words: int) -> tuple[str, ...]:
    """Lower-case, de-duplicated keywords in the model's order, as many as fit in ``max_words`` words."""
    keywords, seen, words = [], set(), 0
    for part in KEYWORD_SEPARATORS.split(text):
        keyword = " ".join(LIST_MARKS.sub("", part).strip(" .\"'").lower().split())
        if not keyword or keyword in seen:
            continue
        words += len(keyword.split())
        if words > max_words:
            break
        seen.add(keyword)
        keywords.append(keyword)
    return tuple(keywords)


def score_up_to(answer: Answer, end: int) -> float | None:
    """The summed log-probability of the answer's tokens that lie within its first ``end`` characters (as the
    stripped text counts them); None when the endpoint gave no log-probabilities."""
    if not answer.token_log_probs:
        return None
    written = "".join(answer.token_texts)
    position = -(len(written) - len(written.lstrip()))  # leading spaces are not in the stripped text
    total = 0.0
    for token, log_prob in zip(answer.token_texts, answer.token_log_probs):
        if position >= end:
            break
        total += log_prob
        position += len(token)
    return total


def load(bundle_dir, info: BundleInfo) -> RemoteCaptioner:
    """A remote bundle as a captioner (no request is sent until it captions)."""
    return RemoteCaptioner(info.name, info, RemoteSettings.from_dict(info.settings.get("remote")))
