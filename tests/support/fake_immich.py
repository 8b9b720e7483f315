"""A local stand-in for an Immich server: a real HTTP server answering the calls the connector makes, with the
request and response shapes of Immich's OpenAPI document (``open-api/immich-openapi-specs.json``).

It checks the ``x-api-key`` header (401 ``Invalid API key`` otherwise, as Immich answers), refuses the calls a
key lacks the permission for (403 ``Missing required permission: ...``), and can be told to fail the next
requests to a path (``fail(...)``: a 429 with ``Retry-After``, a 500, ...). Everything asked is recorded.
"""

from __future__ import annotations

import io
import json
import random
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "immich-test-key"
PERMISSIONS = {("GET", "asset"): "asset.read", ("GET", "thumbnail"): "asset.view", ("PUT", "asset"): "asset.update",
               ("PUT", "tags"): "tag.create", ("PUT", "tags/assets"): "tag.asset", ("POST", "search"): "asset.read"}


@dataclass
class FakeAsset:
    id: str
    description: str = ""
    album: str | None = None
    thumbnail: bytes = b""
    tags: set = field(default_factory=set)  # tag ids


@dataclass
class FakeImmich:
    assets: dict[str, FakeAsset] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # name -> id
    denied: set = field(default_factory=set)  # permissions the key lacks
    failures: list = field(default_factory=list)  # [method, path regex, status, retry_after, times left]
    requests: list = field(default_factory=list)  # (method, path)
    page_sizes: list = field(default_factory=list)  # the size each search asked for
    key: str = KEY
    url: str = ""

    def add_images(self, count: int, album: str | None = None) -> list[str]:
        """``count`` image assets with shapes thumbnails (JPEG, as Immich makes previews); their ids."""
        from captioner.data.shapes import make_picture

        rng = random.Random(len(self.assets))
        made = []
        for _ in range(count):
            picture, _ = make_picture(rng)
            out = io.BytesIO()
            picture.convert("RGB").save(out, format="JPEG", quality=90)
            asset = FakeAsset(str(uuid.UUID(int=rng.getrandbits(128))), album=album, thumbnail=out.getvalue())
            self.assets[asset.id] = asset
            made.append(asset.id)
        return made

    def fail(self, method: str, path: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests whose path matches the regex ``path`` with ``status``."""
        self.failures.append([method, re.compile(path), status, retry_after, times])

    def writes(self, path_start: str = "/api/assets/") -> list[str]:
        return [path for method, path in self.requests if method == "PUT" and path.startswith(path_start)]

    def tag_names(self, asset_id: str) -> set[str]:
        names = {tag_id: name for name, tag_id in self.tags.items()}
        return {names[tag_id] for tag_id in self.assets[asset_id].tags}


def start_fake_immich(fake: FakeImmich) -> tuple[FakeImmich, ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    return fake, server


def _handler(fake: FakeImmich):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

        def do_PUT(self):
            self._handle("PUT")

        def _answer(self, status: int, body, headers: dict | None = None, content_type="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, headers: dict | None = None):
            names = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
                     500: "Internal Server Error", 400: "Bad Request"}
            self._answer(status, {"message": message, "error": names.get(status, "Error"), "statusCode": status},
                         headers)

        def _handle(self, method: str):
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null") if length else None
            with lock:
                fake.requests.append((method, path))
                failure = next((f for f in fake.failures if f[0] == method and f[1].fullmatch(path) and f[4] > 0),
                               None)
                if failure:
                    failure[4] -= 1
            if path == "/api/server/version" and method == "GET":  # public in Immich: no key needed
                return self._answer(200, {"major": 1, "minor": 132, "patch": 3})
            if self.headers.get("x-api-key") != fake.key:
                return self._error(401, "Invalid API key")
            if failure:
                return self._error(failure[2], "failing on purpose",
                                   {"Retry-After": failure[3]} if failure[3] is not None else None)
            route = self._route(method, path)
            if route is None:
                return self._error(404, f"Cannot {method} {path}")
            name, handler, *params = route
            permission = PERMISSIONS.get((method, name))
            if permission in fake.denied:
                return self._error(403, f"Missing required permission: {permission}")
            with lock:
                return handler(body, query, *params)

        def _route(self, method: str, path: str):
            if method == "POST" and path == "/api/search/metadata":
                return ("search", self._search)
            if method == "PUT" and path == "/api/tags":
                return ("tags", self._upsert_tags)
            if method == "PUT" and path == "/api/tags/assets":
                return ("tags/assets", self._tag_assets)
            found = re.fullmatch(r"/api/assets/([0-9a-f-]+)(/thumbnail)?", path)
            if found and found[1] in fake.assets:
                if found[2]:
                    return ("thumbnail", self._thumbnail, found[1]) if method == "GET" else None
                return ("asset", self._get_asset if method == "GET" else self._update_asset, found[1])
            return None

        def _search(self, body, query):
            if body.get("type") != "IMAGE":
                return self._error(400, "expected type IMAGE")
            page, size = int(body.get("page", 1)), int(body.get("size", 250))
            fake.page_sizes.append(size)
            chosen = [a for a in fake.assets.values() if not body.get("albumIds") or a.album in body["albumIds"]]
            items = chosen[(page - 1) * size:page * size]
            more = page * size < len(chosen)
            return self._answer(200, {"albums": {"count": 0, "facets": [], "items": [], "nextPage": None, "total": 0},
                                      "assets": {"count": len(items), "facets": [], "total": len(items),
                                                 "items": [_asset_json(a) for a in items],
                                                 "nextPage": str(page + 1) if more else None}})

        def _get_asset(self, body, query, asset_id):
            return self._answer(200, _asset_json(fake.assets[asset_id]))

        def _update_asset(self, body, query, asset_id):
            if not isinstance(body, dict) or not isinstance(body.get("description", ""), str):
                return self._error(400, "description must be a string")
            fake.assets[asset_id].description = body.get("description", fake.assets[asset_id].description)
            return self._answer(200, _asset_json(fake.assets[asset_id]))

        def _thumbnail(self, body, query, asset_id):
            if "size=preview" not in query:
                return self._error(400, "size must be thumbnail, preview or fullsize")
            return self._answer(200, fake.assets[asset_id].thumbnail, content_type="image/jpeg")

        def _upsert_tags(self, body, query):
            answer = []
            for name in body["tags"]:
                tag_id = fake.tags.setdefault(name, str(uuid.uuid4()))
                answer.append({"id": tag_id, "name": name.rsplit("/", 1)[-1], "value": name,
                               "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z"})
            return self._answer(200, answer)

        def _tag_assets(self, body, query):
            known = set(fake.tags.values())
            if not set(body["tagIds"]) <= known or not set(body["assetIds"]) <= set(fake.assets):
                return self._error(400, "unknown tag or asset")
            for asset_id in body["assetIds"]:
                fake.assets[asset_id].tags |= set(body["tagIds"])
            return self._answer(200, {"count": len(body["assetIds"]) * len(body["tagIds"])})

    return Handler


def _asset_json(asset: FakeAsset) -> dict:
    return {"id": asset.id, "type": "IMAGE", "originalFileName": f"{asset.id[:8]}.jpg", "isFavorite": False,
            "exifInfo": {"description": asset.description, "make": None, "model": None}}
