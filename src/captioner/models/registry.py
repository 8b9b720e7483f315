"""Finding and loading captioners by bundle name, path or model id.

Each model kind lives in its own module, imported only when a model of that kind is loaded, so the
command line and the web app start without TensorFlow or PyTorch. A kind module exposes
``load(bundle_dir: Path, info: BundleInfo) -> Captioner``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from captioner.errors import ModelError
from captioner.models.base import Captioner
from captioner.models.bundle import BundleInfo, is_bundle, list_bundles, models_dir, read_bundle_info

KIND_MODULES = {
    "lstm": "captioner.models.lstm",
    "attention": "captioner.models.attention",
    "vit-gpt2": "captioner.models.vit_gpt2",
}

# Names that mean "the pretrained model from the hub" when no bundle of that name is installed.
PRETRAINED_ALIASES = {
    "vit-gpt2": "nlpconnect/vit-gpt2-image-captioning",
    "nlpconnect/vit-gpt2-image-captioning": "nlpconnect/vit-gpt2-image-captioning",
}


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


def load_captioner(name_or_path: str | os.PathLike, models_folder: str | os.PathLike | None = None) -> Captioner:
    """Load a captioner from a bundle name, a bundle path, or a pretrained alias such as ``vit-gpt2``."""
    bundle = resolve_bundle(name_or_path, models_folder)
    if bundle is not None:
        info = read_bundle_info(bundle)
        return kind_module(info.kind).load(bundle, info)
    if str(name_or_path) in PRETRAINED_ALIASES:
        return kind_module("vit-gpt2").load_pretrained(PRETRAINED_ALIASES[str(name_or_path)])
    installed = ", ".join(info.name for _, info in list_bundles(models_folder)) or "none"
    raise ModelError(
        f"no model bundle named {str(name_or_path)!r} in {models_dir(models_folder)} (installed: {installed}); "
        "train one with 'captioner train', or name a bundle folder"
    )


def available_captioners(models_folder: str | os.PathLike | None = None) -> list[BundleInfo]:
    """What ``captioner models`` lists: every installed bundle's info."""
    return [info for _, info in list_bundles(models_folder)]
