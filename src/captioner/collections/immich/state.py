"""What captioner wrote into an Immich library, kept on this machine (Immich has no place for it).

One JSON file per server: for each asset captioner wrote to, the provenance record of the description it
wrote (model, style, prompt, settings digest, version, date and the exact text) and the tags it added. A
later run reads it to tell captioner's own description (still exactly the text recorded: replaced when the
settings change, left when they did not) from a person's (anything else, including an edit of captioner's
text). The file is rewritten whole, through a temporary file, after every asset, so a run stopped at any
point resumes from the last asset written.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

from captioner import environment
from captioner.files import write_json_atomic

FORMAT = 1  # the state file's layout


def default_state_path(url: str) -> Path:
    """``CACHE/immich/HOST-PORT.json``: one state per server."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    name = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{parts.hostname or 'immich'}-{parts.port or parts.scheme}")
    return environment.current().cache_base / "immich" / f"{name}.json"


class ImmichState:
    """The records of one server's assets, read at start and saved after each change."""

    def __init__(self, path: Path, server: str):
        self.path = Path(path)
        self.server = server
        self._lock = threading.Lock()
        self.assets: dict[str, dict] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ValueError(f"the Immich state {self.path} cannot be read ({error}); move it away to start "
                                 "afresh (captioner then treats its earlier descriptions as a person's)") from None
            self.assets = dict(data.get("assets") or {})

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
        """Record what was just written to ``asset_id`` and save the file."""
        with self._lock:
            entry = dict(self.assets.get(asset_id, {}))
            if description is not None:
                entry["description"] = description
            if tags_source is not None:
                entry["tags_source"] = tags_source
            if tags is not None:
                entry["tags"] = sorted(set(entry.get("tags") or []) | set(tags))
            self.assets[asset_id] = entry
            write_json_atomic(self.path, {"format": FORMAT, "server": self.server, "assets": self.assets})
