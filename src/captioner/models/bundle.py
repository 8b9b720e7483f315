"""Model bundles: a folder ``models/<name>/`` with ``captioner.json`` and the kind's own files.

``captioner.json`` records what made the model (kind, data set, backbone, settings) and how it scored,
so loading rebuilds the exact model and front ends can show its metrics. Nothing here is pickled.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from captioner import environment
from captioner.errors import ModelError
from captioner.files import staged_folder, write_json_atomic

BUNDLE_FILE = "captioner.json"
DEFAULT_MODELS_DIR = "models"


@dataclass
class BundleInfo:
    """The contents of ``captioner.json``."""

    kind: str  # model kind: "lstm", "vit-gpt2"
    name: str  # bundle name (the folder name)
    version: str = ""  # captioner version that wrote the bundle
    dataset: str = ""  # data set the model was trained on ("flickr8k", "shapes", "pretrained", ...)
    backbone: str = ""  # image encoder ("densenet201", "thumbnail", "google/vit-base-patch16-224", ...)
    settings: dict = field(default_factory=dict)  # the settings dataclasses that made the model, as dicts
    metrics: dict = field(default_factory=dict)  # evaluation results by split, e.g. {"test": {"BLEU-4": 0.21}}
    created_at: str = ""  # ISO 8601, UTC

    @classmethod
    def from_dict(cls, data: dict) -> "BundleInfo":
        if not isinstance(data, dict) or "kind" not in data or "name" not in data:
            raise ModelError("captioner.json must be an object with at least 'kind' and 'name'")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def models_dir(path: str | os.PathLike | None = None) -> Path:
    """The models folder: ``path`` if given, else ``$CAPTIONER_MODELS_DIR``, else ``./models``."""
    return Path(path or environment.current().models_dir or DEFAULT_MODELS_DIR)


@contextmanager
def staged_bundle(bundle_dir: str | os.PathLike) -> Iterator[Path]:
    """An empty staging folder to write a bundle of any kind into; it becomes ``bundle_dir`` only when the
    block ends without error and holds ``captioner.json``. An interrupted write leaves no folder that
    ``list_bundles`` (``captioner models``, the web app) would list or ``load_captioner`` would load."""
    with staged_folder(bundle_dir) as staging:
        yield staging
        if not is_bundle(staging):
            raise ModelError(f"the bundle {bundle_dir} was not completed: {BUNDLE_FILE} was never written")


def run_folder(bundle_dir: str | os.PathLike) -> Path:
    """Where a training run keeps its checkpoints until its bundle is complete: ``.NAME.training`` beside it."""
    bundle_dir = Path(bundle_dir)
    return bundle_dir.parent / f".{bundle_dir.name}.training"


def is_bundle(path: str | os.PathLike) -> bool:
    return (Path(path) / BUNDLE_FILE).is_file()


def read_bundle_info(bundle_dir: str | os.PathLike) -> BundleInfo:
    path = Path(bundle_dir) / BUNDLE_FILE
    if not path.is_file():
        raise ModelError(f"{bundle_dir} is not a model bundle: it has no {BUNDLE_FILE}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path} is not valid JSON ({error}); the bundle is damaged, train or copy it again") from None
    return BundleInfo.from_dict(data)


def write_bundle_info(bundle_dir: str | os.PathLike, info: BundleInfo) -> None:
    from captioner import __version__

    info.version = info.version or __version__
    info.created_at = info.created_at or utc_now()
    write_json_atomic(Path(bundle_dir) / BUNDLE_FILE, info.to_dict())


def record_metrics(bundle_dir: str | os.PathLike, split: str, metrics: dict) -> BundleInfo:
    """Store evaluation results for ``split`` in the bundle's ``captioner.json``; returns the new info."""
    info = read_bundle_info(bundle_dir)
    info.metrics = {**info.metrics, split: metrics}
    write_json_atomic(Path(bundle_dir) / BUNDLE_FILE, info.to_dict())
    return info


def list_bundles(folder: str | os.PathLike | None = None) -> list[tuple[Path, BundleInfo]]:
    """Every readable bundle directly inside the models folder, sorted by name; damaged ones are skipped."""
    root = models_dir(folder)
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and is_bundle(child):
            try:
                found.append((child, read_bundle_info(child)))
            except ModelError:
                continue
    return found


def bundle_size(bundle_dir: str | os.PathLike) -> int:
    """Bytes on disk of every file in the bundle."""
    return sum(p.stat().st_size for p in Path(bundle_dir).rglob("*") if p.is_file())
