"""Captions translated through the real Azure backend (against the local fake service) and written into
photo metadata by the real exiftool, read back by exiftool and Pillow: the real phone photo and a HEIC."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support.fake_azure_translator import KEY, REGION, FakeAzureTranslator, fake_translation

pytest.importorskip("keras")
pytestmark = pytest.mark.skipif(shutil.which("exiftool") is None,
                                reason="exiftool is not installed (apt-get install libimage-exiftool-perl)")

# Tags exiftool reports about the file rather than its content, and the ones a run writes.
NOT_CONTENT = {"System", "File", "ExifTool", "Composite"}
WRITTEN = {"XMP-dc:Description", "XMP-dc:Description-de", "XMP-dc:Description-ar", "IFD0:ImageDescription",
           "IPTC:Caption-Abstract", "IPTC:CodedCharacterSet", "XMP-x:XMPToolkit", "IPTC:ApplicationRecordVersion",
           "IPTC:EnvelopeRecordVersion"}


@pytest.fixture(scope="module")
def captioner(demo_bundle):
    from captioner.models.registry import load_captioner

    return load_captioner(demo_bundle)


@pytest.fixture
def photos(phone_photo, tmp_path) -> Path:
    """A folder with a copy of the real phone photo and a HEIC with EXIF (make, orientation 6)."""
    pytest.importorskip("pillow_heif")
    from captioner.data.images import register_phone_formats

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(phone_photo, folder / "phone.jpg")
    register_phone_formats()
    with Image.open(phone_photo) as photo:
        small = photo.resize((320, 240))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "TestPhone", "Model 7", 6
    small.save(folder / "phone.heic", exif=exif.tobytes(), quality=80)
    return folder


def tags(path: Path) -> dict:
    done = subprocess.run(["exiftool", "-j", "-a", "-G1", str(path)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)[0]


def content_tags(path: Path) -> dict:
    """Every tag but those about the file and where blocks sit in it (offsets move when a block grows, and
    a HEIC keeps its EXIF and XMP items inside the media data)."""
    return {key: value for key, value in tags(path).items()
            if key.split(":")[0] not in NOT_CONTENT and not key.endswith(("Offset", "MediaDataSize"))}


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def job(folder: Path, out: Path, **changes):
    from captioner.collections import CollectionJob

    return CollectionJob(**{"roots": (str(folder),), "out": str(out), "translate": ("de", "ar"), **changes})


@pytest.mark.slow
def test_embedded_captions_and_translations_keep_pixels_and_every_other_tag(captioner, photos, tmp_path,
                                                                             monkeypatch):
    from captioner.collections import read_rows, run_collection

    before = {path.name: (pixels(path), content_tags(path)) for path in photos.iterdir()}
    said = []
    with FakeAzureTranslator() as fake:
        for name, value in {"KEY": KEY, "ENDPOINT": fake.endpoint, "LOCATION": REGION,
                            "CAPTIONER_TRANSLATOR": "azure"}.items():
            monkeypatch.setenv(name, value)
        summary = run_collection(job(photos, tmp_path / "r.jsonl", metadata="embed"), captioner,
                                 captioner.default_decoding, say=said.append)
        assert len(fake.requests) == 4  # two photos, two languages, through the real backend
    assert summary.captioned == 2 and "IPTC Caption-Abstract" in said[0] and "Pixels" in said[0]
    rows = {Path(row.path).name: row for row in read_rows(tmp_path / "r.jsonl")}
    for name, (old_pixels, old_tags) in before.items():
        path, row = photos / name, rows[name]
        assert row.translations == {code: fake_translation(row.caption, code) for code in ("de", "ar")}
        assert np.array_equal(pixels(path), old_pixels), f"{name}: pixels changed"
        new_tags = content_tags(path)
        kept = {key: value for key, value in old_tags.items() if key not in WRITTEN}
        assert {key: new_tags.get(key) for key in kept} == kept, f"{name}: other tags changed"
        assert new_tags["XMP-dc:Description"] == row.caption
        assert new_tags["XMP-dc:Description-de"] == row.translations["de"]
        assert new_tags["XMP-dc:Description-ar"] == row.translations["ar"]
        assert new_tags["IFD0:ImageDescription"] == row.caption
        if name.endswith(".jpg"):
            assert new_tags["IPTC:Caption-Abstract"] == row.caption
            with Image.open(path) as image:  # an independent reader of the EXIF block too
                assert image.getexif()[0x010E] == row.caption and image.getexif()[0x010F].rstrip("\x00") == "samsung"
    assert not [p.name for p in photos.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.slow
def test_dry_run_writes_nothing_and_sidecars_leave_the_photo_alone(captioner, photos, tmp_path, monkeypatch):
    from captioner.collections import run_collection

    monkeypatch.setenv("CAPTIONER_TRANSLATOR", "none")
    digests = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in photos.iterdir()}
    said = []
    out = tmp_path / "r.jsonl"
    summary = run_collection(job(photos, out, translate=(), metadata="sidecar", dry_run=True), captioner,
                             captioner.default_decoding, say=said.append)
    assert summary.captioned == 2 and not out.exists() and sorted(p.name for p in photos.iterdir()) == sorted(digests)
    assert said[0].startswith("Dry run: would be Writing XMP dc:description to an XMP sidecar")
    assert sum(line.startswith("would write ") and "XMP-dc:Description=" in line for line in said) == 2

    run_collection(job(photos, out, translate=(), metadata="sidecar"), captioner, captioner.default_decoding)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in photos.iterdir() if p.suffix != ".xmp"} == digests
    sidecar = photos / "phone.jpg.xmp"
    assert tags(sidecar)["XMP-dc:Description"] and (photos / "phone.heic.xmp").exists()
