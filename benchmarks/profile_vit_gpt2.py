"""Where the time of one ViT-GPT2 caption goes: a torch.profiler table of the cached-step beam search
(full-size random weights, beam 4, 15 new tokens), plus the encoder's share timed alone.

    PYTHONPATH=src python benchmarks/profile_vit_gpt2.py [float32|bfloat16] [images] [threads]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(precision: str = "bfloat16", images: int = 1, threads: int = 1) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from bench_vit_gpt2 import full_size_parts, photos
    from captioner.models.base import Decoding
    from captioner.models.transformers.cached_decoder import cached_decoder_for, decode_pixels
    from captioner.models.transformers.precision import apply_precision
    from captioner.models.transformers.word_limit import WordLimit

    torch.set_num_threads(threads)
    model, processor, _ = full_size_parts()
    apply_precision(model, precision)
    pixels = processor(images=photos(images), return_tensors="pt").pixel_values  # (images, 3, 224, 224)
    decoder = cached_decoder_for(model, 50256, 50256)
    decoding = Decoding.beam(4, max_length=16)
    nothing = torch.zeros(model.config.decoder.vocab_size, dtype=torch.bool)  # (vocab,): no word count
    limit = WordLimit(nothing, nothing, 50256, max_words=100, prompt_length=1, budget=15)  # 15 tokens, as generate
    decode_pixels(decoder, pixels, decoding, limit)  # first-call allocations
    with torch.inference_mode():
        started = time.perf_counter()
        decoder.encode(pixels)
        encode_s = time.perf_counter() - started
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        started = time.perf_counter()
        decode_pixels(decoder, pixels, decoding, limit)
        total_s = time.perf_counter() - started
    print(f"{precision}, {images} image(s), {threads} thread(s): {total_s:.2f} s in all, encoder {encode_s:.2f} s; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(profiled.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "bfloat16", int(args[1]) if len(args) > 1 else 1, int(args[2]) if len(args) > 2 else 1)
