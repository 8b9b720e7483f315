"""BLIP-base, GIT-base and Florence-2-base captioning on the CPU: latency per image and images/s at batch 8,
each against the straightforward way, so users can weigh quality against CPU cost (ViT-GPT2's rows come
from bench_vit_gpt2).

Each model has its published checkpoint's full size (BLIP-base: ViT-B/16 at 384 px + a 12-layer BERT
decoder; GIT-base: CLIP ViT-B/16 at 224 px + a 6-layer decoder; Florence-2-base: DaViT at 768 px + a
6+6-layer BART, 577 image tokens) with random weights built from configs, so nothing is downloaded; random
weights rarely stop early, so every caption runs to the length limit, as a long real caption does.

Both sides decode with the model's default decoding here (beam 3 for BLIP and Florence-2, beam 4 for GIT,
max_length 20, Florence-2's <CAPTION> task; BENCH_QUICK=1 shortens captions to max_length 8).
- baseline: the model card's way, one image per call: the processor, ``model.generate(**inputs, num_beams=B,
  max_new_tokens=max_length)`` and ``batch_decode``, under torch's default thread count (every token of these
  stand-in vocabularies is a whole word, so both sides write the same number of words).
- ours: ``ImageToTextCaptioner.caption``: the one search over the cached decoder step, batches of 8 images,
  ``torch.inference_mode``, threads set to the cores this process may use, in the precision ``auto`` chooses
  for the model on this machine and in int8; it also returns scored alternatives.
The correctness check compares our float32 captions with the float32 baseline's; how often the bfloat16 or
int8 captions equal our float32 ones is reported in the note, never a failure (with random weights the
words are near-ties, so a different rounding soon picks another word).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import figure, run_alone  # noqa: E402


def letters(number: int) -> str:
    """0 -> "a", 25 -> "z", 26 -> "ba": a word of letters for each number (a tokenizer treats it as a word)."""
    word = ""
    while True:
        number, digit = divmod(number, 26)
        word = chr(ord("a") + digit) + word
        if not number:
            return word


def word_vocab(size: int, specials: list[str], space: str = "") -> dict[str, int]:
    """A stand-in vocabulary of ``size`` tokens, each a whole word of letters (``space``: a byte-level BPE's
    mark of a word that follows a space, so each token decodes as a new word)."""
    words = [f"{space}w{letters(i)}" for i in range(size - len(specials))]
    return {token: index for index, token in enumerate(specials + words)}


def blip_base():
    from transformers import (BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil, BlipProcessor,
                              BertTokenizer)

    tokenizer = BertTokenizer(vocab=word_vocab(30524, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]),
                              bos_token="[DEC]")
    config = BlipConfig(text_config={"bos_token_id": 5, "sep_token_id": 3, "eos_token_id": 3, "pad_token_id": 0},
                        vision_config={"image_size": 384})
    processor = BlipProcessor(BlipImageProcessorPil(size={"height": 384, "width": 384}), tokenizer)
    return BlipForConditionalGeneration(config), processor


def git_base():
    from transformers import BertTokenizer, CLIPImageProcessorPil, GitConfig, GitForCausalLM, GitProcessor

    tokenizer = BertTokenizer(vocab=word_vocab(30522, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    config = GitConfig(bos_token_id=2, eos_token_id=3, pad_token_id=0)
    return GitForCausalLM(config), GitProcessor(CLIPImageProcessorPil(), tokenizer)


def florence_2_base():
    from transformers import (BartConfig, BartTokenizer, CLIPImageProcessorPil, Florence2Config,
                              Florence2ForConditionalGeneration, Florence2Processor)

    tokenizer = BartTokenizer(vocab=word_vocab(51289, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], space="\u0120"),
                              merges=[],
                              extra_special_tokens={"image_token": "<image>"})
    text = BartConfig(vocab_size=len(tokenizer), d_model=768, encoder_layers=6, decoder_layers=6,
                      encoder_attention_heads=12, decoder_attention_heads=12, encoder_ffn_dim=3072,
                      decoder_ffn_dim=3072, max_position_embeddings=1024, bos_token_id=0, pad_token_id=1,
                      eos_token_id=2, decoder_start_token_id=2)
    config = Florence2Config(text_config=text.to_dict(), vision_config={"projection_dim": 768},
                             image_token_id=tokenizer.image_token_id)
    image_processor = CLIPImageProcessorPil(size={"height": 768, "width": 768}, do_center_crop=False,
                                            image_seq_length=577)
    return Florence2ForConditionalGeneration(config), Florence2Processor(image_processor, tokenizer)


QUICK_MAX_LENGTH = 8  # BENCH_QUICK=1: shorter captions, so the run fits in a few minutes on a busy machine
BUILDERS = {"blip-base": blip_base, "git-base": git_base, "florence-2-base": florence_2_base}


def photos(count: int):
    import random

    from captioner.data.shapes import make_picture

    rng = random.Random(0)
    return [make_picture(rng)[0].resize((640, 480)) for _ in range(count)]


def timed(call):
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def bench_one(name: str, quick: bool, images, default_threads: int) -> list[dict]:
    import torch

    from captioner.models.bundle import BundleInfo
    from captioner.models.transformers.image_to_text import ImageToTextCaptioner, ModelParts

    torch.manual_seed(0)
    model, processor = BUILDERS[name]()
    model.eval()
    parts = ModelParts(model, processor.image_processor, processor.tokenizer, processor)
    decoding = parts.architecture.default_decoding
    if quick:  # a short run: captions of 8 tokens instead of 20, the same for both sides
        decoding = decoding.with_changes(max_length=QUICK_MAX_LENGTH)
    prompt = parts.architecture.prompt.default if parts.architecture.prompt else ""
    start = 1  # every returned sequence starts with one start token here (no prompt)

    def baseline_caption(image) -> str:
        inputs = processor(images=image, text=prompt or None, return_tensors="pt")
        output = model.generate(**inputs, num_beams=decoding.beam_size, max_new_tokens=decoding.max_length)
        return " ".join(processor.tokenizer.batch_decode(output[:, start:], skip_special_tokens=True)[0].split())

    torch.set_num_threads(default_threads)
    baseline_caption(images[0])  # first-call allocations, for both sides
    singles = 1 if quick else 3
    baseline = [timed(lambda im=im: baseline_caption(im)) for im in images[:singles]]

    def captioner_in(precision: str | None):
        import copy

        own = ModelParts(copy.deepcopy(model), processor.image_processor, processor.tokenizer, processor)
        made = ImageToTextCaptioner(own, BundleInfo(kind="image-to-text", name=name), batch_size=8, device="cpu",
                                    precision=precision)
        made.caption(images[:1], decoding)  # once untimed: first-call allocations, the word-start table
        return made

    captioner = captioner_in(None)  # the precision this machine chooses
    threads = torch.get_num_threads()
    ours = [timed(lambda im=im: captioner.caption([im], decoding)[0].text) for im in images[:singles]]
    batches = [timed(lambda: captioner.caption(images, decoding))[0] for _ in range(1 if quick else 2)]
    int8 = captioner_in("int8")
    ours_int8 = [timed(lambda im=im: int8.caption([im], decoding)[0].text) for im in images[:singles]]
    exact = captioner if captioner.precision == "float32" else captioner_in("float32")
    exact_texts = [c.text for c in exact.caption(images[:singles], decoding)]
    # The correctness check compares like with like: our float32 captions against the float32 baseline's.
    # Every token of these vocabularies is a word, so both sides write max_length words; ours then ends the
    # caption (the word limit) and the beams may rank differently at that last step, so compare the start.
    if [text.split()[:3] for text in exact_texts] != [text.split()[:3] for _, text in baseline]:
        raise RuntimeError(f"{name}: our float32 captions differ from the straightforward way's")
    agreement = {precision: sum(a == b for (_, a), b in zip(side, exact_texts))
                 for precision, side in ((captioner.precision, ours), ("int8", ours_int8))}
    baseline_latency = statistics.median(t for t, _ in baseline)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    agrees = ", ".join(f"{precision} {same}/{singles}" for precision, same in agreement.items())
    note = (f"random weights at full size, beam {decoding.beam_size}, max_length {decoding.max_length}, CPU; "
            f"threads {threads} (torch default {default_threads}); the baseline in float32; load average "
            f"{load:.1f}; baseline: one image per generate() call; our float32 captions checked against it; "
            f"captions equal to our float32 ones (random weights): {agrees}"
            + ("; BENCH_QUICK=1: one single-image call per side and one batch" if quick else ""))
    path = "cached step" if captioner.cached_decoder is not None else "generate"
    print(f"   {name}: done", file=sys.stderr, flush=True)
    return [
        figure(f"{name} latency per image (CPU)", statistics.median(t for t, _ in ours), baseline_latency, "s",
               higher_is_better=False, note=f"ours in {captioner.precision} ({path}); {note}"),
        figure(f"{name} int8 latency per image (CPU)", statistics.median(t for t, _ in ours_int8), baseline_latency,
               "s", higher_is_better=False, note=f"ours in int8 ({path}); {note}"),
        figure(f"{name} images/s at batch 8 (CPU)", 8 / statistics.median(batches), 1 / baseline_latency,
               "images/s", higher_is_better=True, note=f"ours in {captioner.precision} ({path}); {note}"),
    ]


def run(quick: bool) -> list[dict]:
    import torch

    default_threads = torch.get_num_threads()
    images = photos(8)
    rows = []
    for name in BUILDERS:
        rows.extend(bench_one(name, quick, images, default_threads))
    return rows


if __name__ == "__main__":
    run_alone(run)
