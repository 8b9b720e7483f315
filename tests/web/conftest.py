"""What the tests of the compatible protocols share: the picture they caption, and the native API's caption of
it, which every protocol must give back."""

from __future__ import annotations

import pytest
import requests

from support.web import shapes_image_bytes


@pytest.fixture(scope="module")
def picture(shapes_dataset) -> bytes:
    return shapes_image_bytes(shapes_dataset, 3, "PNG")


@pytest.fixture(scope="module")
def native_caption(compat_server, picture) -> str:
    """The native API's caption of the picture at the model's default decoding."""
    answer = requests.post(compat_server.url + "/api/v1/captions", files={"image": ("p.png", picture, "image/png")},
                           headers={"Authorization": f"Bearer {compat_server.key()}"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()["caption"]
