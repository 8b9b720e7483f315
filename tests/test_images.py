"""The safe image loader, on images built here in every mode and shape of trouble, and a real phone photo."""

import io

import numpy as np
import pytest
from PIL import Image

from captioner.data.images import DEFAULT_MAX_PIXELS, fit_within, image_from_bytes, load_image
from captioner.errors import ImageError


def encode(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_phone_photo_passes_with_its_exif_orientation(phone_photo):
    raw = Image.open(phone_photo)
    orientation = raw.getexif().get(0x0112, 1)
    image = load_image(phone_photo)
    assert image.mode == "RGB"
    expected = raw.size[::-1] if orientation in (5, 6, 7, 8) else raw.size
    assert image.size == expected
    small = load_image(phone_photo, max_side=512)
    assert max(small.size) == 512 and small.mode == "RGB"
    assert abs(small.size[0] / small.size[1] - expected[0] / expected[1]) < 0.01


def test_path_bytes_and_file_object_give_the_same_pixels(tmp_path):
    picture = Image.new("RGB", (8, 6), (10, 200, 30))
    data = encode(picture, "PNG")
    (tmp_path / "p.png").write_bytes(data)
    from_path = load_image(tmp_path / "p.png")
    from_bytes = image_from_bytes(data)
    from_file = load_image(io.BytesIO(data))
    assert from_path.tobytes() == from_bytes.tobytes() == from_file.tobytes() == picture.tobytes()


@pytest.mark.parametrize("make,expected", [
    (lambda: Image.new("L", (4, 4), 128), (128, 128, 128)),
    (lambda: Image.new("1", (4, 4), 1), (255, 255, 255)),
    (lambda: Image.new("RGBA", (4, 4), (255, 0, 0, 0)), (255, 255, 255)),  # transparent: white
    (lambda: Image.new("RGBA", (4, 4), (255, 0, 0, 255)), (255, 0, 0)),
    (lambda: Image.new("LA", (4, 4), (0, 0)), (255, 255, 255)),
    (lambda: Image.new("CMYK", (4, 4), (0, 255, 255, 0)), (255, 0, 0)),
    (lambda: Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)), (255, 255, 255)),  # I;16
    (lambda: Image.fromarray(np.full((4, 4), 32896, dtype=np.uint16)), (128, 128, 128)),
    (lambda: Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)), (128, 128, 128)),  # F in [0, 1]
    (lambda: Image.fromarray(np.full((4, 4), 200, dtype=np.int32)), (200, 200, 200)),  # I
])
def test_every_mode_becomes_rgb(make, expected):
    image = make()
    fmt = "JPEG" if image.mode == "CMYK" else "PNG" if image.mode not in ("F", "I") else None
    source = encode(image, fmt) if fmt else None
    result = load_image(source) if source else _to_rgb_direct(image)
    assert result.mode == "RGB"
    pixel = result.getpixel((1, 1))
    assert all(abs(a - b) <= 3 for a, b in zip(pixel, expected)), (image.mode, pixel)


def _to_rgb_direct(image):
    from captioner.data.images import to_rgb  # F and I have no allowed file format: test the conversion itself

    return to_rgb(image)


def test_palette_with_transparency_is_composited_on_white():
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    image.info["transparency"] = 0
    data = encode(image, "PNG", transparency=0)
    assert load_image(data).getpixel((0, 0)) == (255, 255, 255)
    image.putpixel((1, 1), 1)
    assert load_image(encode(image, "GIF", transparency=0)).getpixel((1, 1)) == (0, 255, 0)


def test_exif_rotation_puts_pixels_where_they_belong():
    image = Image.new("RGB", (4, 2), (0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0))  # red at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    result = load_image(encode(image, "PNG", exif=exif))
    assert result.size == (2, 4)
    # rotated clockwise, the stored top-left corner is shown at the top-right
    assert result.getpixel((1, 0))[0] > 200 and result.getpixel((0, 0))[0] < 50


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (6, 6), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert load_image(data).getpixel((3, 3)) == (255, 0, 0)


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "JPEG"])
def test_other_allowed_formats(fmt):
    assert load_image(encode(Image.new("RGB", (5, 5), (0, 128, 0)), fmt)).size == (5, 5)


def test_truncated_jpeg_is_refused():
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_image(data[: len(data) // 2], name="cut.jpg")


def test_text_file_named_jpg_is_refused(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_text("this is not a picture")
    with pytest.raises(ImageError, match="not a supported image"):
        load_image(path)


@pytest.mark.parametrize("fmt", ["TIFF", "ICO"])
def test_formats_outside_the_allow_list_are_refused_even_named_png(tmp_path, fmt):
    path = tmp_path / "picture.png"
    path.write_bytes(encode(Image.new("RGB", (16, 16), (1, 2, 3)), fmt))
    with pytest.raises(ImageError, match="JPEG, PNG, GIF, WebP, BMP, HEIC or AVIF"):
        load_image(path)


def test_pixel_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("1", (10_000, 10_000)), "PNG")  # 100 megapixels in a few kilobytes
    assert len(bomb) < 100_000
    with pytest.raises(ImageError, match="pixels"):
        load_image(bomb)
    assert DEFAULT_MAX_PIXELS < 100_000_000


def test_pixel_limit_is_configurable():
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageError, match="more than the 5,000 allowed"):
        load_image(data, max_pixels=5_000)
    assert load_image(data, max_pixels=10_000).size == (100, 100)


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "none.jpg")
    with pytest.raises(ImageError, match="empty"):
        image_from_bytes(b"")


def test_fit_within_never_enlarges():
    image = Image.new("RGB", (400, 100))
    assert fit_within(image, 200).size == (200, 50)
    assert fit_within(image, 1000) is image


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_phone_formats_load_upright_within_the_same_limits(fmt):
    """HEIC (pillow-heif) and AVIF (Pillow) as phones save them: a wide picture stored with EXIF
    orientation 6 (turn 90° clockwise) comes out tall; the pixel limit and truncation checks still hold."""
    pytest.importorskip("pillow_heif")
    picture = Image.new("RGB", (64, 32), (220, 30, 30))
    picture.paste((30, 30, 220), (0, 0, 16, 32))  # blue on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6
    if fmt == "HEIF":
        from captioner.data.images import register_phone_formats

        register_phone_formats()
    data = encode(picture, fmt, exif=exif.tobytes(), quality=90)
    image = image_from_bytes(data, name="photo.heic")
    assert image.mode == "RGB" and image.size == (32, 64)
    top = np.asarray(image)[:8].reshape(-1, 3).mean(axis=0)
    assert top[2] > 150 and top[0] < 100  # the blue left edge is now at the top
    with pytest.raises(ImageError, match="more than the 1,000 allowed"):
        image_from_bytes(data, max_pixels=1000)
    with pytest.raises(ImageError, match="damaged|truncated|could not be read|not a supported"):
        image_from_bytes(data[: len(data) // 2])
