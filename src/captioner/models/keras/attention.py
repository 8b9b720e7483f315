"""The attention captioner ("Show, Attend and Tell"): loading a bundle, captioning with attention maps.

A bundle (``models/NAME/``) holds ``captioner.json`` (kind ``attention``; settings ``attention``,
``training``, ``data``, ``backbone`` with ``grid: true``), ``model.keras`` (the sequence model, loaded with
``safe_mode=True``), ``vocab.json`` and the backbone's own files. Captioning turns each image into its grid
of annotations and the initial state once, then one step per word through the shared search
(:mod:`captioner.models.decoding`). Each returned caption carries its words' attention maps, recomputed
for exactly those words by one teacher-forcing pass, which repeats the steps the search took.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from captioner.data.text import Vocabulary
from captioner.errors import ModelError
from captioner.models.base import AttentionMaps, Caption, Decoding
from captioner.models.bundle import BundleInfo
from captioner.models.decoding import Hypothesis, decode
# write_bundle is the Keras kinds' one bundle writer (training finds it here through the kind's module)
from captioner.models.keras.lstm import backbone_spec, default_decoding, read_sequence_bundle, write_bundle  # noqa: F401

if TYPE_CHECKING:
    from PIL import Image

KIND = "attention"
ENCODE_BATCH = 16  # images decoded together (each beam row carries its image's whole grid)


class AttentionCaptioner:
    """A loaded attention bundle: backbone (grid), image encoder and one-step decoder sharing the weights."""

    kind = KIND

    def __init__(self, name: str, info: BundleInfo, model, vocabulary: Vocabulary, backbone=None):
        from captioner.models.keras import attention_network

        self.name = name
        self.info = info
        self.model = model  # the sequence model, as trained: (grid, tokens) -> (probabilities, attention)
        self.vocabulary = vocabulary
        self.backbone = backbone  # None: only caption_features() works
        self.encoder = attention_network.build_encoder_model(model)
        self.step_model = attention_network.build_step_model(model)
        self.default_decoding = default_decoding(vocabulary)
        self.forbidden = (vocabulary.pad_id, vocabulary.unk_id, vocabulary.start_id)

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """(rows, cols, channels) of the features the model reads."""
        return tuple(int(d) for d in self.model.inputs[0].shape[1:])

    def encode(self, grids: np.ndarray) -> tuple[np.ndarray, ...]:
        """Grids (n, rows, cols, channels) -> decoding state (h, c, annotations, projected annotations)."""
        grids = np.asarray(grids, dtype=np.float32)
        if grids.shape[1:] != self.grid_shape:
            raise ValueError(f"image grids must have shape (n, {', '.join(map(str, self.grid_shape))}), "
                             f"not {grids.shape}")
        annotations, projected, h, c = (np.asarray(a) for a in self.encoder.predict_on_batch(grids))
        return h, c, annotations, projected

    def step(self, tokens: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """One attention step for every row: log-probabilities of the next word (rows, vocab), the new state."""
        h, c, annotations, projected = state
        log_probs, h, c, _ = self.step_model.predict_on_batch(
            [np.asarray(tokens, dtype=np.int32), h, c, annotations, projected])
        return np.asarray(log_probs), (np.asarray(h), np.asarray(c), annotations, projected)

    def decode_features(self, grids: np.ndarray, decoding: Decoding | None = None) -> list[list[Hypothesis]]:
        """Hypotheses (best first) for each image grid."""
        decoding = decoding or self.default_decoding
        results: list[list[Hypothesis]] = []
        for start in range(0, len(grids), ENCODE_BATCH):
            state = self.encode(grids[start:start + ENCODE_BATCH])
            results.extend(decode(self.step, state, decoding, self.vocabulary.start_id, self.vocabulary.end_id,
                                  self.forbidden))
        return results

    def attention_weights(self, grids: np.ndarray, captions: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """For each image and its caption's word ids (no markers), the attention that chose each word:
        (words, rows * cols) per caption, each row summing to 1."""
        grids = np.asarray(grids, dtype=np.float32)
        longest = max((len(ids) for ids in captions), default=0)
        if longest == 0:
            return [np.zeros((0, self.grid_shape[0] * self.grid_shape[1]), np.float32) for _ in captions]
        tokens = np.zeros((len(captions), longest), dtype=np.int32)  # (n, longest): startseq w_1 .. w_{n-1}
        for row, ids in enumerate(captions):
            tokens[row, :len(ids)] = [self.vocabulary.start_id, *ids[:-1]] if ids else []
        _, alphas = self.model.predict_on_batch([grids, tokens])  # (n, longest, L)
        return [np.asarray(alphas[row, :len(ids)]) for row, ids in enumerate(captions)]

    def caption_features(self, grids: np.ndarray, decoding: Decoding | None = None) -> list[Caption]:
        """Captions of image grids (n, rows, cols, channels) from this bundle's backbone, with attention maps."""
        decoding = decoding or self.default_decoding
        captions = []
        for start in range(0, len(grids), ENCODE_BATCH):
            chunk = grids[start:start + ENCODE_BATCH]
            hypotheses = self.decode_features(chunk, decoding)
            best = [list(h[0].tokens) if h else [] for h in hypotheses]
            weights = self.attention_weights(chunk, best)
            captions.extend(self._caption(h, w, decoding) for h, w in zip(hypotheses, weights))
        return captions

    def caption(self, images: Sequence["Image.Image"], decoding: Decoding | None = None) -> list[Caption]:
        """Captions of RGB images (loaded through :func:`captioner.data.images.load_image`)."""
        if self.backbone is None:
            raise ModelError(f"model {self.name} was loaded without its image backbone; load it with load_captioner")
        if not images:
            return []
        return self.caption_features(self.backbone.embed(list(images)), decoding)  # (n, rows, cols, channels)

    def _caption(self, hypotheses: list[Hypothesis], weights: np.ndarray, decoding: Decoding) -> Caption:
        caption = Caption.from_ranked([(self.vocabulary.decode(h.tokens), h.log_prob) for h in hypotheses], decoding)
        if not hypotheses:
            return caption
        rows, cols, _ = self.grid_shape
        maps = AttentionMaps((rows, cols), tuple(self.vocabulary.tokens[t] for t in hypotheses[0].tokens),
                             tuple(tuple(float(w) for w in word) for word in weights))
        return replace(caption, attention=maps)


def load(bundle_dir: str | os.PathLike, info: BundleInfo, with_backbone: bool = True) -> AttentionCaptioner:
    """Load an attention bundle (what :func:`captioner.load_captioner` calls for kind ``attention``)."""
    bundle_dir = Path(bundle_dir)
    vocabulary, model = read_sequence_bundle(bundle_dir, "captioner.models.keras.attention_network")
    backbone = None
    if with_backbone:
        from captioner.features import load_backbone

        backbone = load_backbone(bundle_dir, backbone_spec(info))
        if tuple(backbone.shape) != tuple(int(d) for d in model.inputs[0].shape[1:]):
            raise ModelError(f"model bundle {bundle_dir} is inconsistent: its backbone gives grids of shape "
                             f"{backbone.shape}, the model reads {tuple(model.inputs[0].shape[1:])}")
    return AttentionCaptioner(info.name, info, model, vocabulary, backbone)
