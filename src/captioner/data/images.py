"""The one safe image loader every front end uses (command line, web page, API, evaluation, training).

``load_image`` accepts a path, bytes or a binary file object and returns an RGB ``PIL.Image``:
- only JPEG, PNG, GIF, WebP, BMP, HEIC/HEIF and AVIF (what phones save), decided by the content, never by
  the file name (HEIC through pillow-heif, AVIF through Pillow's own plugin);
- images above ``max_pixels`` are refused before they are decoded (decompression bombs);
- the whole image is decoded, so truncated or corrupt files are refused here, not later;
- the EXIF orientation is applied, so a phone photo stands the right way up;
- every mode becomes RGB (transparency composited on white, 16-bit and float scaled to 8 bits);
- animations give their first frame.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import BinaryIO, Union

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from captioner.errors import ImageError

ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "HEIF", "AVIF")
OPENED_AS = {*ALLOWED_FORMATS, "MPO"}  # Pillow names multi-picture phone JPEGs "MPO"
SUPPORTED = "a JPEG, PNG, GIF, WebP, BMP, HEIC or AVIF file"  # what to send instead, in messages
DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels: an 8 MP phone photo passes, a pixel bomb does not
WHITE = (255, 255, 255)
TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
         5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
         8: Image.Transpose.ROTATE_90}  # EXIF orientation -> the turn that stands the picture upright

ImageSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO]


def load_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None,
               name: str | None = None, orientation: int | None = None) -> Image.Image:
    """Read one image safely and return it as RGB; ``max_side`` also shrinks it to fit that many pixels.
    ``orientation`` (an EXIF orientation, 1 to 8) is applied instead of the file's own: a RAW photo's
    embedded preview stands the way the RAW file says, whatever the preview's own header claims.

    Raises ImageError with a message naming the image (``name``, else the path) and what to do.
    """
    register_phone_formats()
    label = name or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the image")
    if max_pixels < 1:
        raise ValueError("max_pixels must be at least 1")
    handle = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray)) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error" if max_pixels <= Image.MAX_IMAGE_PIXELS else "ignore",
                                  Image.DecompressionBombWarning)
            image = Image.open(handle, formats=ALLOWED_FORMATS)
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{label} is a folder, not an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{label} has too many pixels to be read safely (more than {max_pixels:,}); "
                         "send a smaller image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label} is not a supported image; send {SUPPORTED}") from None
    except OSError as error:
        raise ImageError(f"{label} could not be read: {error}") from None
    with image:
        return _decode(image, label, max_pixels, max_side, orientation)


def register_phone_formats() -> None:
    """Teach Pillow to open HEIC/HEIF (pillow-heif applies the photo's rotation while decoding); once."""
    if "HEIF" in Image.OPEN:
        return
    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # without it HEIC files are refused as unsupported, like any other format
        return
    register_heif_opener()


def image_from_bytes(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None,
                     name: str = "the upload") -> Image.Image:
    """``load_image`` for bytes that came over the network (an upload, an API body)."""
    if not data:
        raise ImageError(f"{name} is empty; send an image file")
    return load_image(bytes(data), max_pixels=max_pixels, max_side=max_side, name=name)


def fit_within(image: Image.Image, max_side: int) -> Image.Image:
    """The image shrunk (never enlarged) so that its longer side is at most ``max_side`` pixels."""
    if max_side < 1:
        raise ValueError("max_side must be at least 1")
    width, height = image.size
    if max(width, height) <= max_side:
        return image
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _decode(image: Image.Image, label: str, max_pixels: int, max_side: int | None,
            orientation: int | None = None) -> Image.Image:
    if image.format not in OPENED_AS:
        raise ImageError(f"{label} is a {image.format} image; send {SUPPORTED}")
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(f"{label} is {width}x{height} pixels, more than the {max_pixels:,} allowed; "
                         "send a smaller image")
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        if max_side and image.format in ("JPEG", "MPO"):
            image.draft("RGB", (max_side, max_side))  # decode at a reduced scale: much faster for big photos
        if ImageFile.LOAD_TRUNCATED_IMAGES:
            raise ImageError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; unset it so damaged images are refused")
        image.load()  # the full decode: truncated or corrupt data fails here
        oriented = (ImageOps.exif_transpose(image) if orientation is None
                    else image.transpose(TURNS[orientation]) if orientation in TURNS else image.copy())
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as error:
        raise ImageError(f"{label} is damaged or truncated ({error}); send the complete file") from None
    rgb = to_rgb(oriented)
    return fit_within(rgb, max_side) if max_side else rgb


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as RGB: transparency composited on white, wide integer and float data scaled to 8 bits."""
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode == "P" or mode == "PA":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _wide_to_rgb(image)
    return image.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV


def _wide_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float grey images to 8-bit RGB: 16-bit ranges scale by 1/257; floats in
    [0, 1] scale by 255; anything else is stretched from its own minimum to its maximum."""
    import numpy as np

    values = np.asarray(image, dtype=np.float64)  # (height, width)
    low, high = float(values.min()), float(values.max())
    if image.mode.startswith("I;16") or (image.mode == "I" and low >= 0 and high > 255 and high <= 65535):
        scaled = values / 257.0
    elif image.mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0
    elif low >= 0 and high <= 255:
        scaled = values
    else:
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    grey = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    return grey.convert("RGB")
