"""Settings from the environment: one reader, one boolean rule, no changes to os.environ."""

from __future__ import annotations

import argparse
import os

import pytest

from captioner import environment
from captioner.environment import current, parse_bool


@pytest.mark.parametrize("text, expected", [("1", True), ("true", True), ("Yes", True), (" on ", True),
                                            ("0", False), ("false", False), ("NO", False), ("off", False),
                                            ("", False)])
def test_one_boolean_rule(text, expected):
    assert parse_bool("CAPTIONER_OFFLINE", text) is expected


def test_offline_zero_means_online_and_a_bad_word_names_the_variable():
    assert current({"CAPTIONER_OFFLINE": "0"}).offline is False
    assert current({"CAPTIONER_OFFLINE": "1"}).offline is True
    assert current({"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "off"}).hub_offline is False
    assert current({"TRANSFORMERS_OFFLINE": "1"}).hub_offline is True
    with pytest.raises(ValueError, match="CAPTIONER_PROGRESS must be true or false"):
        current({"CAPTIONER_PROGRESS": "sometimes"})
    with pytest.raises(ValueError, match="RANK must be a number"):
        current({"RANK": "first"})


def test_offline_zero_lets_the_backbone_check_try_the_network(monkeypatch, tmp_path):
    from captioner.errors import OfflineError
    from captioner.features import keras_applications as backbones

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty Keras cache
    monkeypatch.setattr(backbones, "_unreachable", lambda url: "no route (test)")
    monkeypatch.setenv("CAPTIONER_OFFLINE", "0")
    with pytest.raises(OfflineError, match="no route"):
        backbones.check_imagenet_available("densenet201")
    monkeypatch.setenv("CAPTIONER_OFFLINE", "1")
    with pytest.raises(OfflineError, match="offline mode is on"):
        backbones.check_imagenet_available("densenet201")


def test_dotenv_lies_under_the_environment_without_changing_it(tmp_path, monkeypatch):
    dotenv = tmp_path / ".env"
    dotenv.write_text("CAPTIONER_TEST_FROM_FILE=file\nCAPTIONER_TEST_BOTH=file\n")
    monkeypatch.setenv("CAPTIONER_TEST_BOTH", "environment")
    before = dict(os.environ)
    try:
        environment.use_dotenv(dotenv)
        seen = environment.variables()
        assert seen["CAPTIONER_TEST_FROM_FILE"] == "file" and seen["CAPTIONER_TEST_BOTH"] == "environment"
        assert dict(os.environ) == before
    finally:
        environment.use_dotenv(tmp_path / "missing")
    assert "CAPTIONER_TEST_FROM_FILE" not in environment.variables()


def test_serve_settings_come_from_options_over_the_environment_and_change_nothing(monkeypatch, tmp_path):
    from captioner.cli.serve import serve_settings

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("PORT", "6001")
    monkeypatch.setenv("SECRET_KEY", "s")
    monkeypatch.setenv("FLASK_DEBUG", "1")
    before = dict(os.environ)
    args = argparse.Namespace(host=None, port=None, models_dir=str(tmp_path / "m"), threads=3, workers=2)
    settings = serve_settings(args)
    assert (settings.port, settings.host, settings.models_dir) == (6001, "127.0.0.1", str(tmp_path / "m"))
    assert settings.threads == 3 and settings.workers == 2 and settings.load_in_background is True
    assert settings.flask == {"DEBUG": False}
    monkeypatch.setenv("CAPTIONER_LOAD_IN_BACKGROUND", "0")
    assert serve_settings(argparse.Namespace(**{**vars(args), "port": "7002"})).load_in_background is False
    monkeypatch.delenv("CAPTIONER_LOAD_IN_BACKGROUND")
    assert dict(os.environ) == before
    with pytest.raises(ValueError, match="port must be between"):
        serve_settings(argparse.Namespace(**{**vars(args), "port": "70000"}))
