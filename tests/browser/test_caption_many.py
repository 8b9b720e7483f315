"""The "caption many" page in Chromium: choose a folder (with a HEIC and a damaged file), watch the job's
progress fill the table, edit a caption, download the CSV, save everything to the history and find it there."""

from __future__ import annotations

import csv
import io
import shutil

from playwright.sync_api import expect
from PIL import Image


def test_caption_a_folder_edit_download_and_save(page, sample_images, screenshots, tmp_path):
    from captioner.data.images import register_phone_formats

    folder = tmp_path / "holiday"
    folder.mkdir()
    for image in sample_images:
        shutil.copy(image, folder / image.name)
    register_phone_formats()
    with Image.open(sample_images[0]) as picture:
        picture.convert("RGB").save(folder / "phone.heic", quality=90)
    (folder / "damaged.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")

    page.goto("/caption-many")
    expect(page.locator("#folder-input")).to_be_hidden()  # no raw file input under the drop zone
    with page.expect_file_chooser() as chooser:
        page.click("#folder-button")  # the drop zone's own button
    chooser.value.set_files(str(folder))
    expect(page.locator("#many-chosen")).to_have_text("5 images chosen.")
    page.click("#many-start")
    expect(page.locator("#many-status")).to_have_text("5 of 5 images done (1 could not be read).", timeout=120_000)
    rows = page.locator("#many-table tbody tr")
    expect(rows).to_have_count(5)
    expect(page.locator("#many-table tr.failed")).to_contain_text("damaged.jpg")
    expect(page.locator("#many-table input.caption-edit")).to_have_count(4)
    thumbnails = page.locator("#many-table img.thumbnail")  # each image beside its caption, from the chosen file
    expect(thumbnails).to_have_count(3)  # the browser shows no HEIC and no damaged JPEG: those rows say "—"
    page.wait_for_function("[...document.querySelectorAll('#many-table img.thumbnail')].every(i => i.naturalWidth > 0)")
    heic_row = rows.filter(has_text="phone.heic")
    expect(heic_row.locator("input.caption-edit")).not_to_have_value("")

    first = page.locator("#many-table input.caption-edit").first
    first.fill("a caption written by hand")
    first.press("Enter")
    first.blur()
    expect(page.locator("#many-status")).to_have_text("Caption 1 saved.")
    shoot_top(page, screenshots / "caption-many.png")

    with page.expect_download() as download:
        page.click("#download-csv")
    table = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert len(table) == 5 and "a caption written by hand" in [row["caption"] for row in table]
    assert [row["error"] != "" for row in table].count(True) == 1

    page.click("#save-history")
    expect(page.locator("#many-status")).to_have_text("Saved 4 captions to the history.")
    page.goto("/history")
    expect(page.locator("main")).to_contain_text("a caption written by hand")


def shoot_top(page, path) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)
