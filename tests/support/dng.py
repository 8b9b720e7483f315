"""DNG files written by a real DNG encoder (pidng's), as a camera or converter lays them out: IFD0 holds the
raw sensor data (12-bit Bayer mosaic) with the camera's tags and orientation, and a second directory holds
the reduced-size JPEG preview that photo software shows (and that captioner captions)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def write_dng(path: Path, preview: Image.Image | None, *, orientation: int = 1, size=(256, 192)) -> Path:
    """A DNG of a random mosaic of ``size`` with ``preview`` (an RGB picture, stored as a JPEG) embedded, or
    none when ``preview`` is None; ``orientation`` is the EXIF orientation of IFD0."""
    from pidng.defs import CFAPattern, DNGVersion
    from pidng.dng import DNG, Tag, dngIFD, dngTag
    from pidng.packing import pack12

    width, height = size
    mosaic = np.random.default_rng(0).integers(0, 4095, (height, width)).astype(np.uint16)
    dng = DNG()
    dng.ImageDataStrips.append(pack12(mosaic).tobytes())
    raw = dngIFD()
    raw_offsets = dngTag(Tag.TileOffsets, [0])
    raw.tags += [raw_offsets, dngTag(Tag.NewSubfileType, [0]), dngTag(Tag.ImageWidth, [width]),
                 dngTag(Tag.ImageLength, [height]), dngTag(Tag.TileWidth, [width]), dngTag(Tag.TileLength, [height]),
                 dngTag(Tag.TileByteCounts, [len(dng.ImageDataStrips[0])]), dngTag(Tag.Compression, [1]),
                 dngTag(Tag.PhotometricInterpretation, [32803]), dngTag(Tag.SamplesPerPixel, [1]),
                 dngTag(Tag.BitsPerSample, [12]), dngTag(Tag.CFARepeatPatternDim, [2, 2]),
                 dngTag(Tag.CFAPattern, CFAPattern.BGGR), dngTag(Tag.Orientation, [orientation]),
                 dngTag(Tag.Make, "TestCam"), dngTag(Tag.Model, "One"), dngTag(Tag.UniqueCameraModel, "TestCam One"),
                 dngTag(Tag.Software, "PiDNG"), dngTag(Tag.DNGVersion, DNGVersion.V1_4),
                 dngTag(Tag.DNGBackwardVersion, DNGVersion.V1_2), dngTag(Tag.WhiteLevel, [4095])]
    dng.IFDs.append(raw)
    preview_offsets = None
    if preview is not None:
        jpeg = io.BytesIO()
        preview.save(jpeg, "JPEG", quality=92)
        dng.ImageDataStrips.append(jpeg.getvalue())
        shown = dngIFD()
        preview_offsets = dngTag(Tag.StripOffsets, [0])
        shown.tags += [dngTag(Tag.NewSubfileType, [1]), dngTag(Tag.ImageWidth, [preview.width]),
                       dngTag(Tag.ImageLength, [preview.height]), dngTag(Tag.BitsPerSample, [8, 8, 8]),
                       dngTag(Tag.Compression, [7]), dngTag(Tag.PhotometricInterpretation, [6]),
                       dngTag(Tag.SamplesPerPixel, [3]), preview_offsets, dngTag(Tag.RowsPerStrip, [preview.height]),
                       dngTag(Tag.StripByteCounts, [len(dng.ImageDataStrips[1])]), dngTag(Tag.PreviewColorSpace, [2])]
        dng.IFDs.append(shown)
        raw.NextIFDOffset = 8 + raw.dataLen()
    total = dng.dataLen()  # places the strips: their offsets are known from here on
    raw_offsets.setValue([dng.StripOffsets[0]])
    if preview_offsets is not None:
        preview_offsets.setValue([dng.StripOffsets[1]])
    data = bytearray(total)
    dng.setBuffer(data)
    dng.write()
    path.write_bytes(bytes(data))
    return path
