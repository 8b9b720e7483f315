"""The cached decoder step of a vision-language model whose language model is a Llama-family stack (SmolVLM's
Idefics3 and JoyCaption's LLaVA: Llama; LLaVA-OneVision: Qwen2), searched like the captioners' steps.

A VLM reads one prompt per image: the image's tokens and the instruction in the chat template. Everything
but the prompt's last token goes through the model's own forward once, one row per image; each layer's keys
and values of it (rotary embedding applied) are the image's context, shared by all of its beams (folded into
the query axis, as GIT's image tokens are) and never copied per beam, where ``generate`` copies the whole
prompt's cache to every beam and reorders it at every step. The prompt's last token is the search's start
token: the first step feeds it at the position after the context, so the first log-probabilities are the
ones ``generate`` takes at the end of the prompt. Per step, each row's token goes through every layer
(RMSNorm, projections, rotary embedding at its position, grouped-query attention over the image's context
and the row's own cache under one softmax, MLP) and the language-model head.

It fits where every image's prompt has the same tokens up to the image and the same length (one instruction,
no padding: :func:`reads_batch`), and where the text model is a plain Llama or Qwen2 stack
(:func:`fits`); otherwise the VLM decodes through ``generate``. The repetition rules of ``generate`` count
the prompt's tokens too, which the search does not: with either rule asked for, ``generate`` runs.
"""

from __future__ import annotations

import numpy as np

from captioner.models.transformers.decoder_step import DecoderState, grow_cache, prefixed_step, start_state

TEXT_MODELS = ("LlamaModel", "Qwen2Model")  # text stacks whose layers this step runs exactly


def text_model(model):
    """A VLM's language model stack (SmolVLM: ``text_model``; LLaVA and LLaVA-OneVision: ``language_model``)."""
    inner = getattr(model, "model", None)
    return getattr(inner, "text_model", None) or getattr(inner, "language_model", None)


def fits(model) -> bool:
    """Whether ``model``'s language model is a stack this step computes as the model does: Llama or Qwen2
    layers, with rotary positions along one axis and no sliding window."""
    text = text_model(model)
    if text is None or type(text).__name__ not in TEXT_MODELS or not hasattr(model, "lm_head"):
        return False
    config = text.config
    rope = getattr(config, "rope_scaling", None) or getattr(config, "rope_parameters", None) or {}
    if isinstance(rope, dict) and "mrope_section" in rope:
        return False
    return not getattr(config, "use_sliding_window", False)


def reads_batch(inputs: dict) -> bool:
    """Whether a batch's prompts can share the step: no padding, and one last prompt token for every row."""
    ids, mask = inputs["input_ids"], inputs.get("attention_mask")
    return ids.shape[1] > 1 and (mask is None or bool(mask.all())) and bool((ids[:, -1] == ids[0, -1]).all())


class VlmPromptDecoder:
    """A VLM's prompt encoder (its own forward, all but the last token) and one-token step, sharing its weights."""

    prompted = True
    encodes_in_torch = True  # the prompt's forward (vision tower, projector, text stack) is the model's own
    feeds_width = True  # logits takes (rows, width) tokens

    def __init__(self, model, end_id: int):
        self.model = model
        self.text = text_model(model)
        config = self.text.config
        self.layers = list(self.text.layers)[:config.num_hidden_layers]
        self.end_id = end_id
        self.start_id = None  # the prompt's last token, set by encode_prompt
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.scale = self.head_dim ** -0.5

    def encode_prompt(self, inputs: dict) -> DecoderState:
        """The model's inputs for a batch (``reads_batch``) -> per layer the context's keys and values
        (images, kv heads, prompt tokens - 1, hd), one beam per image; the start token is the last prompt token."""
        ids = inputs["input_ids"]
        given = {**inputs, "input_ids": ids[:, :-1]}
        if "attention_mask" in inputs:
            given["attention_mask"] = inputs["attention_mask"][:, :-1]
        cache = self.model.model(**given, use_cache=True).cache  # the prompt's keys and values, per layer
        context = tuple((layer.keys, layer.values) for layer in cache.layers[:len(self.layers)])
        self.start_id = int(ids[0, -1])
        return start_state(context, len(ids), len(self.layers))

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]:
        return prefixed_step(self.logits, tokens, state, self.model.device, self.position_offset(state))

    @staticmethod
    def position_offset(state: DecoderState) -> int:
        """Positions before the rows' own tokens: the prompt's (all but its last token)."""
        return state.context[0][0].shape[2]

    def _split(self, projected, heads: int):
        rows, width, _ = projected.shape
        return projected.view(rows, width, heads, self.head_dim).transpose(1, 2)  # (rows, heads, width, hd)

    def logits(self, ids, positions, keys: tuple, values: tuple, context: tuple, beams: int):
        """Tokens (rows, width) at ``positions`` (width,), counted from the prompt's first token -> logits after
        the last (rows, vocab) and the grown caches; the tensor-only core of :meth:`step`, also what an exported
        step graph runs. ``context`` is every layer's prompt keys and values, flat (key, value, key, value, ...)."""
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        hidden = self.text.embed_tokens(ids)  # (rows, width, hidden)
        cos, sin = self.text.rotary_emb(hidden, position_ids=positions[None])  # (1, width, hd) each
        keys, values = list(keys), list(values)
        for index, layer in enumerate(self.layers):
            attention = layer.self_attn
            normed = layer.input_layernorm(hidden)
            query = self._split(attention.q_proj(normed), self.heads)
            key = self._split(attention.k_proj(normed), self.kv_heads)
            query, key = apply_rotary_pos_emb(query, key, cos, sin)
            keys[index], values[index] = grow_cache(keys, values, index, key,
                                                    self._split(attention.v_proj(normed), self.kv_heads))
            attended = attend_prompt_and_own(query, context[2 * index], context[2 * index + 1], keys[index],
                                             values[index], beams, self.scale)  # (rows, width, heads * hd)
            hidden = hidden + attention.o_proj(attended)
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        return self.model.lm_head(self.text.norm(hidden[:, -1])), tuple(keys), tuple(values)  # (rows, vocab)


def attend_prompt_and_own(query, prompt_keys, prompt_values, own_keys, own_values, beams: int, scale: float):
    """Each row's one new position (rows, heads, 1, hd) against its image's prompt keys and values (images,
    kv heads, tokens, hd), shared by the image's beams, and its own cache (rows, kv heads, steps, hd), under one
    softmax; query heads share kv heads in groups, as the model's ``repeat_kv`` pairs them -> (rows, 1, heads * hd)."""
    import torch

    rows, heads, width, head_dim = query.shape
    kv_heads = prompt_keys.shape[1]
    groups, images = heads // kv_heads, rows // beams
    grouped = query.reshape(images, beams, kv_heads, groups * width, head_dim).transpose(1, 2)
    grouped = grouped.reshape(images, kv_heads, beams * groups * width, head_dim)  # (images, kv, b * g * w, hd)
    prompt_scores = (grouped @ prompt_keys.transpose(-1, -2)) * scale  # (images, kv, b * g * w, tokens)
    tokens = prompt_keys.shape[2]
    prompt_scores = prompt_scores.view(images, kv_heads, beams, groups * width, tokens).transpose(1, 2)
    prompt_scores = prompt_scores.reshape(rows, kv_heads, groups * width, tokens)
    own_query = query.reshape(rows, kv_heads, groups * width, head_dim)
    own_scores = (own_query @ own_keys.transpose(-1, -2)) * scale  # (rows, kv, g * w, steps)
    probs = torch.softmax(torch.cat((prompt_scores, own_scores), dim=-1), dim=-1)
    prompt_probs = probs[..., :tokens].reshape(images, beams, kv_heads, groups * width, tokens).transpose(1, 2)
    prompt_part = prompt_probs.reshape(images, kv_heads, beams * groups * width, tokens) @ prompt_values
    prompt_part = prompt_part.view(images, kv_heads, beams, groups * width, head_dim).transpose(1, 2)
    out = prompt_part.reshape(rows, kv_heads, groups * width, head_dim) + probs[..., tokens:] @ own_values
    return out.reshape(rows, heads, width, head_dim).transpose(1, 2).reshape(rows, width, heads * head_dim)
