"""Text written into photos as people's libraries hold them: files described by exiftool the way digiKam,
Lightroom, Photoshop, Windows and cameras describe them, written by the real exiftool and read back tag by
tag. A person's words are never lost, captioner's own text is known by its provenance, keywords merge."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(shutil.which("exiftool") is None,
                                reason="exiftool is not installed (apt-get install libimage-exiftool-perl)")

PERSON = "Grandma's garden, summer 1998"
# Tags about the file rather than its content, and where blocks sit in it.
NOT_CONTENT = {"System", "File", "ExifTool", "Composite"}
# What a write may add or change beside the fields it writes.
BOOKKEEPING = {"XMP-x:XMPToolkit", "IPTC:CodedCharacterSet", "IPTC:ApplicationRecordVersion",
               "IPTC:EnvelopeRecordVersion"}
# The tags exiftool adds when it makes a new EXIF block (to hold ImageDescription): required by the standard.
NEW_EXIF_BLOCK = {"IFD0:XResolution", "IFD0:YResolution", "IFD0:ResolutionUnit", "IFD0:YCbCrPositioning"}
# How each file's text was written (exiftool arguments), as the programs named write it.
LIBRARY = {
    # digiKam and Lightroom: dc:description with language alternatives, kept in step with IPTC and EXIF
    "lang-alt.jpg": [f"-XMP-dc:Description={PERSON}", "-XMP-dc:Description-de=Omas Garten, Sommer 1998",
                     f"-IPTC:Caption-Abstract={PERSON}", f"-EXIF:ImageDescription={PERSON}"],
    # Photoshop 6 and older tools: IPTC only (and a web editor's alt text)
    "iptc-only.jpg": [f"-IPTC:Caption-Abstract={PERSON}", "-XMP-iptcCore:AltTextAccessibility=Anna smiling"],
    # Windows Explorer and some cameras: EXIF only
    "exif-only.jpg": [f"-EXIF:ImageDescription={PERSON}"],
    # a camera's placeholder is nobody's words
    "camera.jpg": ["-EXIF:ImageDescription=OLYMPUS DIGITAL CAMERA", "-EXIF:Make=OLYMPUS IMAGING CORP."],
    # a person's faces (MWG regions, as digiKam and Lightroom write them; Microsoft's, as Windows Photo Gallery
    # did) and keywords; a rating and a GPS position
    "faces.jpg": ["-XMP-mwg-rs:RegionInfo={AppliedToDimensions={W=96,H=64,Unit=pixel},RegionList=[{Area={X=0.5,"
                  "Y=0.5,W=0.2,H=0.3,Unit=normalized},Name=Anna,Type=Face}]}",
                  "-XMP-MP:RegionInfoMP={Regions=[{PersonDisplayName=Anna,Rectangle=0.4, 0.35, 0.2, 0.3}]}",
                  "-XMP-dc:Subject=Anna", "-XMP-dc:Subject=Holiday", "-IPTC:Keywords=Anna", "-IPTC:Keywords=Holiday",
                  "-XMP-lr:HierarchicalSubject=People|Anna", "-XMP-xmp:Rating=4", "-GPSLatitude=48.1",
                  "-GPSLatitudeRef=N", "-GPSLongitude=11.5", "-GPSLongitudeRef=E"],
    "blank.jpg": [],
    "sidecar.jpg": [],
}


def exiftool(*arguments: str) -> None:
    subprocess.run(["exiftool", "-q", "-q", "-overwrite_original", *arguments], check=True)


def tags(path: Path) -> dict:
    done = subprocess.run(["exiftool", "-j", "-G1", "-a", "-struct", str(path)], capture_output=True, text=True,
                          check=True)
    return {key: value for key, value in json.loads(done.stdout)[0].items()
            if key.split(":")[0] not in NOT_CONTENT and key != "SourceFile"}


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture
def library(tmp_path) -> Path:
    """A folder of photos described as LIBRARY says, and a digiKam sidecar beside sidecar.jpg."""
    folder = tmp_path / "library"
    folder.mkdir()
    gradient = np.linspace(0, 255, 96 * 64 * 3).reshape(64, 96, 3).astype(np.uint8)
    for name, arguments in LIBRARY.items():
        Image.fromarray(gradient).save(folder / name, quality=90)
        if arguments:
            exiftool(*arguments, str(folder / name))
    exiftool("-o", str(folder / "sidecar.jpg.xmp"), f"-XMP-dc:Description={PERSON}", "-XMP-xmp:Label=Red",
             "-XMP-digiKam:TagsList=Family/Anna")
    return folder


def texts(photo: Path, caption="a dog runs on the grass", *, model="tiny-model", beam=3, fields=None):
    from captioner.collections.keywords import caption_nouns
    from captioner.collections.metadata import PhotoTexts, Text
    from captioner.collections.provenance import Provenance

    decoding = {"method": "beam", "beam_size": beam, "style": "caption"}
    source = Provenance.of(model, decoding, "caption")
    words = caption_nouns(caption)
    every = {"description": Text("description", caption, source, translations={"de": "ein Hund"}),
             "keywords": Text("keywords", ", ".join(words), Provenance.of(model, decoding, "caption-nouns"),
                              words=words),
             "alt-text": Text("alt-text", caption.capitalize(), source)}
    return PhotoTexts(photo, tuple(every[name] for name in (fields or every)))


def write_all(folder: Path, writer, **changes) -> dict:
    """Plan and write every photo of ``folder``; {photo name: plan}."""
    plans = {}
    for photo in sorted(folder.glob("*.jpg")):
        plan = writer.plan_photo(texts(photo, **changes))
        writer.write(plan)
        plans[photo.name] = plan
    return plans


def test_skip_keeps_every_persons_text_and_every_other_tag(library):
    from captioner.collections.metadata import MetadataWriter

    before = {path.name: (tags(path), pixels(path) if path.suffix == ".jpg" else None)
              for path in library.iterdir()}
    plans = write_all(library, MetadataWriter("embed", ("de",), ("description", "keywords", "alt-text")))

    kept = {name for name, plan in plans.items() if plan.kept}
    assert {name: plans[name].kept for name in kept} == {
        "lang-alt.jpg": ["description"], "iptc-only.jpg": ["description", "alt-text"],
        "exif-only.jpg": ["description"], "sidecar.jpg": ["description"]}
    for path in library.iterdir():
        old_tags, old_pixels = before[path.name]
        new_tags = tags(path)
        if old_pixels is not None:
            assert np.array_equal(pixels(path), old_pixels), f"{path.name}: pixels changed"
        written = {"XMP-dc:Subject", "IPTC:Keywords", "XMP-captioner:Keywords", "File:CurrentIPTCDigest"}
        if path.name != "iptc-only.jpg":
            written |= {"XMP-iptcCore:AltTextAccessibility", "XMP-captioner:AltText"}
        if path.name not in kept:
            written |= {"XMP-dc:Description", "XMP-dc:Description-de", "IFD0:ImageDescription",
                        "IPTC:Caption-Abstract", "XMP-captioner:Description"}
        changed = {key for key in old_tags if old_tags[key] != new_tags.get(key)}
        assert changed <= written | BOOKKEEPING, f"{path.name}: {sorted(changed - written - BOOKKEEPING)} changed"
        added = new_tags.keys() - old_tags.keys() - written - BOOKKEEPING
        assert added <= (NEW_EXIF_BLOCK if "IFD0:ImageDescription" in written else set()), f"{path.name}: {added}"
        if path.name in kept:  # the person's words, in every place and language they were
            for key in ("XMP-dc:Description", "XMP-dc:Description-de", "IPTC:Caption-Abstract",
                        "IFD0:ImageDescription"):
                assert new_tags.get(key) == old_tags.get(key), f"{path.name}: {key}"
    sidecar = tags(library / "sidecar.jpg.xmp")
    assert sidecar["XMP-dc:Description"] == PERSON and sidecar["XMP-xmp:Label"] == "Red"
    assert "XMP-captioner:Description" not in sidecar

    camera, faces = tags(library / "camera.jpg"), tags(library / "faces.jpg")
    assert camera["XMP-dc:Description"] == camera["IFD0:ImageDescription"] == "a dog runs on the grass"
    assert camera["XMP-dc:Description-de"] == "ein Hund"
    assert faces["XMP-dc:Subject"] == faces["IPTC:Keywords"] == ["Anna", "Holiday", "dog", "grass"]
    assert faces["XMP-captioner:Keywords"]["Words"] == ["dog", "grass"]
    assert faces["XMP-iptcCore:AltTextAccessibility"] == "A dog runs on the grass"
    record = faces["XMP-captioner:Description"]
    assert record["Model"] == "tiny-model" and record["Style"] == "caption" and record["Text"] == faces[
        "XMP-dc:Description"] and record["Version"] and record["Date"]


def test_captioners_own_text_is_replaced_when_its_settings_change_and_a_persons_edit_is_kept(library):
    from captioner.collections.metadata import MetadataWriter

    writer = MetadataWriter("embed", (), ("description", "keywords"))
    photo = library / "faces.jpg"
    writer.write(writer.plan_photo(texts(photo)))
    again = writer.plan_photo(texts(photo))
    assert again.actions == [("description", "unchanged"), ("keywords", "unchanged")] and not again.tags

    changed = writer.plan_photo(texts(photo, "a cat sits on a sofa", beam=5))
    assert changed.actions[0] == ("description", "updated")
    writer.write(changed)
    now = tags(photo)
    assert now["XMP-dc:Description"] == now["IPTC:Caption-Abstract"] == "a cat sits on a sofa"
    assert now["XMP-dc:Subject"] == ["Anna", "Holiday", "cat", "sofa"]  # our old keywords went, the person's stay

    exiftool("-XMP-dc:Description=A cat on Anna's sofa", str(photo))  # the person corrects the caption
    edited = writer.plan_photo(texts(photo, "a dog", model="other-model"))
    assert edited.actions[0] == ("description", "kept: a person's or another tool's text")
    assert "XMP-dc:Description" not in edited.tags


def test_replace_and_append(library):
    from captioner.collections.metadata import MetadataWriter

    photo = library / "lang-alt.jpg"
    appended = MetadataWriter("embed", (), ("description",), existing="append")
    appended.write(appended.plan_photo(texts(photo)))
    now = tags(photo)
    assert now["XMP-dc:Description"] == now["IPTC:Caption-Abstract"] == f"{PERSON}\n\na dog runs on the grass"
    assert now["XMP-dc:Description-de"] == "Omas Garten, Sommer 1998"  # the person's translation stays
    assert appended.plan_photo(texts(photo)).actions == [("description", "unchanged")]  # never appended twice
    appended.write(appended.plan_photo(texts(photo, "a cat", beam=5)))
    assert tags(photo)["XMP-dc:Description"] == f"{PERSON}\n\na cat"

    replaced = MetadataWriter("embed", (), ("description",), existing="replace")
    plan = replaced.plan_photo(texts(library / "iptc-only.jpg"))
    assert plan.actions == [("description", "replaced")]
    replaced.write(plan)
    assert tags(library / "iptc-only.jpg")["IPTC:Caption-Abstract"] == "a dog runs on the grass"


def test_sidecar_names_and_an_existing_sidecar_updated_in_place(library):
    from captioner.collections.metadata import MetadataWriter

    photo = library / "blank.jpg"
    data = photo.read_bytes()
    base = MetadataWriter("sidecar", (), ("description", "alt-text"), sidecar_name="base")
    assert base.write(base.plan_photo(texts(photo))) == library / "blank.xmp"
    assert photo.read_bytes() == data and not (library / "blank.jpg.xmp").exists()
    written = tags(library / "blank.xmp")
    assert written["XMP-dc:Description"] == "a dog runs on the grass"
    assert written["XMP-iptcCore:AltTextAccessibility"] == "A dog runs on the grass"

    full = MetadataWriter("sidecar", (), ("description", "keywords"))  # digiKam's sidecar, with the person's text
    plan = full.plan_photo(texts(library / "sidecar.jpg"))
    assert plan.target == library / "sidecar.jpg.xmp" and plan.source == plan.target
    assert plan.actions == [("description", "kept: a person's or another tool's text"), ("keywords", "new")]
    full.write(plan)
    sidecar = tags(library / "sidecar.jpg.xmp")
    assert sidecar["XMP-dc:Description"] == PERSON and sidecar["XMP-xmp:Label"] == "Red"
    assert sidecar["XMP-digiKam:TagsList"] == ["Family/Anna"] and sidecar["XMP-dc:Subject"] == ["dog", "grass"]


def test_the_provenance_namespace_is_declared_by_the_shipped_config():
    from captioner.collections.exiftool import config_path

    text = config_path().read_text()
    assert "urn:captioner:xmp:provenance:1.0/" in text and "AltText" in text


def test_bad_metadata_options_fail_with_one_clear_line(tmp_path):
    from support.cli import assert_clean_failure, run_main

    base = ("collection", tmp_path, "--out", tmp_path / "r.jsonl", "--model", "x", "--models-dir", tmp_path)
    assert_clean_failure(run_main(*base, "--metadata", "sidecar", "--write", "description,title"), "--write", "title")
    assert_clean_failure(run_main(*base, "--existing", "replace"), "--existing", "--metadata")


def test_raw_files_are_told_by_their_content(tmp_path):
    pytest.importorskip("pidng")
    from support.dng import write_dng

    from captioner.collections.raw import raw_format
    from captioner.collections.walk import find_images

    write_dng(tmp_path / "renamed.bin", None)  # a DNG by its DNGVersion tag, whatever its name
    (tmp_path / "scan.tif").write_bytes(b"II*\x00\x08\x00\x00\x00" + bytes(64))  # a plain TIFF is not taken
    (tmp_path / "notes.txt").write_text("not a photo")
    assert [path.name for path in find_images([tmp_path])] == ["renamed.bin"]
    assert raw_format(b"FUJIFILMCCD-RAW 0201") == "RAF" and raw_format(b"\x00\x00\x00\x18ftypcrx ") == "CR3"
    assert raw_format(b"II*\x00\x10\x00\x00\x00CR\x02\x00") == "CR2" and raw_format(b"IIU\x00") == "RW2"
    assert raw_format(b"II*\x00\x08\x00\x00\x00", ".NEF") == "NEF" and raw_format(b"IIRO\x08\x00") == "ORF"
