"""The attention view in Chromium: caption with the attention model, pick a word, see where it looked;
a model that does not attend shows no view. Screenshot: docs/screenshots/attention.png."""

from __future__ import annotations

from playwright.sync_api import expect

from browser.test_ui import caption_now, choose_with_file_chooser, shoot

MAP_PIXELS = "() => Array.from(document.getElementById('attention-canvas').getContext('2d')" \
             ".getImageData(0, 0, 96, 96).data).join(',')"


def test_pick_a_word_and_see_where_the_model_looked(page, sample_images, screenshots):
    page.goto("/caption")
    page.select_option("#model-select", "shapes-attention")
    choose_with_file_chooser(page, sample_images[0])
    words = caption_now(page).split()
    view = page.locator("#attention-view")
    expect(view).to_be_visible()
    buttons = view.locator(".attention-word")
    expect(buttons).to_have_count(len(words))
    assert buttons.all_text_contents() == words
    expect(buttons.first).to_have_attribute("aria-pressed", "true")  # the first word's map is drawn at once
    first = page.evaluate(MAP_PIXELS)
    shape_word = next(i for i, w in enumerate(words) if w.rstrip("s") in ("circle", "square", "triangle"))
    buttons.nth(shape_word).click()
    expect(buttons.nth(shape_word)).to_have_attribute("aria-pressed", "true")
    expect(buttons.first).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#attention-canvas")).to_have_attribute("aria-label", f"Where the model looked for the word "
                                                                               f"“{words[shape_word]}”")
    assert page.evaluate(MAP_PIXELS) != first  # another word, another map over the image
    shoot(page, screenshots / "attention.png")

    page.select_option("#model-select", "shapes-demo")  # an LSTM: no maps, no view
    caption_now(page)
    expect(view).to_be_hidden()
