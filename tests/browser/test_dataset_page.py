"""The training-set review page in Chromium: thumbnails beside their caption files, an edit saved with Ctrl+S,
Esc bringing back the saved text, arrow keys moving between cards, a save over a file changed on disk showing
both texts until the person picks, the uncaptioned image captioned by a model, and a folder outside the training
sets folder refused."""

from __future__ import annotations

import shutil

from playwright.sync_api import expect


def test_edit_save_conflict_and_a_refused_folder(page, training_sets, sample_images, screenshots, tmp_path):
    folder = training_sets / "shapes"
    folder.mkdir()
    for image in sample_images:
        shutil.copy(image, folder / image.name)
    (folder / "shape-0.txt").write_text("a red circle, plain background\n")
    outside = tmp_path / "private"
    outside.mkdir()
    shutil.copy(sample_images[0], outside / "private.png")
    (training_sets / "escape").symlink_to(outside, target_is_directory=True)

    page.goto("/dataset?folder=shapes")
    cards = page.locator(".dataset-card")
    expect(cards).to_have_count(3)
    expect(page.locator("#dataset-counts")).to_have_text("3 images, 2 without a caption")
    page.wait_for_function("[...document.querySelectorAll('.dataset-card img')].every(i => i.naturalWidth > 0)")
    first, second, third = (cards.nth(number).locator("textarea") for number in range(3))
    expect(first).to_have_value("a red circle, plain background")

    second.fill("a hand-written caption")
    second.press("Control+s")
    expect(page.locator("#dataset-status")).to_have_text(f"{sample_images[1].stem}.txt saved.")
    assert (folder / f"{sample_images[1].stem}.txt").read_text() == "a hand-written caption\n"

    third.fill("not meant")
    third.press("Escape")
    expect(third).to_have_value("")
    third.press("ArrowLeft")  # at the start of the text: the card before
    expect(second).to_be_focused()

    first.fill("my version")
    (folder / "shape-0.txt").write_text("changed in another editor\n")
    first.press("Control+s")
    conflict = cards.nth(0).locator(".conflict")
    expect(conflict.locator(".disk-text")).to_contain_text("changed in another editor")
    expect(conflict.locator(".your-text")).to_contain_text("my version")
    assert (folder / "shape-0.txt").read_text() == "changed in another editor\n"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(screenshots / "dataset-review.png"), full_page=True)
    conflict.locator(".keep-mine").click()
    expect(conflict).to_be_hidden()
    expect(page.locator("#dataset-status")).to_have_text("shape-0.txt saved.")
    assert (folder / "shape-0.txt").read_text() == "my version\n"

    page.click("#caption-missing")  # the one image still without a caption file, with the chosen model
    expect(page.locator("#dataset-status")).to_have_text("1 caption file written.")
    expect(third).not_to_have_value("")
    assert (folder / "shape-2.txt").read_text().strip() == third.input_value()
    assert (folder / "shape-0.txt").read_text() == "my version\n"  # a person's words stay

    for refused in ("escape", "../outside"):
        page.goto(f"/dataset?folder={refused}")
        expect(page.locator("#dataset-error")).to_contain_text("training sets folder")
        expect(page.locator(".dataset-card")).to_have_count(0)
    assert (outside / "private.png").is_file() and not (outside / "private.txt").exists()
