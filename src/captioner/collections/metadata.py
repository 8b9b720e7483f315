"""Writing captions where photo managers read them (digiKam, Immich, PhotoPrism, Lightroom), with exiftool.

Two ways, both off unless asked for:
- ``sidecar``: an XMP file beside the photo, ``IMG_0001.jpg.xmp`` (an existing one is updated, its other
  tags kept); the photo itself is not touched;
- ``embed``: into the photo: XMP ``dc:description`` (the caption as the default language, translations as
  language alternatives), EXIF ``ImageDescription`` and, in JPEGs, IPTC ``Caption-Abstract``. exiftool
  rewrites only the metadata blocks, never the pixels, and keeps every other tag; it writes a new file
  beside the photo, which replaces the photo only when complete (:func:`captioner.files.atomic_path`).
  Formats exiftool cannot embed into (GIF, BMP) get a sidecar instead.

exiftool (Phil Harvey's Perl program, Debian ``libimage-exiftool-perl``) runs as a separate process.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from captioner.collections.results import ResultRow
from captioner.errors import CaptionerError
from captioner.files import atomic_path, flush_to_disk

MODES = ("sidecar", "embed")
EMBED_ALL = {"JPEG", "MPO"}  # XMP, EXIF and IPTC
EMBED_XMP_EXIF = {"PNG", "WEBP", "HEIF", "AVIF"}  # no IPTC block in these formats
TIMEOUT_S = 60  # longest one exiftool call may take


class MetadataError(CaptionerError):
    """exiftool is missing, or could not write a photo's metadata."""


@dataclass(frozen=True)
class MetadataWriter:
    """Writes each captioned row's caption (and translations) into its photo or a sidecar."""

    mode: str  # "sidecar" or "embed"
    languages: tuple[str, ...] = ()  # translations written as XMP language alternatives
    exiftool: str = "exiftool"  # the program to run

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"metadata must be one of {', '.join(MODES)}, not {self.mode!r}")

    def check(self) -> None:
        """Fail early, with how to fix it, when exiftool is not installed."""
        if shutil.which(self.exiftool) is None:
            raise MetadataError("writing photo metadata needs the exiftool program; install it "
                                "(Debian/Ubuntu: apt-get install libimage-exiftool-perl, macOS: brew install exiftool)")

    def plan(self) -> str:
        """One sentence saying what the run will write."""
        description = "XMP dc:description" + (f" (English, with {', '.join(self.languages)} alternatives)"
                                              if self.languages else "")
        if self.mode == "sidecar":
            return (f"Writing {description} to an XMP sidecar beside each photo (PHOTO.xmp after its full name, "
                    "e.g. IMG_0001.jpg.xmp); the photos are not touched.")
        return (f"Writing the caption into each photo: {description}, EXIF ImageDescription, and IPTC "
                "Caption-Abstract in JPEGs (HEIC, AVIF, PNG and WebP get XMP and EXIF; GIF and BMP an XMP "
                "sidecar). Pixels and all other tags stay as they are.")

    def describe(self, row: ResultRow) -> str:
        """What ``write`` would put where, for a dry run."""
        target, tags = self._target_and_tags(row)
        shown = "; ".join(f"{name}={value!r}" for name, value in tags)
        return f"{target}: {shown}"

    def write(self, row: ResultRow) -> Path:
        """Write the row's caption; returns the file written. Raises MetadataError when exiftool fails."""
        target, tags = self._target_and_tags(row)
        source = Path(row.path) if target == Path(row.path) else (target if target.exists() else None)
        arguments = [self.exiftool, "-q", "-q", "-m", "-P", "-charset", "iptc=UTF8"]
        arguments += [f"-{name}={value}" for name, value in tags]
        with atomic_path(target) as staging:
            command = [*arguments, "-o", str(staging)] + ([str(source)] if source else [])
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise MetadataError(f"exiftool took more than {TIMEOUT_S} s on {row.path}") from None
            if done.returncode != 0 or not staging.exists():
                message = (done.stderr or done.stdout).strip().splitlines()
                raise MetadataError(f"exiftool could not write {target}: {message[0] if message else 'no output'}")
            if source is not None:
                shutil.copymode(source, staging)
            flush_to_disk(staging)
        return target

    def _target_and_tags(self, row: ResultRow) -> tuple[Path, list[tuple[str, str]]]:
        if not row.caption:
            raise ValueError(f"{row.path} has no caption to write")
        photo = Path(row.path)
        kind = image_format(photo)
        xmp = [("XMP-dc:Description", row.caption)]
        xmp += [(f"XMP-dc:Description-{code}", text) for code, text in sorted(row.translations.items())
                if code in self.languages or not self.languages]
        if self.mode == "sidecar" or kind not in EMBED_ALL | EMBED_XMP_EXIF:
            return sidecar_path(photo), xmp
        tags = xmp + [("EXIF:ImageDescription", row.caption)]
        if kind in EMBED_ALL:
            tags += [("IPTC:CodedCharacterSet", "UTF8"), ("IPTC:Caption-Abstract", row.caption)]
        return photo, tags


def sidecar_path(photo: Path) -> Path:
    """``IMG_0001.jpg`` -> ``IMG_0001.jpg.xmp`` (digiKam's, darktable's and Immich's first choice)."""
    return photo.with_name(photo.name + ".xmp")


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
