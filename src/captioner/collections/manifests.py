"""One manifest file for a training set, listing each image with the text of its caption file:

- ``hf``: Hugging Face ImageFolder's ``metadata.jsonl`` (``file_name`` relative to the manifest, ``text``), one
  in each split folder (``train/``, ``validation/``, ``test/``) where the folder has them, else one at its top;
  ``load_dataset("imagefolder", data_dir=FOLDER)`` reads it;
- ``musubi``: musubi-tuner's image JSONL (``image_path``, absolute, and ``caption``), ``musubi.jsonl``, named in
  a dataset config as ``image_jsonl_file``;
- ``kohya``: sd-scripts' fine-tuning metadata, ``meta_cap.json``, ``{image_key: {"caption": ..., "tags": ...}}``
  with each image's full path as its key (as ``merge_captions_to_metadata.py --full_path`` writes it), passed as
  ``in_json``; ``tags`` is the caption when it is a list of tags (no sentence ends in a full stop).

Only images with a non-empty caption file are listed. Each manifest is written whole, atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from captioner.collections.caption_files import caption_path, read_caption
from captioner.collections.walk import find_images
from captioner.files import write_json_atomic, write_text_atomic

MANIFESTS = ("hf", "musubi", "kohya")
SPLITS = ("train", "validation", "test")
FILE_NAMES = {"hf": "metadata.jsonl", "musubi": "musubi.jsonl", "kohya": "meta_cap.json"}


def check_manifest(kind: str | None) -> str | None:
    if kind is not None and kind not in MANIFESTS:
        raise ValueError(f"--manifest must be one of {', '.join(MANIFESTS)}, not {kind!r}")
    return kind


def captioned_images(folder: Path, extension: str) -> list[tuple[Path, str]]:
    """(image, caption) for every image under ``folder`` with a non-empty caption file."""
    found = []
    for image in find_images([folder]):
        text = read_caption(caption_path(image, extension))
        if text:
            found.append((image, text))
    return found


def write_manifests(kind: str, roots: Iterable[str | os.PathLike], extension: str = ".txt") -> list[Path]:
    """Write the ``kind`` manifest of each folder in ``roots``; the files written."""
    check_manifest(kind)
    written = []
    for root in (Path(root) for root in roots):
        if root.is_dir():
            written.extend(_write(kind, root, extension))
    return written


def _write(kind: str, root: Path, extension: str) -> list[Path]:
    if kind == "hf":
        splits = [root / name for name in SPLITS if (root / name).is_dir()]
        return [_imagefolder(folder, extension) for folder in splits or [root]]
    images = captioned_images(root, extension)
    target = root / FILE_NAMES[kind]
    if kind == "musubi":
        lines = [{"image_path": str(image.absolute()), "caption": text} for image, text in images]
        return [write_text_atomic(target, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))]
    metadata = {}
    for image, text in images:
        entry = {"caption": text}
        if "\n" not in text and not text.rstrip().endswith("."):
            entry["tags"] = text
        metadata[str(image.absolute())] = entry
    return [write_json_atomic(target, metadata)]


def _imagefolder(folder: Path, extension: str) -> Path:
    lines = [{"file_name": Path(os.path.relpath(image, folder)).as_posix(), "text": text}
             for image, text in captioned_images(folder, extension)]
    return write_text_atomic(folder / FILE_NAMES["hf"],
                             "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
