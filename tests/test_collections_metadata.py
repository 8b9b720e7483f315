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
    assert summary.captioned == 2 and summary.written == 2 and "IPTC" in said[0] and "pixels" in said[0]
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
    assert said[0].startswith("Dry run: would be Writing description to an XMP sidecar")
    assert sum(line.startswith("would write ") and "description new '" in line for line in said) == 2

    run_collection(job(photos, out, translate=(), metadata="sidecar"), captioner, captioner.default_decoding)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in photos.iterdir() if p.suffix != ".xmp"} == digests
    sidecar = photos / "phone.jpg.xmp"
    assert tags(sidecar)["XMP-dc:Description"] and (photos / "phone.heic.xmp").exists()


@pytest.mark.slow
def test_raw_photos_are_captioned_from_their_preview_into_sidecars_beside_a_persons_jpeg(captioner, demo_bundle,
                                                                                          runner, tmp_path):
    """A DNG (real encoder, turned by its orientation tag) is captioned from its embedded preview and gets a
    Lightroom-named sidecar that already existed (updated in place); a DNG without a preview is listed as
    unreadable; a JPEG whose caption a person wrote keeps it. The dry run first writes nothing."""
    pytest.importorskip("pidng")
    from support.dng import write_dng

    from captioner.collections import read_rows

    folder = tmp_path / "photos"
    folder.mkdir()
    preview = Image.new("RGB", (160, 120), "white")
    preview.paste((200, 30, 30), (20, 20, 80, 100))
    write_dng(folder / "IMG_0001.DNG", preview, orientation=6)
    write_dng(folder / "no-preview.dng", None)
    subprocess.run(["exiftool", "-q", "-q", "-o", str(folder / "IMG_0001.xmp"), "-XMP-xmp:Rating=5",
                    "-XMP-xmp:Label=Green"], check=True)
    preview.save(folder / "person.jpg")
    subprocess.run(["exiftool", "-q", "-q", "-overwrite_original", "-IPTC:Caption-Abstract=Anna at the lake",
                    str(folder / "person.jpg")], check=True)
    raw_bytes = (folder / "IMG_0001.DNG").read_bytes()
    arguments = ["collection", folder, "--out", tmp_path / "r.jsonl", "--model", demo_bundle, "--metadata", "embed",
                 "--write", "description,keywords,alt-text", "--sidecar-name", "base"]

    dry = runner(*arguments, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would write" in dry.stdout and "IMG_0001.xmp: description new" in dry.stdout
    assert tags(folder / "IMG_0001.xmp").get("XMP-dc:Description") is None

    done = runner(*arguments)
    assert done.returncode == 0, done.stderr
    assert "3 images found: 2 captioned" in done.stdout and "no-preview.dng" in done.stdout
    assert f"kept\t{folder / 'person.jpg'}\tdescription" in done.stdout
    rows = {Path(row.path).name: row for row in read_rows(tmp_path / "r.jsonl")}
    raw = rows["IMG_0001.DNG"]
    assert (raw.width, raw.height) == (192, 256)  # the RAW image's size, stood upright
    upright = captioner.caption([preview.transpose(Image.Transpose.ROTATE_270)], captioner.default_decoding)[0]
    assert raw.caption == upright.text  # captioned from the preview, turned as the DNG says
    assert "without an embedded preview" in rows["no-preview.dng"].error
    assert (folder / "IMG_0001.DNG").read_bytes() == raw_bytes and not (folder / "IMG_0001.DNG.xmp").exists()
    sidecar = tags(folder / "IMG_0001.xmp")
    assert sidecar["XMP-dc:Description"] == raw.caption and sidecar["XMP-xmp:Rating"] == 5
    assert sidecar["XMP-xmp:Label"] == "Green" and sidecar["XMP-iptcCore:AltTextAccessibility"]
    assert sidecar["XMP-captioner:DescriptionModel"] == raw.model
    assert tags(folder / "person.jpg")["IPTC:Caption-Abstract"] == "Anna at the lake"
