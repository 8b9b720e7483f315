"""A cached decoder step for transformers image-to-text models, searched by :mod:`captioner.models.decoding`.

``generate`` copies each image's encoder output to every beam, computes the cross-attention keys and
values once per beam, and re-gathers all of them at every step. Here each image is encoded once and its
cross-attention keys and values are computed once, one row per image, and never copied: rows are
image-major with a fixed number of beams per image, so the beams of an image are folded into the query
axis of one attention call against that image's keys and values. Only the self-attention cache (a few
positions per beam) is reordered when the search reorders beams.

A model family supplies a :class:`CachedDecoder`: ``encode`` (pixels -> per-image context) and ``step``
(one token per row -> log-probabilities, next state), built from the model's own layers and weights
with the pieces of :mod:`captioner.models.transformers.decoder_step`.
:func:`cached_decoder_for` picks the one that fits a loaded model, or None (then the caller uses
``generate``).
Florence-2 (:mod:`captioner.models.transformers.florence2_decoder`) encodes its task prompt with the image;
GIT (:mod:`captioner.models.transformers.git_decoder`) keeps its image tokens' keys and values per image, and
a VLM (:mod:`captioner.models.transformers.vlm_decoder`) its prompt's, image and instruction together.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np

from captioner.models.base import Caption, Decoding
from captioner.models.transformers.decoder_step import DecoderState
from captioner.models.decoding import Hypothesis, StateOps, decode

if TYPE_CHECKING:
    import torch


def _repeat(state: DecoderState, times: int) -> DecoderState:
    """``times`` beams per image; the per-image context is not copied."""
    def repeated(cache):  # (rows, ...) -> (rows * times, ...)
        if cache is None:
            return None
        return np.repeat(cache, times, axis=0) if isinstance(cache, np.ndarray) else cache.repeat_interleave(times, 0)

    keys, values = tuple(map(repeated, state.keys)), tuple(map(repeated, state.values))
    return replace(state, beams=state.beams * times, keys=keys, values=values)


def _select(state: DecoderState, rows: np.ndarray) -> DecoderState:
    """Beams reordered (within their images): only the self-attention cache moves. The caches are torch tensors,
    or numpy arrays where ONNX Runtime made them (reordered in numpy: no torch work between two graph runs)."""
    import torch

    if state.keys[0] is None or np.array_equal(rows, np.arange(state.rows)):
        return state
    if isinstance(state.keys[0], np.ndarray):
        index = np.ascontiguousarray(rows, dtype=np.int64)  # (rows,)
        return replace(state, keys=tuple(k.take(index, axis=0) for k in state.keys),
                       values=tuple(v.take(index, axis=0) for v in state.values))
    index = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64)).to(state.keys[0].device)  # (rows,)
    return replace(state, keys=tuple(k.index_select(0, index) for k in state.keys),
                   values=tuple(v.index_select(0, index) for v in state.values))


TORCH_STATE = StateOps(rows=lambda state: state.rows, repeat=_repeat, select=_select)


class CachedDecoder(Protocol):
    """One model family's encoder and cached decoder step."""

    start_id: int  # the token every caption starts from
    end_id: int  # the token that ends a caption
    model: object  # the transformers model (its generation config says which tokens generate forces)
    prompted: bool  # True when ``encode`` reads the prompt's ids (Florence-2's task, BLIP's and GIT's caption prefix)

    def encode(self, pixels: "torch.Tensor", input_ids: "torch.Tensor | None" = None,
               attention_mask: "torch.Tensor | None" = None) -> DecoderState:
        """Pixels (images, 3, height, width), and the prompt's ids where the model reads one -> a state with
        one beam per image and an empty cache."""
        ...

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]:
        """Last tokens (rows,) -> float32 log-probabilities of the next token (rows, vocab), next state."""
        ...


def decode_pixels(decoder: CachedDecoder, pixels: "torch.Tensor", decoding: Decoding,
                  limit, input_ids=None, attention_mask=None) -> list[list[Hypothesis]]:
    """Hypotheses (best first) for each image, through the one search in :mod:`captioner.models.decoding`.

    ``limit`` is the :class:`~captioner.models.transformers.word_limit.WordLimit` that ``generate`` would get: its
    token budget bounds the search and its rule (no new word once ``max_length`` words are written)
    filters every step's candidates, as it filters ``generate``'s. ``input_ids`` and ``attention_mask`` are
    the prompt's, for a decoder that reads one. The model's generation config may force the first token
    (``forced_bos_token_id``) and the end token at the budget (``forced_eos_token_id``); the search does as
    ``generate`` does: only that token may be chosen, and a forced end ranks with log-probability 0.
    Sampling never draws a special token other than the end
    (:func:`~captioner.models.transformers.sampling.sampling_forbidden`).
    """
    import torch

    with torch.inference_mode():
        state = decoder.encode(pixels, input_ids, attention_mask) if decoder.prompted else decoder.encode(pixels)
        return decode_state(decoder, state, decoding, limit, caption_prefix(decoder, input_ids))


def decode_state(decoder: CachedDecoder, state: DecoderState, decoding: Decoding, limit,
                 prefix: tuple[int, ...] = ()) -> list[list[Hypothesis]]:
    """Hypotheses (best first) for each image of an encoded ``state``: :func:`decode_pixels` after the encoder
    (a VLM's prompt is encoded by its own ``encode_prompt``). ``prefix`` is the caption prefix given."""
    import torch

    config = decoder.model.generation_config
    token_filter = processor_filter(limit, decoder.start_id, decoder.end_id, prefix)
    max_tokens = limit.budget - 1
    forced_first = getattr(config, "forced_bos_token_id", None)
    if forced_first is not None:
        token_filter = forcing(token_filter, lambda history: len(history) == 0, forced_first, keep_score=True)
    if getattr(config, "forced_eos_token_id", None) == decoder.end_id:
        last = limit.budget - 1  # generated tokens before the forced end
        token_filter = forcing(token_filter, lambda history: len(history) >= last, decoder.end_id, keep_score=False)
        max_tokens = limit.budget  # the forced end comes first, so the search's own end rule never acts
    forbidden: list[int] = []
    if decoding.method == "sample":
        from captioner.models.transformers.sampling import sampling_forbidden

        forbidden = torch.nonzero(sampling_forbidden(limit)).flatten().tolist()
    with torch.inference_mode():
        return decode(decoder.step, state, decoding, decoder.start_id, decoder.end_id, forbidden, TORCH_STATE,
                      max_tokens=max_tokens, token_filter=token_filter)


def forcing(token_filter, applies, token: int, keep_score: bool):
    """``token_filter``, then in the rows whose history ``applies``, every token but ``token`` ruled out; that
    token keeps its score (generate's forced BOS) or ranks at 0 (its forced EOS)."""

    def forced(histories, ranked: np.ndarray) -> np.ndarray:
        ranked = token_filter(histories, ranked)
        rows = np.array([applies(history) for history in histories])  # (rows,)
        if rows.any():
            kept = ranked[rows, token].copy() if keep_score else 0.0
            ranked[rows] = -np.inf
            ranked[rows, token] = kept
        return ranked

    return forced


def caption_prefix(decoder: CachedDecoder, input_ids) -> tuple[int, ...]:
    """The tokens a caption starts with, given rather than generated (BLIP's caption prefix), else ()."""
    prefix = getattr(decoder, "prefix", None)
    return prefix(input_ids) if prefix is not None and decoder.prompted else ()


def processor_filter(limit, start_id: int, end_id: int, prefix: tuple[int, ...] = ()):
    """The word limit (:class:`~captioner.models.transformers.word_limit.WordLimit`) as the search's
    ``token_filter``: each row's history is given to its rule as ``generate`` holds it (start token and caption
    prefix first, finished rows padded with the end), and the tokens it rules out are masked in numpy, so no
    vocabulary-wide tensor work runs between two steps."""
    import torch

    def token_filter(histories, ranked: np.ndarray) -> np.ndarray:
        width = max((len(history) for history in histories), default=0)
        ids = torch.tensor([[start_id, *prefix, *history, *[end_id] * (width - len(history))]
                            for history in histories],
                           dtype=torch.long, device=limit.starts.device)  # (rows, 1 + width)
        rows, banned = (mask.cpu().numpy() for mask in limit.rule(ids, ranked.shape[1]))  # (rows,), (vocab,)
        if rows.any():
            ranked[rows] = np.where(banned, -np.inf, ranked[rows])  # (bound rows, vocab)
        return ranked

    return token_filter


def cached_decoder_for(model, start_id: int, end_id: int) -> CachedDecoder | None:
    """The cached decoder of a loaded transformers model, or None when its family has none here.

    ``start_id`` and ``end_id`` are the caption markers of a VisionEncoderDecoderModel (its tokenizer's);
    BLIP names its own in its text config.
    """
    name = type(model).__name__
    if name == "VisionEncoderDecoderModel" and type(model.decoder).__name__ == "GPT2LMHeadModel":
        from captioner.models.transformers.gpt2_decoder import Gpt2ImageDecoder

        return Gpt2ImageDecoder(model, start_id, end_id)
    if name == "BlipForConditionalGeneration":
        from captioner.models.transformers.blip_decoder import BlipImageDecoder

        return BlipImageDecoder(model)
    if name == "GitForCausalLM" and model.config.num_image_with_embedding is None:  # single images, not video
        from captioner.models.transformers.git_decoder import GitImageDecoder

        return GitImageDecoder(model)
    if name == "Florence2ForConditionalGeneration":
        from captioner.models.transformers.florence2_decoder import Florence2ImageDecoder

        return Florence2ImageDecoder(model, start_id, end_id)
    from captioner.models.transformers import vlm_decoder

    if vlm_decoder.fits(model):  # a VLM whose language model is a Llama or Qwen2 stack
        return vlm_decoder.VlmPromptDecoder(model, end_id)
    return None


def caption_pixels(decoder: CachedDecoder, tokenizer, inputs: dict, decoding: Decoding, limit,
                   returned: int) -> list[Caption]:
    """One Caption per image from its ``returned`` best hypotheses (as many as ``generate`` would return);
    ``inputs`` are the model's (pixel_values, and the prompt's input_ids and attention_mask where it has one)."""
    prefix = list(caption_prefix(decoder, inputs.get("input_ids")))  # a caption prefix is part of the text
    found = decode_pixels(decoder, inputs["pixel_values"], decoding, limit, inputs.get("input_ids"),
                          inputs.get("attention_mask"))
    return captions_of(found, tokenizer, decoding, returned, prefix)


def captions_of(found: list[list[Hypothesis]], tokenizer, decoding: Decoding, returned: int,
                prefix: Sequence[int] = ()) -> list[Caption]:
    """One Caption per image from its ``returned`` best hypotheses, their texts decoded after ``prefix``."""
    captions = []
    for hypotheses in found:
        kept: Sequence[Hypothesis] = hypotheses[:max(1, returned)]
        texts = [" ".join(t.split()) for t in tokenizer.batch_decode([[*prefix, *h.tokens] for h in kept],
                                                                     skip_special_tokens=True)]
        captions.append(Caption.from_ranked([(text, h.log_prob) for text, h in zip(texts, kept)], decoding))
    return captions
