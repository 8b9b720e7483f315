"""The cached decoder step of ``BlipForConditionalGeneration`` (BLIP captioning), from its own layers.

Per image, once: the vision model's output and, per text-decoder layer, the cross-attention keys and
values. Per step, for every row: word and position embeddings with their layer norm, then per layer
BERT-style self-attention over the row's own cache, cross-attention of the image's beams against the
image's keys and values, and the feed-forward block (each with its post layer norm); the prediction head
gives the logits. Captions start from the text config's ``bos_token_id`` and end with its
``sep_token_id``, as BLIP's ``generate`` does. A caption prefix ("a photography of") is fed with the start
token at the first step, all its positions at once under a causal mask, as ``generate`` feeds it; its
tokens are the caption's first words (:meth:`BlipImageDecoder.prefix`).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from captioner.models.transformers.decoder_step import (DecoderState, attend_per_image, grow_cache,
                                                        prefixed_step, start_state)


class BlipImageDecoder:
    """A BLIP captioning model's vision encoder and one-token text-decoder step, sharing its weights."""

    prompted = True  # a caption prefix, when given, is fed with the start token
    feeds_width = True  # logits takes (rows, width) tokens: the prefix is fed at the first step, at once

    def __init__(self, model):
        text = model.config.text_config
        self.model = model
        self.start_id = text.bos_token_id
        self.end_id = text.sep_token_id
        self.vision = model.vision_model
        self.bert = model.text_decoder.bert
        self.head = model.text_decoder.cls
        self.layers = list(self.bert.encoder.layer)
        self.heads = text.num_attention_heads
        self.head_dim = text.hidden_size // self.heads
        self.scale = 1 / math.sqrt(self.head_dim)

    def _split(self, projected, rows_shape):
        return projected.view(*rows_shape, self.heads, self.head_dim).transpose(-3, -2)

    @staticmethod
    def prefix(input_ids) -> tuple[int, ...]:
        """The caption prefix's tokens in the processor's ``[CLS] prompt [SEP]`` ids (one prompt for all images)."""
        if input_ids is None:
            return ()
        return tuple(int(token) for token in input_ids[0, 1:-1].tolist())  # generate drops [CLS] and [SEP]

    def encode(self, pixels, input_ids=None, attention_mask=None) -> DecoderState:
        """Pixels (images, 3, H, W), and a prefix's ids -> per layer cross-attention keys and values
        (images, heads, positions, hd); the prefix waits for the first step."""
        image = self.vision(pixel_values=pixels.to(self.model.dtype))[0]  # (images, positions, vision width)
        images, positions, _ = image.shape
        context = []
        for layer in self.layers:
            cross = layer.crossattention.self
            context.append((self._split(cross.key(image), (images, positions)),
                            self._split(cross.value(image), (images, positions))))  # (images, heads, positions, hd)
        return replace(start_state(tuple(context), images, len(self.layers)), prefix=self.prefix(input_ids))

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]:
        return prefixed_step(self.logits, tokens, state, self.bert.embeddings.word_embeddings.weight.device)

    def logits(self, ids, positions, keys: tuple, values: tuple, context: tuple, beams: int):
        """Tokens (rows, width) at ``positions`` (width,) -> logits after the last (rows, vocab) and the grown
        caches; the tensor-only core of :meth:`step`, also what an exported step graph runs (width 1).
        ``context`` is every layer's cross-attention keys and values, flat (key, value, key, value, ...)."""
        embeddings = self.bert.embeddings
        rows, width = ids.shape
        hidden = embeddings.LayerNorm(embeddings.word_embeddings(ids)
                                      + embeddings.position_embeddings.weight[positions])  # (rows, width, hidden)
        keys, values = list(keys), list(values)
        shape = (rows, width, self.heads, self.head_dim)
        for index, layer in enumerate(self.layers):
            own = layer.attention.self
            keys[index], values[index] = grow_cache(keys, values, index, own.key(hidden).view(shape).transpose(1, 2),
                                                    own.value(hidden).view(shape).transpose(1, 2))
            query = own.query(hidden).view(shape).transpose(1, 2)  # (rows, heads, width, hd)
            attended = attend_own_prefix(query, keys[index], values[index], self.scale)  # (rows, width, hidden)
            hidden = layer.attention.output(attended, hidden)  # dense, residual, layer norm

            cross = layer.crossattention.self
            query = cross.query(hidden).view(rows * width, self.heads, self.head_dim)  # positions fold like beams
            attended = attend_per_image(query, context[2 * index], context[2 * index + 1], beams * width, self.scale)
            hidden = layer.crossattention.output(attended.view(rows, width, -1), hidden)

            hidden = layer.output(layer.intermediate(hidden), hidden)
        return self.head(hidden[:, -1]), tuple(keys), tuple(values)  # (rows, vocab): after the last token fed


def attend_own_prefix(query, keys, values, scale: float):
    """Each row's ``width`` new positions (rows, heads, width, hd) against its cache, causally -> (rows, width, hidden)."""
    import torch.nn.functional as F

    width = query.shape[2]
    if width == 1:
        out = F.scaled_dot_product_attention(query, keys, values, scale=scale)
    else:  # the first step: the cache holds exactly these positions
        out = F.scaled_dot_product_attention(query, keys, values, is_causal=True, scale=scale)
    rows, heads, _, head_dim = out.shape
    return out.transpose(1, 2).reshape(rows, width, heads * head_dim)
