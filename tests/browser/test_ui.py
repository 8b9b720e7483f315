"""The web app as a person uses it, in Chromium: choose or drop an image, read the caption, compare the
models, copy, translate, save to the history and find it there, dark mode that persists, and the whole
upload done with the keyboard. Screenshots of the pages go to the screenshots folder (docs/screenshots/
with `make screenshots`)."""

from __future__ import annotations

import base64
import re

from playwright.sync_api import expect

CAPTION = "#caption-result .result .caption-text"
SHAPE_WORDS = re.compile(r"\b(circle|square|triangle)s?\b")


def api_caption(page, image_path, model: str) -> str:
    """The caption the API gives for the same image and model, to compare with what the page shows."""
    answer = page.request.post("/api/v1/captions", multipart={
        "image": {"name": image_path.name, "mimeType": "image/png", "buffer": image_path.read_bytes()},
        "model": model})
    assert answer.ok, answer.text()
    return answer.json()["caption"]


def shoot(page, path) -> None:
    """A full-page screenshot from the top (so the sticky header sits where it belongs)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)


def choose_with_file_chooser(page, image_path) -> None:
    with page.expect_file_chooser() as chooser:
        page.click("#dropzone")
    chooser.value.set_files(str(image_path))


def caption_now(page) -> str:
    page.click("#caption-button")
    text = page.locator(CAPTION).first
    expect(text).not_to_be_empty()
    return text.text_content().strip()  # as sent by the server (CSS capitalises the first letter on screen)


def test_caption_with_the_file_chooser(page, sample_images, screenshots):
    page.goto("/caption")
    choose_with_file_chooser(page, sample_images[0])
    expect(page.locator("#file-name")).to_contain_text(sample_images[0].name)
    expect(page.locator("#preview")).to_be_visible()
    shown = caption_now(page)
    model = page.locator("#caption-result .result").first.get_attribute("data-model")
    assert SHAPE_WORDS.search(shown.lower()), shown
    assert shown == api_caption(page, sample_images[0], model)
    expect(page.locator("#caption-status")).to_contain_text(f"Captioned by {model}")
    expect(page.locator("#save-button")).to_be_visible()
    expect(page.locator("#tools-result")).to_be_hidden()  # one caption: nothing to choose from
    shoot(page, screenshots / "caption-result-light.png")


def test_caption_with_drag_and_drop(page, sample_images):
    page.goto("/caption")
    image = sample_images[1]
    transfer = page.evaluate_handle("""([data, name]) => {
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, {type: "image/png"}));
        return transfer;
    }""", [base64.b64encode(image.read_bytes()).decode(), image.name])
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event("#dropzone", event, {"dataTransfer": transfer})
    expect(page.locator("#file-name")).to_contain_text(image.name)
    shown = caption_now(page)
    model = page.locator("#caption-result .result").first.get_attribute("data-model")
    assert shown == api_caption(page, image, model)


def test_switch_model_and_compare_all(page, sample_images, screenshots):
    page.goto("/caption")
    models = [value for value in page.locator("#model-select option").evaluate_all(
        "options => options.map(o => o.value)") if value != "*"]
    assert models == ["shapes-attention", "shapes-demo"], models
    choose_with_file_chooser(page, sample_images[2])
    for model in models:
        page.select_option("#model-select", model)
        shown = caption_now(page)
        expect(page.locator("#caption-result .result")).to_have_count(1)
        assert page.locator("#caption-result .result").get_attribute("data-model") == model
        assert shown == api_caption(page, sample_images[2], model)
    page.select_option("#model-select", "*")
    page.click("#caption-button")
    cards = page.locator("#caption-result.compare .result")
    expect(cards).to_have_count(2)
    expect(cards.locator(".caption-text").nth(1)).not_to_be_empty()
    assert [cards.nth(i).get_attribute("data-model") for i in range(2)] == models
    # the tools under the result let you pick which model's caption to save or translate
    expect(page.locator("#tools-result option")).to_have_count(2)
    shoot(page, screenshots / "compare.png")


def test_copy_caption_to_the_clipboard(page, sample_images):
    page.goto("/caption")
    choose_with_file_chooser(page, sample_images[0])
    shown = caption_now(page)
    page.click("#caption-result .copy-button")
    expect(page.locator("#caption-status")).to_have_text("Caption copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == shown


def test_translate_the_caption(page, sample_images, fake_translator):
    page.goto("/caption")
    options = page.locator("#translate-to option")
    expect(options).to_have_count(5)
    assert options.all_inner_texts() == ["Arabic", "Italian", "Japanese", "Russian", "German"]
    choose_with_file_chooser(page, sample_images[0])
    shown = caption_now(page)
    page.select_option("#translate-to", "de")
    page.click("#translate-button")
    expect(page.locator("#translation-text")).to_have_text(f"[de] {shown}")
    assert page.locator("#translation-text").get_attribute("lang") == "de"
    sent = fake_translator.requests[-1]
    assert sent["query"]["to"] == ["de"] and sent["headers"]["Ocp-Apim-Subscription-Region"] == "westeurope"

    fake_translator.fail_with = 500
    try:
        page.click("#translate-button")
        expect(page.locator("#tools-error")).to_contain_text("Translation failed: The translation service failed (500")
        expect(page.locator("#translation-text")).to_be_empty()
    finally:
        fake_translator.fail_with = None


def test_save_to_history_and_find_it(page, sample_images, screenshots):
    page.goto("/caption")
    expect(page.locator("#caption-tools")).to_be_hidden()
    choose_with_file_chooser(page, sample_images[1])
    shown = caption_now(page)
    page.select_option("#translate-to", "it")
    page.click("#translate-button")
    expect(page.locator("#translation-text")).to_have_text(f"[it] {shown}")
    page.click("#save-button")
    expect(page.locator("#save-status")).to_contain_text("Saved to history.")
    expect(page.locator("#save-button")).to_be_disabled()
    # a translation made after saving is added to the saved entry
    page.select_option("#translate-to", "ja")
    page.click("#translate-button")
    expect(page.locator("#translation-text")).to_have_text(f"[ja] {shown}")

    page.click("#save-status a")
    expect(page).to_have_url(re.compile(r"/history$"))
    entry = page.locator(".history-entry").filter(has_text=shown).first
    expect(entry).to_be_visible()
    expect(entry.locator("dd[lang=it]")).to_have_text(f"[it] {shown}")
    expect(entry.locator("dd[lang=ja]")).to_have_text(f"[ja] {shown}")
    expect(entry).to_contain_text(sample_images[1].name)
    thumbnail = entry.locator("img.history-thumb")
    expect(thumbnail).to_have_attribute("alt", shown)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())

    page.fill("#history-q", shown.split()[-1])
    page.click(".history-search button[type=submit]")
    expect(page.locator(".history-entry").filter(has_text=shown).first).to_be_visible()
    shoot(page, screenshots / "history.png")

    count = page.locator(".history-entry").count()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".history-entry").first.locator(".history-delete button").click()
    expect(page.locator("#history-status")).to_contain_text("Deleted")
    expect(page.locator(".history-entry")).to_have_count(count - 1)
    if count == 1:
        expect(page.locator(".history-empty")).to_have_text("No saved captions left here.")


def test_dark_mode_persists_after_reload(page, sample_images, screenshots):
    page.goto("/caption")
    html = page.locator("html")
    expect(html).to_have_attribute("data-theme", "light")
    page.click("#theme-toggle")
    expect(html).to_have_attribute("data-theme", "dark")
    expect(page.locator("#theme-toggle")).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(html).to_have_attribute("data-theme", "dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 17, 23)", background
    choose_with_file_chooser(page, sample_images[0])
    caption_now(page)
    shoot(page, screenshots / "caption-result-dark.png")
    page.goto("/history")
    expect(html).to_have_attribute("data-theme", "dark")


def test_upload_with_the_keyboard_only(page, sample_images):
    page.goto("/caption")
    page.on("console", lambda m: print("CONSOLE", m.type, m.text))
    for _ in range(30):  # Tab through the page until the file control has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "image-input":
            break
    else:
        raise AssertionError("the file control cannot be reached with Tab")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(sample_images[1]))
    expect(page.locator("#file-name")).to_contain_text(sample_images[1].name)
    with page.expect_file_chooser() as chooser:  # Space opens it as well
        page.keyboard.press("Space")
    chooser.value.set_files(str(sample_images[2]))
    expect(page.locator("#file-name")).to_contain_text(sample_images[2].name)
    # …and the form is submitted from the keyboard: Tab to the Caption button, press Enter.
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "caption-button":
            break
    else:
        raise AssertionError("the Caption button cannot be reached with Tab")
    page.keyboard.press("Enter")
    expect(page.locator(CAPTION).first).not_to_be_empty()


def test_a_taggers_tags_show_with_their_probabilities_on_both_caption_pages(browser, tagging, tmp_path):
    from support.tagging import TAGGER, red_png

    photo = tmp_path / "red.png"
    photo.write_bytes(red_png())
    context = browser.new_context(base_url=tagging.url)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto("/caption")
        page.set_input_files("#image-input", str(photo))
        page.select_option("#model-select", TAGGER)
        page.fill("#template-input", "ohwx, {tags}")
        page.select_option("#language-input", "de")
        assert caption_now(page) == "ohwx, [de] red theme, [de] ^_^, [de] long hair"
        expect(page.locator("#caption-result .tag")).to_have_text(["[de] red theme 1.00", "[de] ^_^ 0.50",
                                                                   "[de] long hair 0.40"])
        expect(page.locator("#caption-result .rating")).to_have_text("Rating: general 0.88")
        expect(page.locator("#caption-result .result-language")).to_have_text("Translated into de by azure")
        page.goto("/caption-many")
        page.set_input_files("#many-input", str(photo))
        page.select_option("#many-model", TAGGER)
        page.fill("#many-template", "{tags}, ohwx")
        page.click("#many-start")
        expect(page.locator("#many-table .tag")).to_have_text(["red theme 1.00", "^_^ 0.50", "long hair 0.40"])
        expect(page.locator("#many-table .caption-edit")).to_have_value("red theme, ^_^, long hair, ohwx")
        expect(page.locator("#many-table .rating")).to_have_text("Rating: general 0.88")
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
