"""The cached decoder step of a ViT + GPT-2 ``VisionEncoderDecoderModel`` (ViT-GPT2), from its own layers.

Per image, once: the encoder output (projected when the decoder is narrower) and, per GPT-2 block, the
cross-attention keys and values. Per step, for every row: token and position embeddings, then per block
self-attention over the row's own cache, cross-attention of the image's beams against the image's keys
and values, and the MLP; the final layer norm and the language-model head give the logits. The
arithmetic is GPT-2's own (its LayerNorm, Conv1D and MLP modules, its attention scaling), so float32
log-probabilities match ``generate``'s to rounding.
"""

from __future__ import annotations

import numpy as np

from captioner.models.transformers.decoder_step import (DecoderState, attend_own_cache, attend_per_image, grow_cache,
                                           log_probs_of, start_state)


class Gpt2ImageDecoder:
    """A ViT-GPT2 model's encoder and one-token decoder step, sharing the model's weights."""

    prompted = False  # captions start from the start token alone

    def __init__(self, model, start_id: int, end_id: int):
        config = model.decoder.config
        if getattr(config, "reorder_and_upcast_attn", False) and config._attn_implementation == "eager":
            raise ValueError("GPT-2 with reorder_and_upcast_attn is not supported by the cached decoder")
        self.model = model
        self.start_id = start_id
        self.end_id = end_id
        self.encoder = model.encoder
        self.project = getattr(model, "enc_to_dec_proj", None)  # present when encoder and decoder widths differ
        self.gpt2 = model.decoder.transformer
        self.lm_head = model.decoder.lm_head
        self.blocks = list(self.gpt2.h)
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // self.heads

    def encode(self, pixels) -> DecoderState:
        """Pixels (images, 3, H, W) -> per block cross-attention keys and values (images, heads, positions, hd)."""
        hidden = self.encoder(pixel_values=pixels.to(self.model.dtype)).last_hidden_state  # (images, positions, width)
        if self.project is not None:
            hidden = self.project(hidden)  # (images, positions, hidden)
        images, positions, _ = hidden.shape
        context = []
        for block in self.blocks:
            key, value = block.crossattention.c_attn(hidden).split(block.crossattention.split_size, dim=2)
            shape = (images, positions, self.heads, self.head_dim)
            context.append((key.view(shape).transpose(1, 2), value.view(shape).transpose(1, 2)))  # (images, heads, positions, hd)
        return start_state(tuple(context), images, len(self.blocks))

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]:
        import torch

        ids = torch.from_numpy(np.asarray(tokens, dtype=np.int64)).to(self.gpt2.wte.weight.device)  # (rows,)
        positions = torch.tensor([state.steps], device=ids.device)  # (1,)
        context = tuple(tensor for pair in state.context for tensor in pair)
        logits, keys, values = self.logits(ids, positions, state.keys, state.values, context, state.beams)
        next_state = DecoderState(state.context, state.beams, keys, values, state.images, state.steps + 1)
        return log_probs_of(logits), next_state

    def logits(self, ids, positions, keys: tuple, values: tuple, context: tuple, beams: int):
        """One token per row (rows,) at ``positions`` (1,) -> logits (rows, vocab) and the grown caches; the
        tensor-only core of :meth:`step`, also what an exported step graph runs. ``context`` is every block's
        cross-attention keys and values, flat (key, value, key, value, ...)."""
        rows = ids.shape[0]
        hidden = self.gpt2.wte(ids) + self.gpt2.wpe.weight[positions]  # (rows, hidden)
        keys, values = list(keys), list(values)
        for layer, block in enumerate(self.blocks):
            attention = block.attn
            query, key, value = attention.c_attn(block.ln_1(hidden)).split(attention.split_size, dim=1)  # (rows, hidden) each
            shape = (rows, self.heads, 1, self.head_dim)
            keys[layer], values[layer] = grow_cache(keys, values, layer, key.view(shape), value.view(shape))
            attended = attend_own_cache(query.view(shape), keys[layer], values[layer], attention.scaling)  # (rows, hidden)
            hidden = hidden + attention.c_proj(attended)

            cross = block.crossattention
            cross_query = cross.q_attn(block.ln_cross_attn(hidden)).view(rows, self.heads, self.head_dim)
            attended = attend_per_image(cross_query, context[2 * layer], context[2 * layer + 1], beams, cross.scaling)
            hidden = hidden + cross.c_proj(attended)  # (rows, hidden)

            hidden = hidden + block.mlp(block.ln_2(hidden))
        return self.lm_head(self.gpt2.ln_f(hidden)), tuple(keys), tuple(values)  # (rows, vocab)
