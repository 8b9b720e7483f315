"""Writing captions where photo managers read them (digiKam, Lightroom, Immich, PhotoPrism), with exiftool,
without ever losing a person's words.

What goes where (each field only when asked for, ``--write``):
- ``description``: XMP ``dc:description`` (translations as language alternatives); embedded, also EXIF
  ``ImageDescription`` and, in JPEGs, IPTC ``Caption-Abstract``;
- ``keywords``: XMP ``dc:subject`` (and, embedded in JPEGs, IPTC ``Keywords``), merged with the keywords
  already there: none repeated (case-insensitive), none of a person's removed;
- ``alt-text``: ``Iptc4xmpCore:AltTextAccessibility``; ``detailed``: ``Iptc4xmpCore:ExtDescrAccessibility``
  (the IPTC 2021 accessibility fields);
- beside each, captioner's provenance record (:mod:`captioner.collections.provenance`).

Two places: ``sidecar`` (an XMP file beside the photo, ``IMG_0001.jpg.xmp`` or, with ``sidecar_name="base"``,
``IMG_0001.xmp``; an existing one is updated in place) or ``embed`` (into the photo; formats exiftool cannot
embed into, GIF and BMP, and RAW files always get a sidecar). exiftool rewrites only metadata blocks, never
pixels, and keeps every other tag; the new file replaces the old only when complete.

Text already there (in the photo or either sidecar) is handled by ``existing``: ``skip`` (the default) leaves
a person's or another tool's text alone and reports it, ``replace`` writes over it, ``append`` adds the
caption after it, ``prepend`` puts it before (:mod:`captioner.collections.existing_text`, the rule every
write target shares). captioner's own earlier text (it still matches the provenance record) is replaced when the
model, style or settings changed, and left as it is when they did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from captioner.collections.existing_text import EXISTING, check_existing, decide
from captioner.collections.exiftool import MetadataError, check_exiftool, read_tags, write_tags
from captioner.collections.provenance import RECORD_TAGS, Provenance

__all__ = ["EXISTING", "FIELDS", "MODES", "MetadataError", "MetadataWriter", "PhotoPlan", "PhotoTexts", "Text",
           "sidecar_path"]

MODES = ("sidecar", "embed")
FIELDS = ("description", "keywords", "alt-text", "detailed")  # what --write may name
SIDECAR_NAMES = ("full", "base")  # IMG_0001.CR2.xmp (darktable, digiKam, Immich) or IMG_0001.xmp (Lightroom)
EMBED_ALL = {"JPEG", "MPO"}  # XMP, EXIF and IPTC
EMBED_XMP_EXIF = {"PNG", "WEBP", "HEIF", "AVIF"}  # no IPTC block in these formats
APPENDED = "\n\n"  # between a person's text and the caption appended to it
# Placeholders cameras write into ImageDescription: nobody's words, so they count as no text.
CAMERA_PLACEHOLDERS = frozenset({"olympus digital camera", "sony dsc", "digital camera", "default",
                                 "minolta digital camera", "konica minolta digital camera", "samsung digital camera",
                                 "kodak digital still camera", "sony digital camera", "image", "picture"})
# Where each text field is read from (the default-language values) and written to.
DEFAULT_VALUES = {"description": ("XMP-dc:Description", "IPTC:Caption-Abstract", "IFD0:ImageDescription"),
                  "alt-text": ("XMP-iptcCore:AltTextAccessibility",),
                  "detailed": ("XMP-iptcCore:ExtDescrAccessibility",)}
KEYWORD_TAGS = ("XMP-dc:Subject", "IPTC:Keywords")
LABELS = {"description": "description", "keywords": "keywords", "alt-text": "alt text", "detailed": "detailed"}


@dataclass(frozen=True)
class Text:
    """One field captioner means to write into a photo, and what wrote it."""

    field: str  # one of FIELDS
    value: str  # the text; for keywords the words joined by ", "
    provenance: Provenance
    words: tuple[str, ...] = ()  # keywords only
    translations: dict = field(default_factory=dict)  # description only: {"de": "..."}


@dataclass(frozen=True)
class PhotoTexts:
    """Everything to write for one photo."""

    photo: Path
    texts: tuple[Text, ...]


@dataclass
class PhotoPlan:
    """What a write will do to one photo: the tags to set, and per field what happens and why."""

    photo: Path
    target: Path  # the photo itself, or its sidecar
    source: Path | None  # the file exiftool starts from (None: a new sidecar)
    tags: dict = field(default_factory=dict)  # {"GROUP:Tag": value}
    actions: list[tuple[str, str]] = field(default_factory=list)  # (field, "new"|"updated"|... |"kept: why")

    @property
    def kept(self) -> list[str]:
        """Fields left as a person (or another tool) wrote them."""
        return [name for name, action in self.actions if action.startswith("kept")]

    def describe(self) -> str:
        """One line for a dry run: the target, and each field's action and new value."""
        shown = []
        for name, action in self.actions:
            value = self._shown_value(name)
            shown.append(f"{LABELS[name]} {action}" + (f" {value!r}" if value and not action.startswith(("kept",
                                                                                     "unchanged")) else ""))
        return f"{self.target}: " + "; ".join(shown)

    def _shown_value(self, name: str):
        tag = {"description": "XMP-dc:Description", "keywords": "XMP-dc:Subject",
               "alt-text": "XMP-iptcCore:AltTextAccessibility",
               "detailed": "XMP-iptcCore:ExtDescrAccessibility"}[name]
        return self.tags.get(tag, self.tags.get(tag + "-x-default"))


@dataclass(frozen=True)
class MetadataWriter:
    """Plans and writes each photo's texts, protecting the text that is already there."""

    mode: str  # "sidecar" or "embed"
    languages: tuple[str, ...] = ()  # translations written as XMP language alternatives of the description
    fields: tuple[str, ...] = ("description",)  # which of FIELDS to write
    existing: str = "skip"  # one of EXISTING
    sidecar_name: str = "full"  # one of SIDECAR_NAMES
    exiftool: str = "exiftool"  # the program to run

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"metadata must be one of {', '.join(MODES)}, not {self.mode!r}")
        unknown = [name for name in self.fields if name not in FIELDS]
        if unknown or not self.fields:
            raise ValueError(f"--write takes one or more of {', '.join(FIELDS)}, not {','.join(unknown) or 'nothing'}")
        check_existing(self.existing)
        if self.sidecar_name not in SIDECAR_NAMES:
            raise ValueError(f"--sidecar-name must be one of {', '.join(SIDECAR_NAMES)}, not {self.sidecar_name!r}")

    def check(self) -> None:
        """Fail early, with how to fix it, when exiftool is not installed."""
        check_exiftool(self.exiftool)

    def plan(self) -> str:
        """One sentence saying what the run will write."""
        what = ", ".join(LABELS[name] for name in self.fields)
        if "description" in self.fields and self.languages:
            what += f" (with {', '.join(self.languages)} translations)"
        example = "IMG_0001.CR2.xmp" if self.sidecar_name == "full" else "IMG_0001.xmp"
        where = (f"to an XMP sidecar beside each photo (e.g. {example}); the photos are not touched"
                 if self.mode == "sidecar" else
                 f"into each photo (XMP, EXIF and, in JPEGs, IPTC; RAW, GIF and BMP files get a sidecar, "
                 f"e.g. {example}); pixels and all other tags stay as they are")
        protect = {"skip": "text a person or another tool wrote is left as it is",
                   "replace": "text a person or another tool wrote is REPLACED",
                   "append": "the caption is added after text a person or another tool wrote",
                   "prepend": "the caption is put before text a person or another tool wrote"}[self.existing]
        return f"Writing {what} {where}; {protect} (--existing {self.existing})."

    def target(self, photo: Path) -> Path:
        """Where the texts of ``photo`` go: the photo itself or its sidecar."""
        from captioner.collections.raw import is_raw

        if self.mode == "sidecar" or is_raw(photo) or image_format(photo) not in EMBED_ALL | EMBED_XMP_EXIF:
            return sidecar_path(photo, self.sidecar_name)
        return photo

    def plan_photo(self, texts: PhotoTexts) -> PhotoPlan:
        """What writing ``texts`` would change, decided against the tags the photo and its sidecars hold."""
        photo = texts.photo
        target = self.target(photo)
        sources = [photo, sidecar_path(photo, "full"), sidecar_path(photo, "base")]
        found = read_tags(list(dict.fromkeys(sources)), self.exiftool)
        readings = [found[path] for path in dict.fromkeys([target, *sources]) if path in found]
        plan = PhotoPlan(photo, target, target if target.exists() else None)
        iptc = target == photo and image_format(photo) in EMBED_ALL
        for text in (text for text in texts.texts if text.field in self.fields):
            if text.field == "keywords":
                self._plan_keywords(plan, text, readings, iptc)
            else:
                self._plan_text(plan, text, readings, embedded=target == photo, iptc=iptc)
        return plan

    def write(self, plan: PhotoPlan) -> Path | None:
        """Carry out ``plan``; the file written, or None when there was nothing to change."""
        if not plan.tags:
            return None
        return write_tags(plan.target, plan.tags, source=plan.source, program=self.exiftool)

    def _plan_text(self, plan: PhotoPlan, text: Text, readings: list[dict], *, embedded: bool, iptc: bool) -> None:
        defaults = DEFAULT_VALUES[text.field]
        xmp_tag = defaults[0]
        values = [(key, _text(value)) for tags in readings for key, value in tags.items()
                  if (key in defaults or key.startswith(xmp_tag + "-")) and _meaningful(value)]
        record = _record(readings, text.field)
        ours = record.get("Text") if record else None
        default_values = [value for key, value in values if key in defaults]
        decision = decide(default_values, ours, text.provenance.same_source(record), text.value, self.existing,
                          APPENDED, anything=bool(values))
        action, value, wholly_ours = decision.action, decision.value, decision.wholly_ours
        plan.actions.append((text.field, action))
        if value is None:
            return
        if wholly_ours:  # every language alternative goes: they translated the old text; ours come with the new
            plan.tags[xmp_tag] = value
            if text.field == "description":
                for code, translation in sorted(text.translations.items()):
                    if not self.languages or code in self.languages:
                        plan.tags[f"{xmp_tag}-{code}"] = translation
        else:  # the person's own language alternatives stay: only the default language is written
            plan.tags[xmp_tag + "-x-default"] = value
        if text.field == "description" and embedded:
            plan.tags["EXIF:ImageDescription"] = value
            if iptc:
                plan.tags["IPTC:CodedCharacterSet"] = "UTF8"
                plan.tags["IPTC:Caption-Abstract"] = value
        plan.tags[RECORD_TAGS[text.field]] = text.provenance.record(text.value)

    def _plan_keywords(self, plan: PhotoPlan, text: Text, readings: list[dict], iptc: bool) -> None:
        record = _record(readings, "keywords")
        ours_before = {str(word).lower() for word in _listed(record.get("Words")) if record}
        present: dict[str, str] = {}  # lower-case -> as written, every keyword already there, in order
        for tags in readings:
            for tag in KEYWORD_TAGS:
                for word in _listed(tags.get(tag)):
                    present.setdefault(_text(word).lower(), _text(word))
        person = [word for lower, word in present.items() if lower not in ours_before]
        taken = {word.lower() for word in person}
        added = tuple(dict.fromkeys(word for word in text.words if word.lower() not in taken))
        if record and text.provenance.same_source(record):
            plan.actions.append(("keywords", "unchanged"))
            return
        if not added and not ours_before:
            plan.actions.append(("keywords", "unchanged" if text.words else "none found"))
            return
        merged = person + list(added)
        plan.actions.append(("keywords", f"+{len(added)} merged with {len(person)}" if person else "new"))
        plan.tags["XMP-dc:Subject"] = merged
        if iptc:
            plan.tags["IPTC:CodedCharacterSet"] = "UTF8"
            plan.tags["IPTC:Keywords"] = merged
        plan.tags[RECORD_TAGS["keywords"]] = text.provenance.record(", ".join(added), added)


def _record(readings: list[dict], name: str) -> dict:
    """captioner's provenance record for field ``name``: the first found (the target is read first)."""
    for tags in readings:
        record = tags.get(RECORD_TAGS[name])
        if isinstance(record, dict):
            return record
    return {}


def _text(value) -> str:
    return value if isinstance(value, str) else str(value)


def _listed(value) -> list:
    return [] if value in (None, "") else value if isinstance(value, list) else [value]


def _meaningful(value) -> bool:
    """Whether a value is someone's text (not empty, not a camera's placeholder)."""
    text = " ".join(_text(value).split())
    return bool(text) and text.lower() not in CAMERA_PLACEHOLDERS


def sidecar_path(photo: Path, name: str = "full") -> Path:
    """``IMG_0001.CR2`` -> ``IMG_0001.CR2.xmp`` (full: darktable, digiKam, Immich) or ``IMG_0001.xmp``
    (base: Lightroom, Capture One)."""
    return photo.with_name(photo.name + ".xmp") if name == "full" else photo.with_suffix(".xmp")


def image_format(path: Path) -> str | None:
    """Pillow's name for the file's format, from its header, or None."""
    from PIL import Image

    from captioner.data.images import ALLOWED_FORMATS, register_phone_formats

    register_phone_formats()
    try:
        with Image.open(path, formats=ALLOWED_FORMATS) as header:
            return header.format
    except Exception:  # noqa: BLE001 - any unreadable file simply has no format
        return None
