"""The cached decoder step of ``Florence2ForConditionalGeneration`` (Florence-2), from its own layers.

Florence-2 is a DaViT image encoder whose 577 image tokens are put in front of the task's question
("What does the image describe?") and read by a BART encoder; a BART decoder writes the caption. Stock
``generate`` copies the encoder output to every beam and computes each decoder layer's cross-attention
keys and values from those copies. Here, per image, once: the image encoder, the BART encoder over image
and question, and per decoder layer the cross-attention keys and values (one row per image). Per step,
for every row: the scaled token embedding and the learned position (offset 2, as BART's), the embedding
layer norm, then per layer self-attention over the row's own cache, cross-attention of the image's beams
against the image's keys and values, and the feed-forward block (each followed by its post layer norm);
the language-model head gives the logits. The tokens Florence-2's generation config forces (``<s>`` first,
``</s>`` at the length limit) are forced by :func:`~captioner.models.transformers.cached_decoder.decode_pixels`.
"""

from __future__ import annotations

import numpy as np

from captioner.models.transformers.decoder_step import (DecoderState, attend_own_cache, attend_per_image, grow_cache,
                                                        log_probs_of, start_state)

POSITION_OFFSET = 2  # BartLearnedPositionalEmbedding looks positions up at index + 2


class Florence2ImageDecoder:
    """A Florence-2 model's image and text encoders and one-token BART decoder step, sharing its weights."""

    prompted = True  # the task's question is part of every encoding
    encodes_prompt = True  # encode reads the prompt's ids (an exported encoder takes them as an input)

    def __init__(self, model, start_id: int, end_id: int):
        self.model = model
        self.florence = model.model
        text = model.config.text_config
        self.start_id = start_id
        self.end_id = end_id
        self.bart_decoder = self.florence.language_model.decoder
        self.layers = list(self.bart_decoder.layers)
        self.heads = text.decoder_attention_heads
        self.head_dim = text.d_model // self.heads

    def encode(self, pixels, input_ids=None, attention_mask=None) -> DecoderState:
        """Pixels (images, 3, H, W) and the processor's ids (image placeholders and question, (images, tokens))
        -> per decoder layer cross-attention keys and values (images, heads, positions, head_dim)."""
        if input_ids is None:
            raise ValueError("Florence-2 encodes an image together with its task prompt (input_ids)")
        florence = self.florence
        embeddings = florence.get_input_embeddings()(input_ids)  # (images, tokens, width)
        features = florence.get_image_features(pixel_values=pixels.to(self.model.dtype)).pooler_output
        features = features.to(embeddings.device, embeddings.dtype)  # (images, image tokens, width)
        placeholders = florence.get_placeholder_mask(input_ids, inputs_embeds=embeddings, image_features=features)
        embeddings = embeddings.masked_scatter(placeholders, features)
        hidden = florence.language_model.encoder(attention_mask=attention_mask,
                                                 inputs_embeds=embeddings).last_hidden_state  # (images, tokens, width)
        images, positions, _ = hidden.shape
        mask = None  # all positions are read unless the processor padded some
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = ((1.0 - attention_mask[:, None, None, :].to(hidden.dtype))
                    * torch_min(hidden.dtype))  # (images, 1, 1, positions), additive
        shape = (images, positions, self.heads, self.head_dim)
        context = tuple((layer.encoder_attn.k_proj(hidden).view(shape).transpose(1, 2),
                         layer.encoder_attn.v_proj(hidden).view(shape).transpose(1, 2), mask)
                        for layer in self.layers)  # (images, heads, positions, head_dim) each
        return start_state(context, images, len(self.layers))

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]:
        import torch

        ids = torch.from_numpy(np.asarray(tokens, dtype=np.int64)).to(self.bart_decoder.embed_tokens.weight.device)
        positions = torch.tensor([state.steps], device=ids.device)  # (1,)
        masks = tuple(mask for _, _, mask in state.context)
        context = tuple(tensor for keys, values, _ in state.context for tensor in (keys, values))
        logits, keys, values = self.logits(ids, positions, state.keys, state.values, context, state.beams, masks)
        next_state = DecoderState(state.context, state.beams, keys, values, state.images, state.steps + 1)
        return log_probs_of(logits), next_state

    def logits(self, ids, positions, keys: tuple, values: tuple, context: tuple, beams: int, masks=None):
        """One token per row (rows,) at ``positions`` (1,) -> logits (rows, vocab) and the grown caches; the
        tensor-only core of :meth:`step`, also what an exported step graph runs. ``context`` is every layer's
        cross-attention keys and values, flat; ``masks`` their additive masks (None: every position read)."""
        decoder = self.bart_decoder
        rows = ids.shape[0]
        position = decoder.embed_positions.weight[positions + POSITION_OFFSET]  # (1, width)
        hidden = decoder.layernorm_embedding(decoder.embed_tokens(ids) + position)  # (rows, width)
        keys, values = list(keys), list(values)
        for index, layer in enumerate(self.layers):
            own = layer.self_attn
            shape = (rows, self.heads, 1, self.head_dim)
            keys[index], values[index] = grow_cache(keys, values, index, own.k_proj(hidden).view(shape),
                                                    own.v_proj(hidden).view(shape))
            attended = attend_own_cache(own.q_proj(hidden).view(shape), keys[index], values[index], own.scaling)
            hidden = layer.self_attn_layer_norm(hidden + own.out_proj(attended))  # (rows, width)

            cross = layer.encoder_attn
            mask = None if masks is None else masks[index]
            query = cross.q_proj(hidden).view(rows, self.heads, self.head_dim)
            attended = attend_per_image(query, context[2 * index], context[2 * index + 1], beams, cross.scaling, mask)
            hidden = layer.encoder_attn_layer_norm(hidden + cross.out_proj(attended))

            hidden = layer.final_layer_norm(hidden + layer.fc2(layer.activation_fn(layer.fc1(hidden))))
        return self.model.lm_head(hidden), tuple(keys), tuple(values)  # (rows, vocab)


def torch_min(dtype) -> float:
    import torch

    return torch.finfo(dtype).min
