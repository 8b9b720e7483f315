"""Sampling through ``generate`` by the one search's rule, for architectures without a cached decoder step.

``generate(do_sample=True)`` draws with ``torch.multinomial`` from the process-wide torch generator: a seed
would have to be set globally (unsafe beside other threads) and would tie every caption to the images
that share its batch. Instead :class:`SampledTokens`, the last logits processor of a greedy ``generate``,
draws each row's token with :func:`captioner.models.decoding.draw` from that row's own generator
(:func:`captioner.models.decoding.sample_generators`) and leaves only that token, which greedy search then
takes. So both paths sample alike: the same temperature, nucleus, seeds and generators per sample, after
the same word limit, and neither draws a special token other than the end (:func:`sampling_forbidden`);
the scores still come from the raw logits.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import LogitsProcessor

from captioner.models.base import Decoding
from captioner.models.decoding import draw, sample_generators


class SampledTokens(LogitsProcessor):
    """A transformers LogitsProcessor that leaves one token per row: the one drawn for that row."""

    def __init__(self, decoding: Decoding, images: int, samples: int, forbidden: torch.Tensor):
        self.temperature = decoding.temperature
        self.top_p = decoding.top_p
        self.forbidden = forbidden  # (vocab,) bool: tokens never drawn (see sampling_forbidden)
        # rows are image-major, ``samples`` per image; sample r of every image draws from generator r
        self.generators = [generator for _ in range(images)
                           for generator in sample_generators(decoding.seed, samples)]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        uniforms = 1.0 - np.array([generator.random() for generator in self.generators])  # (rows,) in (0, 1]
        vocab = scores.shape[1]  # the model's, which may be wider than the tokenizer's
        forbidden = torch.zeros(vocab, dtype=torch.bool, device=scores.device)  # (vocab,)
        forbidden[: len(self.forbidden)] = self.forbidden[:vocab]
        allowed = scores.masked_fill(forbidden[None, :], -torch.inf)  # (rows, vocab)
        chosen = draw(allowed.float().cpu().numpy(), self.temperature, self.top_p, uniforms)  # (rows,)
        only = torch.full_like(scores, -torch.inf)  # (rows, vocab)
        only[torch.arange(len(chosen), device=scores.device), torch.from_numpy(chosen).to(scores.device)] = 0.0
        return only


def sampling_forbidden(word_limit) -> torch.Tensor:
    """(vocab,) bool: the special tokens but the end token. Greedy and beam search never choose padding,
    start or unknown tokens in practice, but a draw can, and they would vanish from the text while their
    log-probability stayed in its score, so sampling rules them out (as the Keras kinds forbid theirs)."""
    forbidden = word_limit.special.clone()  # (vocab,)
    forbidden[word_limit.end_id] = False
    return forbidden
