"""RAW photos (CR2, CR3, NEF, ARW, RAF, ORF, RW2, DNG): recognised by their content, captioned from the JPEG
preview the camera embedded in them, and never written into (their text goes to an XMP sidecar).

One safe path: the file's size is limited (MAX_RAW_BYTES), exiftool (a separate process, with a timeout)
extracts the largest embedded preview (``PreviewImage``, ``JpgFromRaw`` or ``OtherImage``), and the preview
goes through the one safe image loader (:func:`captioner.data.images.load_image`) turned by the RAW file's
own orientation (previews seldom carry one). A RAW file without a preview, or one exiftool cannot read, is
an :class:`~captioner.errors.ImageError` that names the file.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

from captioner.errors import ImageError

RAW_SUFFIXES = frozenset({".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".dng"})
MAX_RAW_BYTES = 512 * 1024 * 1024  # larger files are refused (the biggest medium-format RAWs are ~200 MB)
PREVIEW_TAGS = ("JpgFromRaw", "PreviewImage", "OtherImage")  # embedded JPEGs, the largest is taken
TIFF_HEADERS = (b"II*\x00", b"MM\x00*")
DNG_VERSION_TAG = 0xC612
HEAD_BYTES = 64 * 1024  # enough to find a TIFF's first directory in every camera's files


def raw_format(head: bytes, suffix: str = "") -> str | None:
    """The RAW format ("CR2", "DNG", ...) of a file from its first bytes (HEAD_BYTES of them, to find a DNG's
    tags) and its name's suffix, or None. Formats with a signature of their own are told by content alone;
    NEF and ARW are TIFF files told apart by their name, and a DNG by its DNGVersion tag, whatever its name."""
    suffix = suffix.lower()
    if head.startswith(b"FUJIFILMCCD-RAW"):
        return "RAF"
    if head[4:12] == b"ftypcrx ":
        return "CR3"
    if head.startswith((b"IIRO", b"IIRS", b"MMOR")):
        return "ORF"
    if head.startswith(b"IIU\x00"):
        return "RW2"
    if head.startswith(b"II*\x00") and head[8:10] == b"CR":
        return "CR2"
    if head.startswith(TIFF_HEADERS):
        if _has_dng_version(head):
            return "DNG"
        if suffix in (".nef", ".arw", ".dng"):
            return suffix[1:].upper()
    return None


def is_raw(path: Path) -> bool:
    """Whether the file at ``path`` is a RAW photo (by content, see :func:`raw_format`)."""
    try:
        with open(path, "rb") as handle:
            return raw_format(handle.read(HEAD_BYTES), path.suffix) is not None
    except OSError:
        return False


def load_raw_preview(data: bytes, *, name: str, max_pixels: int, max_side: int | None,
                     program: str = "exiftool"):
    """The upright RGB picture of a RAW file's largest embedded preview, with the RAW image's own upright
    (width, height); ImageError when the file is too large, unreadable or has no preview."""
    from captioner.collections.exiftool import MetadataError, run_exiftool
    from captioner.data.images import load_image

    if len(data) > MAX_RAW_BYTES:
        raise ImageError(f"{name} is a RAW file of {len(data) // 2**20} MB, more than the "
                         f"{MAX_RAW_BYTES // 2**20} MB allowed")
    try:
        output = run_exiftool(["-j", "-b", "-n", "-q", "-q", "-m", "-Orientation", "-ImageSize",
                               *(f"-{tag}" for tag in PREVIEW_TAGS), "-"], data=data, program=program, what=name)
        found = json.loads(output.decode("utf-8", "replace") or "[{}]")[0]
    except (MetadataError, ValueError, IndexError) as error:
        raise ImageError(f"{name} is a RAW file that exiftool cannot read ({error})") from None
    if found.get("Error"):
        raise ImageError(f"{name} is a RAW file that exiftool cannot read ({found['Error']})")
    previews = [base64.b64decode(value[7:]) for tag in PREVIEW_TAGS
                if isinstance(value := found.get(tag), str) and value.startswith("base64:")]
    if not previews:
        raise ImageError(f"{name} is a RAW file without an embedded preview to caption; convert it to JPEG "
                         "(or to a DNG with a preview) first")
    orientation = found.get("Orientation")
    orientation = orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1
    image = load_image(max(previews, key=len), max_pixels=max_pixels, max_side=max_side,
                       name=f"the preview in {name}", orientation=orientation)
    try:
        width, height = (int(part) for part in str(found.get("ImageSize")).replace("x", " ").split())
    except (TypeError, ValueError):  # no size in the file: the preview's (already upright)
        return image, image.size
    return image, ((height, width) if orientation >= 5 else (width, height))


def _has_dng_version(head: bytes) -> bool:
    """Whether a TIFF's first directory (within ``head``) holds the DNGVersion tag."""
    order = "<" if head[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(order + "I", head, 4)
        (count,) = struct.unpack_from(order + "H", head, offset)
        for index in range(min(count, 1000)):
            (tag,) = struct.unpack_from(order + "H", head, offset + 2 + 12 * index)
            if tag == DNG_VERSION_TAG:
                return True
    except struct.error:  # the directory lies beyond the bytes read, or the file is cut short
        return False
    return False
