"""BLIP captioning on the CPU: images/s at batch 8 through the one beam search over BLIP's cached decoder
step, against BLIP's own ``generate`` one image per call.

The model has the full size of Salesforce/blip-image-captioning-base (ViT-B/16 at 384 pixels, a 12-layer
BERT-base text decoder with cross-attention, 30524 tokens) with random weights built from ``BlipConfig()``,
so no download is needed. Both sides get the same preprocessed pixels and decode with beam search, 4
beams, 15 new tokens (``generate(pixel_values, num_beams=4, max_length=16)``, the prompt token counted).
- baseline: ``model.generate`` in float32, one image per call.
- ours: :func:`captioner.models.transformers.cached_decoder.decode_pixels` over 8 images at once, in the precision
  chosen for this machine (:mod:`captioner.models.transformers.precision`).
Every side runs on the same torch thread count: torch's default, or ``BENCH_THREADS``.
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_vit_gpt2 import bench_threads  # noqa: E402
from run import figure, run_alone  # noqa: E402


def run(quick: bool) -> list[dict]:
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration

    from captioner.models.base import Decoding
    from captioner.models.transformers.cached_decoder import cached_decoder_for, decode_pixels
    from captioner.models.transformers.precision import apply_precision, resolve_precision
    from captioner.models.transformers.word_limit import WordLimit

    threads = bench_threads()
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(BlipConfig()).eval()
    pixels = torch.randn(8, 3, 384, 384, generator=torch.Generator().manual_seed(1))  # (8, 3, 384, 384)
    precision = resolve_precision(None, "cpu")
    fast_model = apply_precision(copy.deepcopy(model), precision)
    decoder = cached_decoder_for(fast_model, 0, 0)
    decoding = Decoding.beam(4, max_length=16)
    nothing = torch.zeros(model.config.text_config.vocab_size, dtype=torch.bool)  # (vocab,): no word count
    limit = WordLimit(nothing, nothing, decoder.end_id, max_words=100, prompt_length=1, budget=15)  # 15 tokens

    def baseline(index: int):
        with torch.no_grad():
            return model.generate(pixel_values=pixels[index:index + 1], num_beams=4, max_length=16)

    def ours():
        return decode_pixels(decoder, pixels, decoding, limit)

    baseline(0), decode_pixels(decoder, pixels[:1], decoding, limit)  # first-call allocations
    singles, batches = [], []
    for index in range(2 if quick else 4):
        singles.append(timed(lambda: baseline(index)))
        if index < (1 if quick else 2):
            batches.append(timed(ours))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    note = (f"BLIP base size (ViT-B/16 384 px, BERT-base decoder), random weights, beam 4, 15 new tokens, CPU, "
            f"{threads} threads; load average {load:.1f} at the end; baseline: float32 generate(), one image per "
            f"call; ours: {precision}, 8 images per search")
    return [figure("blip images/s at batch 8 (CPU)", 8 / statistics.median(batches), 1 / statistics.median(singles),
                   "images/s", higher_is_better=True, note=note)]


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


if __name__ == "__main__":
    run_alone(run)
