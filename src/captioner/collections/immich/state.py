"""What captioner wrote into an Immich library, kept on this machine (Immich has no place for it).

One file per server, a journal of JSON lines: each line says what captioner just wrote to one asset, either
the provenance record of its description (model, style, prompt, settings digest, version, date and the exact
text) or the tags it added and the settings that made them. Read back, the last line for an asset wins. A
later run uses it to tell captioner's own description (still exactly the text recorded: replaced when the
settings change, left when they did not) from a person's (anything else, including an edit of captioner's
text). A line is appended and flushed to disk after every write to Immich, so a run stopped at any point
resumes from the last asset written, and a large library costs one short line per change; a line torn by a
crash is cut off when the file is next opened.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

from captioner import environment


def default_state_path(url: str) -> Path:
    """``CACHE/immich/HOST-PORT.jsonl``: one state per server."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    name = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{parts.hostname or 'immich'}-{parts.port or parts.scheme}")
    return environment.current().cache_base / "immich" / f"{name}.jsonl"


class ImmichState:
    """The records of one server's assets, read at start; ``remember`` appends each change."""

    def __init__(self, path: Path, server: str):
        self.path = Path(path)
        self.server = server
        self._lock = threading.Lock()
        self.assets: dict[str, dict] = {}
        if self.path.exists():
            self._replay()

    def _replay(self) -> None:
        data = self.path.read_bytes()
        complete = data[:data.rfind(b"\n") + 1]  # a torn last line (a crash mid-write) is no record
        for number, line in enumerate(complete.splitlines(), 1):
            try:
                entry = json.loads(line)
                self.assets.setdefault(str(entry["asset"]), {}).update(
                    {key: value for key, value in entry.items() if key != "asset"})
            except (ValueError, KeyError, TypeError, AttributeError):
                raise ValueError(f"line {number} of the Immich state {self.path} is not a record; move the file "
                                 "away to start afresh (captioner then treats its earlier descriptions as a "
                                 "person's)") from None
        if len(complete) < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))

    def description(self, asset_id: str) -> dict:
        """The provenance record of the description captioner wrote to ``asset_id`` ({} if none)."""
        return dict(self.assets.get(asset_id, {}).get("description") or {})

    def tags(self, asset_id: str) -> list[str]:
        """The tags captioner added to ``asset_id``."""
        return list(self.assets.get(asset_id, {}).get("tags") or [])

    def tags_source(self, asset_id: str) -> dict:
        """The provenance record (without text) of the run that last added tags to ``asset_id`` ({} if none)."""
        return dict(self.assets.get(asset_id, {}).get("tags_source") or {})

    def remember(self, asset_id: str, description: dict | None = None, tags: list[str] | None = None,
                 tags_source: dict | None = None) -> None:
        """Record what was just written to ``asset_id``: one line appended and flushed to disk."""
        change: dict = {}
        if description is not None:
            change["description"] = description
        if tags is not None:
            change["tags"] = sorted(set(self.tags(asset_id)) | set(tags))
        if tags_source is not None:
            change["tags_source"] = tags_source
        line = json.dumps({"asset": asset_id, **change}, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self.assets.setdefault(asset_id, {}).update(change)
