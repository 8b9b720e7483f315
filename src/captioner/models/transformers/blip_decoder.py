"""The cached decoder step of ``BlipForConditionalGeneration`` (BLIP captioning), from its own layers.

Per image, once: the vision model's output and, per text-decoder layer, the cross-attention keys and
values. Per step, for every row: word and position embeddings with their layer norm, then per layer
BERT-style self-attention over the row's own cache, cross-attention of the image's beams against the
image's keys and values, and the feed-forward block (each with its post layer norm); the prediction head
gives the logits. Captions start from the text config's ``bos_token_id`` and end with its
``sep_token_id``, as BLIP's ``generate`` does when given no prompt.
"""

from __future__ import annotations

import math

import numpy as np

from captioner.models.transformers.decoder_step import (DecoderState, attend_own_cache, attend_per_image, grow_cache,
                                           log_probs_of, start_state)


class BlipImageDecoder:
    """A BLIP captioning model's vision encoder and one-token text-decoder step, sharing its weights."""

    prompted = False  # captions start from the start token alone

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

    def encode(self, pixels) -> DecoderState:
        """Pixels (images, 3, H, W) -> per layer cross-attention keys and values (images, heads, positions, hd)."""
        image = self.vision(pixel_values=pixels.to(self.model.dtype))[0]  # (images, positions, vision width)
        images, positions, _ = image.shape
        context = []
        for layer in self.layers:
            cross = layer.crossattention.self
            context.append((self._split(cross.key(image), (images, positions)),
                            self._split(cross.value(image), (images, positions))))  # (images, heads, positions, hd)
        return start_state(tuple(context), images, len(self.layers))

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]:
        import torch

        embeddings = self.bert.embeddings
        rows = len(tokens)
        ids = torch.from_numpy(np.asarray(tokens, dtype=np.int64)).to(embeddings.word_embeddings.weight.device)
        hidden = embeddings.LayerNorm(embeddings.word_embeddings(ids)
                                      + embeddings.position_embeddings.weight[state.steps])  # (rows, hidden)
        keys, values = list(state.keys), list(state.values)
        for index, layer in enumerate(self.layers):
            own = layer.attention.self
            shape = (rows, self.heads, 1, self.head_dim)
            keys[index], values[index] = grow_cache(keys, values, index, own.key(hidden).view(shape),
                                                    own.value(hidden).view(shape))
            attended = attend_own_cache(own.query(hidden).view(shape), keys[index], values[index], self.scale)
            hidden = layer.attention.output(attended, hidden)  # (rows, hidden): dense, residual, layer norm

            cross = layer.crossattention.self
            image_keys, image_values = state.context[index]
            query = cross.query(hidden).view(rows, self.heads, self.head_dim)
            attended = attend_per_image(query, image_keys, image_values, state.beams, self.scale)
            hidden = layer.crossattention.output(attended, hidden)

            hidden = layer.output(layer.intermediate(hidden), hidden)
        logits = self.head(hidden)  # (rows, vocab)
        next_state = DecoderState(state.context, state.beams, tuple(keys), tuple(values), state.images, state.steps + 1)
        return log_probs_of(logits), next_state
