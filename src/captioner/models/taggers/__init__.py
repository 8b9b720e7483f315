"""Taggers: models whose answer is a list of tags (the ``keywords`` style) with a probability each, such as
SmilingWolf's WD taggers (:mod:`.wd`), loaded from a folder or by a pinned short name (:mod:`.pretrained`)."""

from __future__ import annotations

from pathlib import Path

from captioner.models.bundle import BundleInfo
from captioner.models.taggers.selection import TaggerSettings
from captioner.models.taggers.wd import KIND, WDTagger, is_tagger_folder, load_folder, with_settings


def load(bundle_dir: Path, info: BundleInfo) -> WDTagger:
    """A tagger bundle: captioner.json (kind tagger, its settings under "tagger") beside the published files."""
    settings = TaggerSettings(**{key: tuple(value) if isinstance(value, list) else value
                                 for key, value in (info.settings.get("tagger") or {}).items()})
    tagger = load_folder(bundle_dir, info.name, settings)
    tagger.info = info
    return tagger


def load_pretrained(name_or_folder) -> WDTagger:
    """A tagger folder (model.onnx and selected_tags.csv) by path, or a known tagger by short name or hub id."""
    from captioner.models.taggers.pretrained import known_tagger, tagger_folder

    known = known_tagger(str(name_or_folder))
    if known is not None and not Path(str(name_or_folder)).is_dir():
        return load_folder(tagger_folder(known), known.name)
    return load_folder(name_or_folder)


__all__ = ["KIND", "TaggerSettings", "WDTagger", "is_tagger_folder", "load", "load_pretrained", "with_settings"]
