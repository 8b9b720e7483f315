"""Immich's HTTP API, only the calls the connector needs, with the shapes of Immich's OpenAPI document.

Every request carries the ``x-api-key`` header. A busy or failing server (429 and 5xx) is asked again after
the time its ``Retry-After`` says, else after a growing pause, a few times, then the run ends with an
error that says what happened; a wrong key (401) or a key without the permission a call needs (403) ends
it at once, in one line that says what to fix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from captioner.errors import CaptionerError

RETRIED = frozenset({429, 500, 502, 503, 504})
RETRIES = 4  # further tries of a request after a 429 or 5xx
BACKOFF_S = 0.5  # first pause without Retry-After; doubled each time
MAX_WAIT_S = 60.0  # longest pause honoured, whatever Retry-After asks
TIMEOUT_S = 60.0  # one request
PAGE_SIZE = 250  # assets per search page


class ImmichError(CaptionerError):
    """Immich refused or failed a request; the message says what to do."""


@dataclass
class ImmichClient:
    """A session with one Immich server."""

    url: str  # the server's address, e.g. http://immich.local:2283 (with or without /api)
    key: str  # an API key (Immich: Account settings > API keys)
    retries: int = RETRIES
    backoff_s: float = BACKOFF_S
    _session: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import requests

        if not self.key:
            raise ImmichError("no Immich API key: create one in Immich (Account settings > API keys) and put "
                              "it in the environment variable named by --key-env")
        self.url = self.url.rstrip("/").removesuffix("/api")
        self._session = requests.Session()
        self._session.headers.update({"x-api-key": self.key, "Accept": "application/json"})

    # -- the calls --------------------------------------------------------------------------------------
    def version(self) -> str:
        """The server's version ("1.132.3"): GET /api/server/version."""
        answer = self._request("GET", "/api/server/version").json()
        return f"{answer.get('major')}.{answer.get('minor')}.{answer.get('patch')}"

    def check_access(self, album: str | None = None) -> None:
        """Fail now, in one line, when the key is wrong or may not search the assets (one small search)."""
        next(iter(self.images(album, page_size=1)), None)

    def images(self, album: str | None = None, page_size: int = PAGE_SIZE):
        """Every image asset (of ``album``, when given), page after page: POST /api/search/metadata."""
        page = 1
        while page:
            body = {"type": "IMAGE", "page": page, "size": page_size}
            if album:
                body["albumIds"] = [album]
            assets = self._request("POST", "/api/search/metadata", json=body).json()["assets"]
            yield from assets.get("items", [])
            page = int(assets["nextPage"]) if assets.get("nextPage") else None

    def description(self, asset_id: str) -> str:
        """The asset's current description ("" when it has none): GET /api/assets/{id}."""
        exif = self._request("GET", f"/api/assets/{asset_id}").json().get("exifInfo") or {}
        return exif.get("description") or ""

    def thumbnail(self, asset_id: str) -> bytes:
        """The asset's preview-size thumbnail (JPEG or WebP, as the server makes them)."""
        return self._request("GET", f"/api/assets/{asset_id}/thumbnail", params={"size": "preview"}).content

    def set_description(self, asset_id: str, text: str) -> None:
        """PUT /api/assets/{id} with the new description."""
        self._request("PUT", f"/api/assets/{asset_id}", json={"description": text})

    def tag_ids(self, names: list[str]) -> dict[str, str]:
        """The id of each tag named (created where missing, reused where there): PUT /api/tags."""
        if not names:
            return {}
        tags = self._request("PUT", "/api/tags", json={"tags": names}).json()
        return {tag.get("value") or tag["name"]: tag["id"] for tag in tags}

    def tag_assets(self, tag_ids: list[str], asset_ids: list[str]) -> None:
        """Put every tag on every asset: PUT /api/tags/assets."""
        if tag_ids and asset_ids:
            self._request("PUT", "/api/tags/assets", json={"tagIds": tag_ids, "assetIds": asset_ids})

    # -- the transport ----------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **options):
        import requests

        for attempt in range(self.retries + 1):
            try:
                response = self._session.request(method, self.url + path, timeout=TIMEOUT_S, **options)
            except requests.RequestException as error:
                raise ImmichError(f"could not reach Immich at {self.url}: {type(error).__name__}; check --url "
                                  "and that the server is running") from None
            if response.status_code < 400:
                return response
            if response.status_code in RETRIED and attempt < self.retries:
                time.sleep(self._pause(response, attempt))
                continue
            raise self._failure(method, path, response)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _pause(self, response, attempt: int) -> float:
        """What ``Retry-After`` asks (seconds), else the backoff for this attempt; never above MAX_WAIT_S."""
        asked = response.headers.get("Retry-After", "")
        try:
            pause = float(asked)
        except ValueError:
            pause = self.backoff_s * 2 ** attempt
        return min(max(pause, 0.0), MAX_WAIT_S)

    def _failure(self, method: str, path: str, response) -> ImmichError:
        status = response.status_code
        try:
            detail = response.json().get("message") or ""
        except ValueError:
            detail = ""
        detail = "; ".join(detail) if isinstance(detail, list) else str(detail)
        if status == 401:
            return ImmichError(f"Immich refused the API key (HTTP 401{': ' + detail if detail else ''}); check "
                               "the key in the variable named by --key-env")
        if status == 403:
            return ImmichError(f"the Immich API key lacks a permission for {method} {path} (HTTP 403"
                               f"{': ' + detail if detail else ''}); give the key asset.read, asset.update, "
                               "asset.view, tag.create and tag.asset, or all permissions")
        if status in RETRIED:
            return ImmichError(f"Immich kept failing {method} {path} (HTTP {status} after {self.retries + 1} "
                               "tries); try again later, the run resumes where it stopped")
        return ImmichError(f"Immich answered {method} {path} with HTTP {status}{': ' + detail if detail else ''}")
