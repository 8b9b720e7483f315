"""The cached decoder step of ``GitForCausalLM`` (GIT), from its own layers.

GIT has one BERT-style stack over the image tokens followed by the text: image tokens attend to each other
only, text tokens to every image token and causally to the text before them. So the image tokens' hidden
states, and each layer's keys and values of them, depend on the image alone: here they are computed once
per image by running the image tokens through the stack, one row per image, and shared by its beams (folded
into the query axis, as for cross-attention). Per step, every row's text tokens attend over the image's keys
and values and the row's own cache, with one softmax over both; only the own cache follows the beams.
A caption prefix ("a photo of") is fed with the start token at the first step, as ``generate`` feeds it.
Text positions count text tokens only (the image tokens have none), as ``generate`` numbers them.
"""

from __future__ import annotations

import math

import numpy as np

from captioner.models.transformers.decoder_step import DecoderState, grow_cache, prefixed_step, start_state


class GitImageDecoder:
    """A GIT model's image encoder, image-token prefix and one-token text step, sharing its weights."""

    prompted = True  # a caption prefix, when given, is fed with the start token
    feeds_width = True  # logits takes (rows, width) tokens: the prefix is fed at the first step, at once

    def __init__(self, model):
        config = model.config
        self.model = model
        self.git = model.git
        self.start_id = config.bos_token_id
        self.end_id = config.eos_token_id
        self.layers = list(self.git.encoder.layer)
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // self.heads
        self.scale = 1 / math.sqrt(self.head_dim)

    @staticmethod
    def prefix(input_ids) -> tuple[int, ...]:
        """The caption prefix's tokens in the ``[CLS] prompt`` ids (one prompt for all images)."""
        if input_ids is None:
            return ()
        return tuple(int(token) for token in input_ids[0, 1:].tolist())

    def _split(self, projected):
        rows, width, _ = projected.shape
        return projected.view(rows, width, self.heads, self.head_dim).transpose(1, 2)  # (rows, heads, width, hd)

    def encode(self, pixels, input_ids=None, attention_mask=None) -> DecoderState:
        """Pixels (images, 3, H, W) -> per layer the image tokens' keys and values (images, heads, tokens, hd)."""
        from dataclasses import replace

        import torch.nn.functional as F

        features = self.git.image_encoder(pixels.to(self.model.dtype)).last_hidden_state
        hidden = self.git.visual_projection(features)  # (images, image tokens, hidden)
        context = []
        for layer in self.layers:
            own = layer.attention.self
            keys, values = self._split(own.key(hidden)), self._split(own.value(hidden))
            attended = F.scaled_dot_product_attention(self._split(own.query(hidden)), keys, values, scale=self.scale)
            images, _, tokens, _ = attended.shape
            attended = attended.transpose(1, 2).reshape(images, tokens, -1)  # (images, tokens, hidden)
            hidden = layer.attention.output(attended, hidden)
            hidden = layer.output(layer.intermediate(hidden), hidden)
            context.append((keys, values))
        return replace(start_state(tuple(context), len(pixels), len(self.layers)), prefix=self.prefix(input_ids))

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]:
        return prefixed_step(self.logits, tokens, state, self.git.embeddings.word_embeddings.weight.device)

    def logits(self, ids, positions, keys: tuple, values: tuple, context: tuple, beams: int):
        """Text tokens (rows, width) at ``positions`` (width,) -> logits after the last (rows, vocab) and the
        grown caches; the tensor-only core of :meth:`step`, also what an exported step graph runs (width 1).
        ``context`` is every layer's image-token keys and values, flat (key, value, key, value, ...)."""
        embeddings = self.git.embeddings
        hidden = embeddings.LayerNorm(embeddings.word_embeddings(ids)
                                      + embeddings.position_embeddings.weight[positions])  # (rows, width, h)
        keys, values = list(keys), list(values)
        for index, layer in enumerate(self.layers):
            own = layer.attention.self
            keys[index], values[index] = grow_cache(keys, values, index, self._split(own.key(hidden)),
                                                    self._split(own.value(hidden)))
            attended = attend_image_and_own(self._split(own.query(hidden)), context[2 * index], context[2 * index + 1],
                                            keys[index], values[index], beams, self.scale)  # (rows, width, hidden)
            hidden = layer.attention.output(attended, hidden)
            hidden = layer.output(layer.intermediate(hidden), hidden)
        return self.model.output(hidden[:, -1]), tuple(keys), tuple(values)  # (rows, vocab)


def attend_image_and_own(query, image_keys, image_values, own_keys, own_values, beams: int, scale: float):
    """Each row's new positions (rows, heads, width, hd) against its image's keys and values
    (images, heads, tokens, hd), shared by the image's beams, and its own cache (rows, heads, steps, hd),
    causally, under one softmax -> (rows, width, heads * hd)."""
    import torch

    rows, heads, width, head_dim = query.shape
    images = rows // beams
    grouped = query.view(images, beams, heads, width, head_dim).transpose(1, 2).reshape(images, heads,
                                                                                       beams * width, head_dim)
    image_scores = (grouped @ image_keys.transpose(-1, -2)) * scale  # (images, heads, beams * width, tokens)
    image_scores = image_scores.view(images, heads, beams, width, -1).transpose(1, 2).reshape(rows, heads, width, -1)
    own_scores = (query @ own_keys.transpose(-1, -2)) * scale  # (rows, heads, width, steps)
    if width > 1:  # the first step: the cache holds exactly these positions
        future = torch.ones(width, width, dtype=torch.bool, device=query.device).triu(1)
        own_scores = own_scores.masked_fill(future, float("-inf"))
    probs = torch.softmax(torch.cat((image_scores, own_scores), dim=-1), dim=-1)
    tokens = image_keys.shape[2]
    image_probs = probs[..., :tokens].reshape(images, beams, heads, width, tokens).transpose(1, 2)
    image_part = image_probs.reshape(images, heads, beams * width, tokens) @ image_values  # (images, heads, bw, hd)
    image_part = image_part.view(images, heads, beams, width, head_dim).transpose(1, 2).reshape(rows, heads, width,
                                                                                               head_dim)
    out = image_part + probs[..., tokens:] @ own_values  # (rows, heads, width, hd)
    return out.transpose(1, 2).reshape(rows, width, heads * head_dim)
