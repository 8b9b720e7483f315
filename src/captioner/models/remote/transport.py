"""One JSON request to an endpoint, tried again when trying again can help.

A 429 or a 5xx answer, a timeout or a refused connection is tried again after a wait: the endpoint's own
``Retry-After`` when it sends one (seconds or an HTTP date), else an exponential backoff (``backoff_s``,
doubled for each further try), never longer than ``max_backoff_s``. Any other 4xx answer is a refusal
that no retry will change, and an answer that is not JSON is garbage: both fail at once. Whatever fails
ends as one :class:`~captioner.errors.RemoteError` that names the endpoint and what it did.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable

import requests

from captioner.errors import RemoteError

RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))  # busy, or failed in a way that may pass
MESSAGE_CHARACTERS = 200  # the most of an endpoint's own error message quoted in ours


def post_json(session: requests.Session, url: str, body: dict, headers: dict, settings,
              sleep: Callable[[float], None] = time.sleep) -> dict:
    """The decoded JSON answer of ``POST url``; RemoteError when it cannot be had (see the module docstring)."""
    tries = settings.retries + 1
    for attempt in range(tries):
        wait = min(settings.backoff_s * 2 ** attempt, settings.max_backoff_s)
        try:
            response = session.post(url, json=body, headers=headers, timeout=settings.timeout_s)
        except requests.Timeout:
            problem = f"gave no answer within {settings.timeout_s:g} s"
        except requests.ConnectionError as error:
            problem = f"cannot be reached ({connection_reason(error)})"
        else:
            if response.status_code == 200:
                return decoded(response, url)
            if response.status_code not in RETRY_STATUSES:
                raise RemoteError(refusal(response, url, settings), unavailable=False)
            problem = f"answered {response.status_code} {response.reason or ''}".rstrip()
            wait = min(retry_after(response.headers.get("Retry-After"), wait), settings.max_backoff_s)
        if attempt + 1 < tries:
            sleep(wait)
    raise RemoteError(f"the remote endpoint {url} {problem} ({tries} tr{'y' if tries == 1 else 'ies'}); "
                      "check that its server is running and reachable, or try again later")


def decoded(response: requests.Response, url: str) -> dict:
    try:
        data = response.json()
    except ValueError:
        start = response.text[:60].replace("\n", " ")
        raise RemoteError(f"the remote endpoint {url} answered something that is not JSON ({start!r}...); "
                          "check the URL and --api", unavailable=False) from None
    if not isinstance(data, dict):
        raise RemoteError(f"the remote endpoint {url} answered JSON that is not an object; check the URL and --api",
                          unavailable=False)
    return data


def refusal(response: requests.Response, url: str, settings) -> str:
    """What to tell the user when the endpoint refuses a request (a 4xx other than 408 and 429)."""
    status = response.status_code
    said = endpoint_message(response)
    hint = {401: "the API key was refused", 403: "the API key may not use this model",
            404: "check the URL (OpenAI endpoints usually end in /v1) and the model id"}.get(status, "")
    if status in (401, 403):
        hint += f" (it is read from ${settings.key_env})" if settings.key_env else "; register it with --key-env VAR"
    return "; ".join(part for part in (f"the remote endpoint {url} refused the request: {status} "
                                       f"{response.reason or ''}".rstrip() + (f" ({said})" if said else ""),
                                       hint) if part)


def endpoint_message(response: requests.Response) -> str:
    """The endpoint's own error message, from ``{"error": {"message": ...}}`` or ``{"error": "..."}``."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    message = error.get("message") if isinstance(error, dict) else error
    return str(message)[:MESSAGE_CHARACTERS] if message else ""


def retry_after(header: str | None, default: float) -> float:
    """Seconds to wait as a Retry-After header says (a number or an HTTP date); ``default`` when it says nothing."""
    if not header:
        return default
    text = header.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def connection_reason(error: requests.ConnectionError) -> str:
    text = str(error)
    for known, said in (("Connection refused", "connection refused"), ("Name or service not known", "unknown host"),
                        ("nodename nor servname", "unknown host"), ("Temporary failure in name resolution",
                                                                     "unknown host"),
                        ("Connection reset", "connection reset"), ("RemoteDisconnected", "connection closed")):
        if known in text:
            return said
    return type(error).__name__
