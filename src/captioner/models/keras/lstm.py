"""The Flickr8k CNN+LSTM captioner: loading a bundle, captioning images, writing a bundle.

A bundle (``models/NAME/``) holds ``captioner.json`` (kind ``lstm``; settings ``lstm``, ``training``,
``data``, ``backbone``), ``model.keras`` (the sequence model, loaded with ``safe_mode=True``),
``vocab.json`` and the backbone's own files. Captioning embeds the images with the bundle's backbone,
turns each embedding into an image vector and LSTM state once, then spends one LSTM step per word
(see :mod:`captioner.models.keras.lstm_network` and :mod:`captioner.models.decoding`).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from captioner.config import LstmSettings, settings_from_dict
from captioner.data.text import Vocabulary
from captioner.errors import ModelError
from captioner.models.base import Caption, Decoding
from captioner.models.bundle import BundleInfo, write_bundle_info
from captioner.models.decoding import Hypothesis, decode

if TYPE_CHECKING:
    from PIL import Image

KIND = "lstm"
MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.json"
ENCODE_BATCH = 64  # images encoded and decoded together


def default_decoding(vocabulary: Vocabulary) -> Decoding:
    """Greedy search (the original's), as long as the longest training caption allows."""
    words = vocabulary.max_length - 2 if vocabulary.max_length > 2 else Decoding().max_length
    return Decoding(method="greedy", max_length=max(1, min(200, words)))


class LstmCaptioner:
    """A loaded LSTM bundle: backbone, image encoder and one-step decoder sharing the trained weights."""

    kind = KIND

    def __init__(self, name: str, info: BundleInfo, model, vocabulary: Vocabulary, backbone=None):
        from captioner.models.keras import lstm_network

        self.name = name
        self.info = info
        self.model = model  # the sequence model, as trained
        self.vocabulary = vocabulary
        self.backbone = backbone  # None: only caption_features() works
        self.encoder = lstm_network.build_encoder_model(model)
        self.step_model = lstm_network.build_step_model(model)
        self.default_decoding = default_decoding(vocabulary)
        self.forbidden = (vocabulary.pad_id, vocabulary.unk_id, vocabulary.start_id)

    @property
    def feature_dim(self) -> int:
        return int(self.model.inputs[0].shape[1])

    def encode(self, features: np.ndarray) -> tuple[np.ndarray, ...]:
        """Image embeddings (n, feature_dim) -> decoding state (h, c, image vector), each (n, units)."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(f"image features must have shape (n, {self.feature_dim}), not {features.shape}")
        image_vector, h, c = (np.asarray(a) for a in self.encoder.predict_on_batch(features))
        return h, c, image_vector

    def step(self, tokens: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """One LSTM step for every row: log-probabilities of the next word (rows, vocab) and the new state."""
        h, c, image_vector = state
        log_probs, h, c = self.step_model.predict_on_batch([np.asarray(tokens, dtype=np.int32), h, c, image_vector])
        return np.asarray(log_probs), (np.asarray(h), np.asarray(c), image_vector)

    def decode_features(self, features: np.ndarray, decoding: Decoding | None = None) -> list[list[Hypothesis]]:
        """Hypotheses (best first) for each row of image embeddings."""
        decoding = decoding or self.default_decoding
        results: list[list[Hypothesis]] = []
        for start in range(0, len(features), ENCODE_BATCH):
            state = self.encode(features[start:start + ENCODE_BATCH])
            results.extend(decode(self.step, state, decoding, self.vocabulary.start_id, self.vocabulary.end_id,
                                  self.forbidden))
        return results

    def caption_features(self, features: np.ndarray, decoding: Decoding | None = None) -> list[Caption]:
        """Captions of image embeddings (n, feature_dim) from this bundle's backbone."""
        decoding = decoding or self.default_decoding
        return [self._caption(hypotheses, decoding) for hypotheses in self.decode_features(features, decoding)]

    def caption(self, images: Sequence["Image.Image"], decoding: Decoding | None = None) -> list[Caption]:
        """Captions of RGB images (loaded through :func:`captioner.data.images.load_image`)."""
        if self.backbone is None:
            raise ModelError(f"model {self.name} was loaded without its image backbone; load it with load_captioner")
        if not images:
            return []
        features = self.backbone.embed(list(images))  # (n, feature_dim)
        return self.caption_features(features, decoding)

    def _caption(self, hypotheses: list[Hypothesis], decoding: Decoding) -> Caption:
        return Caption.from_ranked([(self.vocabulary.decode(h.tokens), h.log_prob) for h in hypotheses], decoding)


def load_sequence_model(path: str | os.PathLike, network_module: str = "captioner.models.keras.lstm_network"):
    """The trained Keras sequence model from ``model.keras``, without optimizer state, safely.

    ``network_module`` is the kind's network module, imported first because it registers the custom layers.
    """
    import keras

    importlib.import_module(network_module)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelError(f"cannot load {path}: {error}; the bundle is damaged, train or copy it again") from None


def read_sequence_bundle(bundle_dir: Path, network_module: str):
    """(vocabulary, Keras model) of a bundle of a Keras kind (``lstm``, ``attention``), checked for consistency."""
    for required in (MODEL_FILE, VOCAB_FILE):
        if not (bundle_dir / required).is_file():
            raise ModelError(f"model bundle {bundle_dir} is incomplete: {required} is missing; train it again")
    vocabulary = Vocabulary.load(bundle_dir / VOCAB_FILE)
    model = load_sequence_model(bundle_dir / MODEL_FILE, network_module)
    vocab_out = int(model.outputs[0].shape[-1])
    if vocab_out != len(vocabulary):
        raise ModelError(f"model bundle {bundle_dir} is inconsistent: the model predicts {vocab_out} words but "
                         f"vocab.json holds {len(vocabulary)}; train it again")
    return vocabulary, model


def lstm_settings(info: BundleInfo) -> LstmSettings:
    return settings_from_dict(LstmSettings, info.settings.get("lstm"))


def load(bundle_dir: str | os.PathLike, info: BundleInfo, with_backbone: bool = True) -> LstmCaptioner:
    """Load an LSTM bundle (what :func:`captioner.load_captioner` calls for kind ``lstm``)."""
    bundle_dir = Path(bundle_dir)
    vocabulary, model = read_sequence_bundle(bundle_dir, "captioner.models.keras.lstm_network")
    backbone = None
    if with_backbone:
        from captioner.features import load_backbone

        backbone = load_backbone(bundle_dir, backbone_spec(info))
        if backbone.dim != int(model.inputs[0].shape[1]):
            raise ModelError(f"model bundle {bundle_dir} is inconsistent: its backbone gives {backbone.dim} values "
                             f"per image, the model reads {int(model.inputs[0].shape[1])}")
    return LstmCaptioner(info.name, info, model, vocabulary, backbone)


def backbone_spec(info: BundleInfo):
    """The bundle's BackboneSpec, from ``settings["backbone"]``."""
    from captioner.features import BackboneSpec

    spec = dict(info.settings.get("backbone") or {})
    if not spec:
        raise ModelError(f"captioner.json of {info.name} names no backbone settings; train the model again")
    return BackboneSpec.from_dict(spec)


def write_bundle(bundle_dir: str | os.PathLike, info: BundleInfo, model, vocabulary: Vocabulary, backbone=None) -> Path:
    """Write a Keras kind's bundle files into ``bundle_dir`` (a staging folder: the caller renames it when complete)."""
    bundle_dir = Path(bundle_dir)
    bundle_dir.mkdir(parents=True, exist_ok=True)
    model.save(bundle_dir / MODEL_FILE)
    vocabulary.save(bundle_dir / VOCAB_FILE)
    if backbone is not None:
        from captioner.features import save_backbone

        save_backbone(backbone, bundle_dir)
    write_bundle_info(bundle_dir, info)
    return bundle_dir
