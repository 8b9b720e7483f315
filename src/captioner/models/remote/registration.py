"""Registering a remote model: a bundle whose ``captioner.json`` says where the model is served.

It is written like every bundle (staged, then renamed into place), so the models folder never holds half
of one, and it loads wherever a bundle loads. It records the name of the API key's environment variable,
never the key.
"""

from __future__ import annotations

import re
from pathlib import Path

from captioner.errors import ModelError
from captioner.models.bundle import BundleInfo, is_bundle, models_dir, staged_bundle, write_bundle_info
from captioner.models.remote.captioner import KIND
from captioner.models.remote.settings import RemoteSettings

BUNDLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a folder name that is safe everywhere


def add_remote(name: str, settings: RemoteSettings, models_folder=None, replace: bool = False) -> Path:
    """Write the bundle ``models/NAME/`` for a remote model; returns its folder."""
    if not BUNDLE_NAME.match(name):
        raise ModelError(f"the model name {name!r} must be letters, digits, '.', '_' or '-' (at most 64), "
                         "starting with a letter or digit")
    target = models_dir(models_folder) / name
    if target.exists() and not replace:
        what = "a model bundle" if is_bundle(target) else "a folder"
        raise ModelError(f"{target} is already {what}; choose another name or pass --replace")
    info = BundleInfo(kind=KIND, name=name, dataset="remote", backbone=f"{settings.api}:{settings.model}",
                      settings={"remote": settings.to_dict()})
    with staged_bundle(target) as staging:
        write_bundle_info(staging, info)
    return target
