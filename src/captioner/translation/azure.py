"""The Azure Translator REST API v3, as the original project called it.

``POST {ENDPOINT}/translate?api-version=3.0&from=en&to=xx`` with the subscription key and region in
headers and ``[{"text": ...}]`` as the body; the answer is ``[{"translations": [{"text", "to"}]}]``.
Configured by ``KEY``, ``ENDPOINT`` and ``LOCATION`` (environment or ``.env``).
"""

from __future__ import annotations

import uuid

import requests

from captioner.translation.base import (LANGUAGE_NAMES, ORIGINAL_LANGUAGES, SOURCE_LANGUAGE, TranslationError,
                                        check_request)

API_VERSION = "3.0"
DEFAULT_TIMEOUT = 10.0  # seconds to wait for the service to connect and to answer


class AzureTranslator:
    """Translates through an Azure Translator resource."""

    name = "azure"

    def __init__(self, key: str, endpoint: str, location: str = "", timeout: float = DEFAULT_TIMEOUT,
                 languages: tuple[str, ...] = ORIGINAL_LANGUAGES, session: requests.Session | None = None):
        if not key:
            raise ValueError("the Azure Translator needs KEY (the resource's subscription key)")
        if not endpoint or not endpoint.startswith(("https://", "http://")):
            raise ValueError(f"ENDPOINT must be the translator's URL, e.g. https://api.cognitive.microsofttranslator.com"
                             f" (got {endpoint!r})")
        if timeout <= 0:
            raise ValueError("the translation timeout must be positive")
        unknown = [code for code in languages if code not in LANGUAGE_NAMES]
        if unknown:
            raise ValueError(f"unknown translation language(s): {', '.join(unknown)}; "
                             f"known: {', '.join(LANGUAGE_NAMES)}")
        self.key = key
        self.endpoint = endpoint.rstrip("/")
        self.location = location
        self.timeout = timeout
        self._languages = {code: LANGUAGE_NAMES[code] for code in languages}
        self._session = session or requests.Session()

    def languages(self) -> dict[str, str]:
        return dict(self._languages)

    def translate(self, text: str, to: str) -> str:
        text = check_request(text, to, self._languages)
        headers = {
            "Ocp-Apim-Subscription-Key": self.key,
            "Content-type": "application/json",
            "X-ClientTraceId": str(uuid.uuid4()),
        }
        if self.location:
            headers["Ocp-Apim-Subscription-Region"] = self.location
        params = {"api-version": API_VERSION, "from": SOURCE_LANGUAGE, "to": to}
        try:
            response = self._session.post(f"{self.endpoint}/translate", params=params, headers=headers,
                                          json=[{"text": text}], timeout=self.timeout)
        except requests.Timeout:
            raise TranslationError(f"the translation service did not answer within {self.timeout:g} s; "
                                   "try again later") from None
        except requests.RequestException as error:
            raise TranslationError(f"cannot reach the translation service at {self.endpoint} "
                                   f"({type(error).__name__}); check ENDPOINT and the network") from None
        if response.status_code != 200:
            raise TranslationError(self._failure_message(response))
        try:
            return response.json()[0]["translations"][0]["text"]
        except (ValueError, LookupError, TypeError):
            raise TranslationError("the translation service sent an answer that is not a v3 translation "
                                   "([{\"translations\": [{\"text\": ...}]}]); check ENDPOINT") from None

    @staticmethod
    def _failure_message(response: requests.Response) -> str:
        status = response.status_code
        detail = ""
        try:
            detail = str(response.json()["error"]["message"])[:200]
        except (ValueError, LookupError, TypeError):
            pass
        suffix = f": {detail}" if detail else ""
        if status in (401, 403):
            return (f"the translation service refused the credentials ({status}{suffix}); "
                    "check KEY and LOCATION")
        if status == 429:
            return f"the translation service is rate-limiting requests (429{suffix}); wait a moment and try again"
        if status >= 500:
            return f"the translation service failed ({status}{suffix}); try again later"
        return f"the translation service rejected the request ({status}{suffix})"
