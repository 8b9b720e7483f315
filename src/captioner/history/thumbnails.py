"""Small JPEG thumbnails of uploads: re-encoded pixels only, so no metadata (EXIF, GPS, ICC, comments)
and never the uploaded file itself end up in the history."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

THUMBNAIL_SIZE = 320  # longest side of a thumbnail, in pixels
THUMBNAIL_QUALITY = 80  # JPEG quality of thumbnails (1-95)


def make_thumbnail(image: "Image.Image", size: int = THUMBNAIL_SIZE, quality: int = THUMBNAIL_QUALITY) -> bytes:
    """A JPEG of ``image`` at most ``size`` pixels a side, keeping its aspect ratio, without metadata.

    ``image`` should come through :func:`captioner.data.images.load_image`, which already turned it
    upright; the orientation tag is applied here again in case it did not, then dropped.
    """
    from PIL import Image, ImageOps

    if not 16 <= size <= 2048:
        raise ValueError(f"thumbnail size must be between 16 and 2048 pixels, not {size}")
    upright = ImageOps.exif_transpose(image)
    if upright.mode != "RGB":
        upright = upright.convert("RGB")
    # A new image from the pixels alone: nothing of the upload's info dict (exif, icc, comments) survives.
    pixels = Image.new("RGB", upright.size)
    pixels.paste(upright)
    pixels.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    pixels.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()
