"""Finding and loading captioners by bundle name, path or model id.

Each model kind lives in its own module, imported only when a model of that kind is loaded, so the
command line and the web app start without TensorFlow or PyTorch. A kind module exposes
``load(bundle_dir: Path, info: BundleInfo) -> Captioner``.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

from captioner.errors import ModelError
from captioner.models.base import Captioner
from captioner.models.bundle import BundleInfo, is_bundle, list_bundles, models_dir, read_bundle_info
from captioner.models.pretrained import known_model

KIND_MODULES = {
    "lstm": "captioner.models.lstm",
    "image-to-text": "captioner.models.image_to_text",
    "vit-gpt2": "captioner.models.image_to_text",  # bundles written before BLIP and GIT joined that kind
}

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # "owner/name", as the hub spells repositories


def kind_module(kind: str):
    if kind not in KIND_MODULES:
        raise ModelError(f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(KIND_MODULES))}")
    return importlib.import_module(KIND_MODULES[kind])


def resolve_bundle(name_or_path: str | os.PathLike, folder: str | os.PathLike | None = None) -> Path | None:
    """The bundle folder meant by a name (inside the models folder) or a path; None when there is none."""
    candidate = Path(name_or_path)
    if is_bundle(candidate):
        return candidate
    inside = models_dir(folder) / str(name_or_path)
    if is_bundle(inside):
        return inside
    return None


def names_pretrained(text: str) -> bool:
    """True for a ``save_pretrained`` folder, a pretrained short name or a hub id (``owner/name``)."""
    return ((Path(text).expanduser() / "config.json").is_file() or known_model(text) is not None
            or bool(HUB_ID.match(text) and not Path(text).exists()))


def load_captioner(name_or_path: str | os.PathLike, models_folder: str | os.PathLike | None = None) -> Captioner:
    """Load a captioner from a bundle name, a bundle path, a ``save_pretrained`` folder, a pretrained short name
    such as ``blip-base`` or any hub id of an image-to-text model (local cache first)."""
    bundle = resolve_bundle(name_or_path, models_folder)
    if bundle is not None:
        info = read_bundle_info(bundle)
        return kind_module(info.kind).load(bundle, info)
    text = str(name_or_path)
    if names_pretrained(text):
        return kind_module("image-to-text").load_pretrained(text)
    installed = ", ".join(info.name for _, info in list_bundles(models_folder)) or "none"
    raise ModelError(
        f"no model bundle named {text!r} in {models_dir(models_folder)} (installed: {installed}); "
        "train one with 'captioner train', name a bundle or model folder, or a pretrained model "
        "(vit-gpt2, blip-base, blip-large, git-base-coco, florence-2-base, florence-2-base-ft or a hub id)"
    )


def available_captioners(models_folder: str | os.PathLike | None = None) -> list[BundleInfo]:
    """What ``captioner models`` lists: every installed bundle's info."""
    return [info for _, info in list_bundles(models_folder)]
