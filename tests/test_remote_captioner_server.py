"""A remote model whose endpoints are another real ``captioner serve`` (the shapes demo model, API keys
required): reached through the server's OpenAI-compatible ``/v1/chat/completions`` and Ollama-compatible
``/api/generate`` routes, with its key read from an environment variable. The captions that come back are
the ones the server's native API gives for the same JPEG bytes."""

from __future__ import annotations

import io

import pytest
import requests

from captioner.models.registry import load_captioner
from captioner.models.remote.protocols import encode_jpeg
from captioner.models.remote.registration import add_remote
from captioner.models.remote.settings import RemoteSettings
from captioner.web.settings import WebSettings


@pytest.mark.slow
def test_a_remote_model_served_by_another_captioner(compat_server, shapes_dataset, tmp_path, monkeypatch):
    from PIL import Image

    key = compat_server.key("docs")
    monkeypatch.setenv("CAPTIONER_TEST_SERVER_KEY", key)
    pictures = [Image.open(path).convert("RGB") for path in sorted((shapes_dataset / "Images").iterdir())[:3]]
    # A remote model's token budget is longer than the server's word limit, which every route holds to.
    words = WebSettings().max_caption_length
    expected = []
    for picture in pictures:  # the native API's caption of exactly the bytes a remote model sends
        jpeg = encode_jpeg(picture, 1024, 90)
        answer = requests.post(f"{compat_server.url}/api/v1/captions?model={compat_server.model}&max_length={words}",
                               files={"image": ("p.jpg", io.BytesIO(jpeg), "image/jpeg")},
                               headers={"Authorization": f"Bearer {key}"}, timeout=120)
        assert answer.status_code == 200, answer.text
        expected.append(answer.json()["caption"])

    models = tmp_path / "models"
    for api, url in (("openai", f"{compat_server.url}/v1"), ("ollama", compat_server.url)):
        add_remote(f"via-{api}", RemoteSettings(api=api, urls=(url,), model=compat_server.model,
                                                key_env="CAPTIONER_TEST_SERVER_KEY"), models)
        captions = load_captioner(f"via-{api}", models).caption(pictures)
        assert [caption.text for caption in captions] == expected, api
        assert all(caption.score is None for caption in captions)  # the server sends no log-probabilities

    monkeypatch.setenv("CAPTIONER_TEST_SERVER_KEY", "not-a-key")
    from captioner.errors import RemoteError

    with pytest.raises(RemoteError, match="401.*CAPTIONER_TEST_SERVER_KEY") as refused:
        load_captioner("via-openai", models).caption(pictures[:1])
    assert refused.value.unavailable is False
