"""A backbone inside a model bundle, so the bundle captions the same way on another machine.

``backbone.json`` records the spec in every case, its precision included (a file written before precisions
existed loads as float32). The thumbnail needs nothing more; ImageNet weights come back from the Keras
cache (or are downloaded again); random ("none") and local-file weights are written into the bundle as
``backbone.weights.h5`` (HDF5, no pickle). A bfloat16 backbone keeps float32 weights, so that file is
the same for both precisions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from captioner.errors import ModelError
from captioner.features.backbones import (THUMBNAIL, Backbone, BackboneSpec, KerasBackbone, backbone_from_weights_file,
                                          build_backbone)
from captioner.files import atomic_path, write_json_atomic

SPEC_FILE = "backbone.json"
WEIGHTS_FILE = "backbone.weights.h5"


def save_backbone(backbone: Backbone, bundle_dir: str | os.PathLike) -> None:
    """Write what ``load_backbone`` needs into ``bundle_dir`` (each file through a temporary name)."""
    folder = Path(bundle_dir)
    folder.mkdir(parents=True, exist_ok=True)
    spec = backbone.spec
    weights_in_bundle = isinstance(backbone, KerasBackbone) and spec.weights != "imagenet"
    if weights_in_bundle:
        with atomic_path(folder / WEIGHTS_FILE) as temporary:
            backbone.model.save_weights(temporary)
    write_json_atomic(folder / SPEC_FILE, {"backbone": spec.to_dict(), "dim": backbone.dim,
                                           "weights_in_bundle": weights_in_bundle})


def load_backbone(bundle_dir: str | os.PathLike, spec: BackboneSpec | None = None) -> Backbone:
    """The backbone saved in ``bundle_dir``; ``spec`` defaults to the one recorded in ``backbone.json``."""
    folder = Path(bundle_dir)
    if spec is None:
        spec = read_backbone_spec(folder)
    if spec.name == THUMBNAIL or spec.weights == "imagenet":
        return build_backbone(spec)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{folder} has no {WEIGHTS_FILE}: the bundle is incomplete (its {spec.name} backbone "
                         f"uses {spec.weights} weights, which are stored in the bundle); save the model again")
    return backbone_from_weights_file(spec, weights)


def read_backbone_spec(bundle_dir: str | os.PathLike) -> BackboneSpec:
    path = Path(bundle_dir) / SPEC_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return BackboneSpec.from_dict(data["backbone"])
    except FileNotFoundError:
        raise ModelError(f"{bundle_dir} has no {SPEC_FILE}; pass the backbone spec or save the model again") from None
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ModelError(f"{path} is damaged ({error}); save the model again") from None
