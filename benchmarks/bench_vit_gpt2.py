"""ViT-GPT2 captioning on the CPU: latency per image and images/s at batch 8, against the straightforward way.

The model has the full size of nlpconnect/vit-gpt2-image-captioning (ViT-base-patch16-224 encoder,
GPT-2 small decoder with cross-attention, 50257 tokens) with random weights built from configs, so no
download is needed; the work per caption is the same as the real model's whenever captions run to the
length limit (random weights rarely stop early, so every side decodes all 15 tokens).

Every side decodes with beam search, 4 beams, max_length 16 (the original's settings).
- baseline: the model card's way, one image per call: the image processor, then
  ``model.generate(pixel_values, max_length=16, num_beams=4)`` and ``batch_decode``, float32, without
  ``torch.inference_mode`` (``generate`` itself runs without gradients).
- ours: ``VitGpt2Captioner.caption`` with beam 4 and at most 14 words (every token of this tokenizer is a
  word, so 14 words and the end token: the same 15 decoder steps): the one beam search over the cached
  decoder step, in the precision the captioner chooses on this machine (bfloat16 where the CPU has native
  bf16), and with ``precision="float32"`` for the float32-exact row, whose captions are checked (untimed)
  to equal ``generate``'s under the same word limit. It also returns the best captions with their exact
  log-probabilities (work the baseline does not do); and with ``precision="int8"`` (int8 decoder weights).
The sides take turns image by image, so a busy moment on a shared machine hits them alike. Every side
runs on the same torch thread count: torch's default, or ``BENCH_THREADS``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import figure, run_alone  # noqa: E402

END = "<|endoftext|>"
VOCAB = 50257  # GPT-2's vocabulary size; the end token is the last one, as in GPT-2


def letters(number: int) -> str:
    """A word made of letters only for each number (a, b, ..., z, ba, bb, ...): one word per token id."""
    word = ""
    while True:
        number, digit = divmod(number, 26)
        word = "abcdefghijklmnopqrstuvwxyz"[digit] + word
        if number == 0:
            return word


def full_size_parts():
    """(model, image_processor, tokenizer) of nlpconnect's architecture, random weights, seeded."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (GenerationConfig, GPT2Config, PreTrainedTokenizerFast, ViTConfig,
                              ViTImageProcessorPil, VisionEncoderDecoderConfig, VisionEncoderDecoderModel)

    words = {letters(i): i for i in range(VOCAB - 1)} | {END: VOCAB - 1}
    backend = Tokenizer(models.WordLevel(vocab=words, unk_token=END))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=END, eos_token=END, pad_token=END,
                                        unk_token=END)
    encoder = ViTConfig()  # base: 12 layers, hidden 768, patch 16, image 224
    decoder = GPT2Config(vocab_size=VOCAB, add_cross_attention=True, bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = config.pad_token_id = config.eos_token_id = VOCAB - 1
    torch.manual_seed(0)
    model = VisionEncoderDecoderModel(config=config).eval()
    model.generation_config = GenerationConfig(decoder_start_token_id=VOCAB - 1, bos_token_id=VOCAB - 1,
                                               eos_token_id=VOCAB - 1, pad_token_id=VOCAB - 1)
    return model, ViTImageProcessorPil(size={"height": 224, "width": 224}), tokenizer


def photos(count: int):
    import random

    from captioner.data.shapes import make_picture

    rng = random.Random(0)
    return [make_picture(rng)[0].resize((640, 480)) for _ in range(count)]


def baseline_caption(model, processor, tokenizer, image) -> str:
    pixel_values = processor(images=image, return_tensors="pt").pixel_values
    output_ids = model.generate(pixel_values, max_length=16, num_beams=4)
    return tokenizer.batch_decode(output_ids, skip_special_tokens=True)[0].strip()


def timed(call):
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def bench_threads() -> int:
    """Threads for every side: BENCH_THREADS, else torch's default; captioners keep it (OMP_NUM_THREADS)."""
    import torch

    threads = int(os.environ.get("BENCH_THREADS") or torch.get_num_threads())
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    return threads


def run(quick: bool) -> list[dict]:
    import copy

    from captioner.models.base import Decoding
    from captioner.models.bundle import BundleInfo
    from captioner.models.transformers.vit_gpt2 import ModelParts, VitGpt2Captioner, generation_arguments

    threads = bench_threads()
    model, processor, tokenizer = full_size_parts()
    images = photos(8)
    singles = 3 if quick else 6
    warm = processor(images=images[:1], return_tensors="pt").pixel_values
    model.generate(warm, max_length=3, num_beams=4)  # first-call allocations

    decoding = Decoding.beam(4, max_length=14)
    exact = VitGpt2Captioner(ModelParts(model, processor, tokenizer), BundleInfo(kind="vit-gpt2", name="exact"),
                             batch_size=8, device="cpu", precision="float32")
    fast = VitGpt2Captioner(ModelParts(copy.deepcopy(model), processor, tokenizer),
                            BundleInfo(kind="vit-gpt2", name="bench"), batch_size=8, device="cpu")
    int8 = VitGpt2Captioner(ModelParts(copy.deepcopy(model), processor, tokenizer),
                            BundleInfo(kind="vit-gpt2", name="int8"), batch_size=8, device="cpu", precision="int8")
    for captioner in (exact, fast, int8):
        captioner.caption(images[:1], decoding)  # first-call allocations
    baseline, ours_exact, ours, ours_int8 = [], [], [], []
    for image in images[:singles]:
        baseline.append(timed(lambda: baseline_caption(model, processor, tokenizer, image)))
        ours_exact.append(timed(lambda: exact.caption([image], decoding)[0].text))
        ours.append(timed(lambda: fast.caption([image], decoding)[0].text))
        ours_int8.append(timed(lambda: int8.caption([image], decoding)[0].text))
    batches = [timed(lambda: fast.caption(images, decoding))[0] for _ in range(1 if quick else 2)]
    pixels = processor(images=images[:1], return_tensors="pt").pixel_values  # (1, 3, 224, 224)
    limited = model.generate(pixels, **generation_arguments(decoding, exact.word_limit(decoding.max_length)))
    if tokenizer.batch_decode(limited.sequences, skip_special_tokens=True)[0].strip() != ours_exact[0][1]:
        raise RuntimeError("float32 captions differ from generate's under the same word limit")
    agree = sum(a == b for (_, a), (_, b) in zip(ours, ours_exact))
    agree_int8 = sum(a == b for (_, a), (_, b) in zip(ours_int8, ours_exact))

    baseline_latency = statistics.median(t for t, _ in baseline)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    note = (f"ViT-base + GPT-2 small, random weights, beam 4, 15 decoder steps, CPU, {threads} threads; "
            f"load average {load:.1f} at the end; baseline: float32 generate(), one image per call")
    fast_note = f"{note}; ours in {fast.precision} ({agree}/{len(ours)} captions equal float32's)"
    return [
        figure("vit-gpt2 latency per image (CPU)", statistics.median(t for t, _ in ours), baseline_latency, "s",
               higher_is_better=False, note=fast_note + ", also returns 4 scored alternatives"),
        figure("vit-gpt2 int8 latency per image (CPU)", statistics.median(t for t, _ in ours_int8), baseline_latency,
               "s", higher_is_better=False,
               note=f"{note}; ours in int8 ({agree_int8}/{len(ours_int8)} captions equal float32's, random weights)"),
        figure("vit-gpt2 images/s at batch 8 (CPU)", 8 / statistics.median(batches), 1 / baseline_latency,
               "images/s", higher_is_better=True, note=fast_note),
        figure("vit-gpt2 float32-exact latency per image (CPU)", statistics.median(t for t, _ in ours_exact),
               baseline_latency, "s", higher_is_better=False,
               note=note + "; ours in float32, captions identical to generate()'s under the same word limit"),
    ]


if __name__ == "__main__":
    run_alone(run)
