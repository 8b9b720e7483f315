"""Finding and loading captioners by bundle name, path or model id.

Each model kind lives in its own module, imported only when a model of that kind is loaded, so the
command line and the web app start without TensorFlow or PyTorch. A kind module exposes
``load(bundle_dir: Path, info: BundleInfo) -> Captioner``; a kind that also reads plain folders (a
``save_pretrained`` folder or a copied hub snapshot, without ``captioner.json``) exposes
``load_pretrained(folder) -> Captioner`` and is named in :data:`PLAIN_FOLDER_KINDS`.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from pathlib import Path

from captioner.errors import ModelError
from captioner.models.base import Captioner
from captioner.models.bundle import BundleInfo, is_bundle, list_bundles, models_dir, read_bundle_info
from captioner.models.taggers.pretrained import KNOWN_TAGGERS, known_tagger
from captioner.models.taggers.wd import KIND as TAGGER_KIND
from captioner.models.taggers.wd import GRAPH_FILE as TAGGER_GRAPH
from captioner.models.transformers.architectures import ARCHITECTURES
from captioner.models.transformers.pretrained import KNOWN_MODELS, known_model

KIND_MODULES = {
    "lstm": "captioner.models.keras.lstm",
    "attention": "captioner.models.keras.attention",
    "image-to-text": "captioner.models.transformers.image_to_text",
    "vit-gpt2": "captioner.models.transformers.image_to_text",  # bundles written before BLIP and GIT joined that kind
    "remote": "captioner.models.remote",  # a model served by an OpenAI-compatible or Ollama endpoint
    "tagger": "captioner.models.taggers",  # a WD tagger's ONNX graph and tag list
}

# A plain folder's kind, by the ``model_type`` of its config.json (the image-to-text architectures).
PLAIN_FOLDER_KINDS = {model_type: "image-to-text"
                      for architecture in ARCHITECTURES.values() for model_type in architecture.model_types}

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # "owner/name", as the hub spells repositories


def kind_module(kind: str):
    if kind not in KIND_MODULES:
        raise ModelError(f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(KIND_MODULES))}")
    return importlib.import_module(KIND_MODULES[kind])


def plain_folder_kind(path: str | os.PathLike) -> str | None:
    """The kind of a plain model folder (config.json, or a tagger's model.onnx and selected_tags.csv, and no
    captioner.json), or None when ``path`` is not one."""
    config = Path(path) / "config.json"
    if not is_bundle(path) and not config.is_file() and (Path(path) / TAGGER_GRAPH).is_file():
        return TAGGER_KIND
    if is_bundle(path) or not config.is_file():
        return None
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    return PLAIN_FOLDER_KINDS.get(model_type)


def plain_folder_info(path: str | os.PathLike) -> BundleInfo | None:
    """What a listing shows for a plain model folder (the model itself is not read); None when it is not one."""
    kind = plain_folder_kind(path)
    return None if kind is None else BundleInfo(kind=kind, name=Path(path).name, dataset="pretrained")


def resolve_bundle(name_or_path: str | os.PathLike, folder: str | os.PathLike | None = None) -> Path | None:
    """The bundle folder meant by a name (inside the models folder) or a path; None when there is none."""
    return _resolve(name_or_path, folder, is_bundle)


def resolve_model_folder(name_or_path: str | os.PathLike, folder: str | os.PathLike | None = None) -> Path | None:
    """The bundle or plain model folder meant by a name (inside the models folder) or a path; None when none."""
    return _resolve(name_or_path, folder, lambda path: is_bundle(path) or plain_folder_kind(path) is not None)


def _resolve(name_or_path, folder, accepts) -> Path | None:
    for candidate in (Path(name_or_path), models_dir(folder) / str(name_or_path)):
        if accepts(candidate):
            return candidate
    return None


def names_pretrained(text: str) -> bool:
    """True for a pretrained short name or a hub id (``owner/name`` that is no local path)."""
    return known_model(text) is not None or known_tagger(text) is not None or bool(HUB_ID.match(text) and not Path(text).exists())


def load_captioner(name_or_path: str | os.PathLike, models_folder: str | os.PathLike | None = None) -> Captioner:
    """Load a captioner from a bundle name or path, a plain model folder (``save_pretrained`` or a copied
    hub snapshot, or a tagger's folder) by name or path, a pretrained short name such as ``blip-base`` or
    ``wd-vit-tagger-v3``, or any hub id of an image-to-text model (local cache first)."""
    found = resolve_model_folder(name_or_path, models_folder)
    if found is not None and is_bundle(found):
        info = read_bundle_info(found)
        return kind_module(info.kind).load(found, info)
    if found is not None:
        return kind_module(plain_folder_kind(found)).load_pretrained(found)
    text = str(name_or_path)
    if known_tagger(text) is not None:
        return kind_module(TAGGER_KIND).load_pretrained(text)
    if names_pretrained(text) or (Path(text) / "config.json").is_file():  # the latter: says which type it is
        return kind_module("image-to-text").load_pretrained(text)
    installed = ", ".join(info.name for _, info in list_models(models_folder)) or "none"
    raise ModelError(
        f"no model bundle named {text!r} in {models_dir(models_folder)} (installed: {installed}); "
        "train one with 'captioner train', name a bundle or model folder, or a pretrained model "
        f"({', '.join([*KNOWN_MODELS, *KNOWN_TAGGERS])} or a hub id)"
    )


def list_models(models_folder: str | os.PathLike | None = None) -> list[tuple[Path, BundleInfo]]:
    """Every bundle and plain model folder directly inside the models folder, sorted by name."""
    root = models_dir(models_folder)
    plain = [(child, plain_folder_info(child)) for child in sorted(root.iterdir())] if root.is_dir() else []
    found = list_bundles(models_folder) + [(path, info) for path, info in plain if info is not None]
    return sorted(found, key=lambda item: item[0].name)


def available_captioners(models_folder: str | os.PathLike | None = None) -> list[BundleInfo]:
    """What ``captioner models`` lists: every installed model's info."""
    return [info for _, info in list_models(models_folder)]
