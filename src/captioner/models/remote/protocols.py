"""The two protocols a remote model speaks, as pure functions: the request for one image, and the caption
read from the answer.

- OpenAI-compatible (OpenAI, vLLM, llama.cpp's server, LM Studio, Ollama's ``/v1``, captioner's own
  ``/v1``): ``POST {url}/chat/completions`` with one user message holding the instruction and the image as a
  base64 ``data:image/jpeg`` URL; the caption is ``choices[0].message.content`` and token log-probabilities,
  when asked for and given, are ``choices[0].logprobs.content[].logprob``.
- Ollama: ``POST {url}/api/generate`` with ``prompt``, ``images`` (base64, no data-URL prefix) and
  ``stream: false``; the caption is ``response`` and log-probabilities, when given, ``logprobs[].logprob``.

An answer that is not this shape raises :class:`~captioner.errors.RemoteError` (not unavailable): the
endpoint answered, but not as the protocol says.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from captioner.errors import RemoteError
from captioner.models.base import Decoding
from captioner.models.styles import INSTRUCTIONS
TOKENS_PER_WORD = 3  # generous: a caption of N words is cut at N words, so asking for more tokens costs nothing
TOKEN_ROOM = 16  # tokens beyond that, for punctuation and a model's opening words


@dataclass(frozen=True)
class Answer:
    """What an endpoint wrote for one image."""

    text: str  # the model's text, stripped
    token_texts: tuple[str, ...] = ()  # the generated tokens, when the endpoint gave log-probabilities
    token_log_probs: tuple[float, ...] = ()  # their log-probabilities, in the same order


def encode_jpeg(image, max_side: int, quality: int) -> bytes:
    """``image`` (RGB PIL) as JPEG bytes, shrunk to at most ``max_side`` pixels a side."""
    picture = image.convert("RGB")
    if max(picture.size) > max_side:
        picture = picture.copy()
        picture.thumbnail((max_side, max_side))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def instruction(decoding: Decoding) -> str:
    """What the model is asked to write: the free-text prompt when one was given, else the style's instruction
    (the same one a local vision-language model is given)."""
    return decoding.prompt.strip() or INSTRUCTIONS[decoding.style]


def sampling_options(decoding: Decoding) -> dict:
    """temperature, top_p and seed for the request: sampling as asked, else deterministic (temperature 0).
    Beam search is no option of these protocols: it is answered as greedy search (no alternatives)."""
    if decoding.method != "sample":
        return {"temperature": 0.0}
    options = {"temperature": decoding.temperature, "top_p": decoding.top_p}
    if decoding.seed is not None:
        options["seed"] = decoding.seed
    return options


def max_tokens(decoding: Decoding) -> int:
    return decoding.max_length * TOKENS_PER_WORD + TOKEN_ROOM


def request_for(api: str, url: str, model: str, jpeg: bytes, decoding: Decoding, logprobs: bool,
                extra: dict) -> tuple[str, dict]:
    """The address and JSON body of one image's request."""
    data = base64.b64encode(jpeg).decode("ascii")
    if api == "openai":
        body = {"model": model, "stream": False, "max_tokens": max_tokens(decoding),
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": instruction(decoding)},
                    {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{data}"}}]}],
                **sampling_options(decoding)}
        if logprobs:
            body["logprobs"] = True
        return f"{openai_base(url)}/chat/completions", {**body, **extra}
    body = {"model": model, "prompt": instruction(decoding), "images": [data], "stream": False,
            "options": {**sampling_options(decoding), "num_predict": max_tokens(decoding)}}
    if logprobs:
        body["logprobs"] = True
    return f"{url}/api/generate", {**body, **extra}


def openai_base(url: str) -> str:
    """An OpenAI base URL as OpenAI clients take it: ``http://host:8000`` means ``http://host:8000/v1``."""
    return f"{url}/v1" if urlsplit(url).path in ("", "/") else url


def read_answer(api: str, data) -> Answer:
    """The text (and log-probabilities, when given) of a decoded JSON answer; RemoteError for any other shape."""
    try:
        if api == "openai":
            choice = data["choices"][0]
            text = choice["message"]["content"]
            tokens = ((choice.get("logprobs") or {}).get("content") or []) if isinstance(choice, dict) else []
        else:
            text = data["response"]
            tokens = data.get("logprobs") or []
        if not isinstance(text, str):
            raise TypeError("the text is not a string")
        texts = tuple(str(token.get("token", "")) for token in tokens)
        log_probs = tuple(float(token["logprob"]) for token in tokens)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        where = "choices[0].message.content" if api == "openai" else "response"
        raise RemoteError(f"the endpoint's answer is not an {api} caption (no {where}: {error})",
                          unavailable=False) from None
    if not all(math.isfinite(value) for value in log_probs):
        log_probs, texts = (), ()
    return Answer(text.strip(), texts, log_probs)
