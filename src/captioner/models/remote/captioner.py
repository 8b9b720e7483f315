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
from dataclasses import dataclass, field, replace
from typing import Sequence

import requests

from captioner import environment
from captioner.errors import ModelError
from captioner.models.base import CAPTION_STYLES, Caption, Decoding, PromptOption
from captioner.models.bundle import BundleInfo
from captioner.models.remote.protocols import Answer, encode_jpeg, read_answer, request_for
from captioner.models.remote.settings import RemoteSettings
from captioner.models.remote.transport import post_json
from captioner.models.styles import finish

KIND = "remote"
DEFAULT_MAX_WORDS = 60  # a detailed description needs room; a caption ends well before


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
    """The caption of an endpoint's answer: cut at ``max_length`` words, then finished in its style as every
    kind's caption is (:func:`captioner.models.styles.finish`). Its score is the log-probability of the tokens
    up to the cut, or up to where alt text ends (None when the endpoint gave no log-probabilities)."""
    raw = answer.text
    end = words_end(raw, decoding.max_length)
    caption = finish(Caption(raw[:end].strip(), score_up_to(answer, end)), decoding.style)
    if decoding.style == "alt-text" and caption.score is not None:
        kept = raw.find(caption.text[1:])  # finish upper-cases the first letter and drops a preamble
        if caption.text and kept > 0:
            caption = replace(caption, score=score_up_to(answer, kept + len(caption.text) - 1))
    return caption


def words_end(text: str, words: int) -> int:
    """Where ``text`` ends after its first ``words`` words (the whole text when it has no more)."""
    found = list(re.finditer(r"\S+", text))
    return found[words - 1].end() if len(found) > words else len(text)


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
