"""SmolVLM-256M and SmolVLM-500M (Instruct) captioning on the CPU: latency per image and images/s at batch 8,
each against the model card's way, beside the other architectures' rows (bench_image_to_text).

Each model has its published checkpoint's full size, from the pinned revisions' config.json (SigLIP-B/16 at
512 px, pixel shuffle 4 to 64 image tokens per tile; SmolLM2-135M: 30 layers of 576, 9 heads, 3 key/value
heads; SmolLM2-360M: 32 layers of 960, 15 heads, 5 key/value heads; 49,280 tokens), with random weights built
from configs, so nothing is downloaded. The tokenizer is a stand-in of the same size whose word tokens each
decode as one word (the instruction is spelled in single characters, so the prompt is longer than the real
tokenizer's); random weights never stop early, so every caption runs to the length limit.

Both sides ask "Describe this image in one sentence." through the same chat template and decode greedily (the
VLMs' default) to max_length words (30; BENCH_QUICK=1: 8 words, SmolVLM-256M only, no untimed first call).
- baseline: the model card's way, one image per call: ``processor.apply_chat_template``, the processor with its
  defaults (image splitting on: a 640x480 photo becomes 12 tiles of 512 px plus the whole image, 832 image
  tokens), ``model.generate(**inputs, max_new_tokens=max_length)``, under torch's default thread count.
- ours: ``ImageToTextCaptioner.caption`` with its CPU default (tiling off: the whole image as one 512-px tile,
  64 image tokens; CAPTIONER_VLM_TILING=on restores the tiles), batches of 8, the word limit, scores.
So the ratio is mostly the tiling default: what a CPU user gets by default against the card's default.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_image_to_text import photos, timed, word_vocab  # noqa: E402
from run import figure, run_alone  # noqa: E402

SMOLVLM_TEXT = {  # the language half of each checkpoint's config.json (Llama layout)
    "smolvlm-256m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3),
    "smolvlm-500m": dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                         num_key_value_heads=5),
}
VOCAB = 49280
CHAT = ("<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
        "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
        "{% elif part['type'] == 'image' %}<image>{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
        "{% if add_generation_prompt %}Assistant:{% endif %}")
INSTRUCTION = "Describe this image in one sentence."
QUICK_MAX_LENGTH = 8
QUICK_MODELS = ("smolvlm-256m",)  # BENCH_QUICK=1: the smaller model only (a 13-tile baseline call takes a minute)


def smolvlm(name: str):
    """(model, processor) of SmolVLM at full size with random weights, and its images-only processor."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import GPT2Tokenizer, Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil
    from transformers import Idefics3Processor

    from captioner.models.transformers.vlm import images_only

    grid = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    specials = ["<|endoftext|>", "<end_of_utterance>", "<|im_start|>", "<fake_token_around_image>", "<image>",
                "<global-img>", *grid]
    characters = sorted(ByteLevel.alphabet())  # every byte, so any instruction can be spelled
    words = word_vocab(VOCAB - len(characters), specials, space="\u0120")
    vocab = {**words, **{c: len(words) + i for i, c in enumerate(characters) if c not in words}}
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=[], eos_token="<end_of_utterance>", pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": specials[1:]})
    config = Idefics3Config(
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=512, patch_size=16),
        text_config=dict(model_type="llama", vocab_size=len(tokenizer), max_position_embeddings=8192,
                         rope_theta=100000.0, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **SMOLVLM_TEXT[name]),
        scale_factor=4, image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    model = Idefics3ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    images = Idefics3ImageProcessorPil(size={"longest_edge": 2048}, max_image_size={"longest_edge": 512},
                                       do_image_splitting=True)  # the checkpoints' preprocessor_config.json
    processor = images_only(Idefics3Processor)(images, tokenizer, image_seq_len=64, chat_template=CHAT)
    return model, processor


def bench_one(name: str, quick: bool, images, default_threads: int) -> list[dict]:
    import torch

    from captioner.models.base import Decoding
    from captioner.models.bundle import BundleInfo
    from captioner.models.transformers.image_to_text import ImageToTextCaptioner, ModelParts

    torch.manual_seed(0)
    model, processor = smolvlm(name)
    decoding = Decoding(max_length=QUICK_MAX_LENGTH if quick else 30)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": INSTRUCTION}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)

    def baseline_caption(image) -> str:
        inputs = processor(text=text, images=[image], return_tensors="pt")
        output = model.generate(**inputs, max_new_tokens=decoding.max_length, do_sample=False)
        return processor.batch_decode(output[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]

    torch.set_num_threads(default_threads)
    with torch.inference_mode():
        if not quick:  # first-call allocations, for both sides (small beside a 13-tile call: skipped when quick)
            baseline_caption(images[0])
        singles = 1 if quick else 3
        baseline = [timed(lambda im=im: baseline_caption(im))[0] for im in images[:singles]]
    parts = ModelParts(model, processor.image_processor, processor.tokenizer, processor)
    captioner = ImageToTextCaptioner(parts, BundleInfo(kind="image-to-text", name=name), batch_size=8,
                                     device="cpu", precision="float32")
    threads = torch.get_num_threads()
    captioner.caption(images[:1], decoding)  # once untimed: builds the word-start table of the vocabulary
    ours = [timed(lambda im=im: captioner.caption([im], decoding))[0] for im in images[:singles]]
    batches = [timed(lambda: captioner.caption(images, decoding))[0] for _ in range(1 if quick else 2)]
    baseline_latency = statistics.median(baseline)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    note = (f"random weights at full size, greedy, max_length {decoding.max_length}, CPU, float32 both sides; "
            f"threads {threads} (torch default {default_threads}); load average {load:.1f}; baseline: the "
            "model card's defaults (image splitting: 13 tiles for a 640x480 photo), one image per generate(); "
            "ours: tiling off (the CPU default), one 512-px tile"
            + ("; BENCH_QUICK=1: one single-image call per side, no untimed first call, one batch" if quick else ""))
    print(f"   {name}: done", file=sys.stderr, flush=True)
    return [
        figure(f"{name} latency per image (CPU)", statistics.median(ours), baseline_latency, "s",
               higher_is_better=False, note=note),
        figure(f"{name} images/s at batch 8 (CPU)", 8 / statistics.median(batches), 1 / baseline_latency,
               "images/s", higher_is_better=True, note=note),
    ]


def run(quick: bool) -> list[dict]:
    import torch

    default_threads = torch.get_num_threads()
    images = photos(8)
    rows = []
    for name in SMOLVLM_TEXT if not quick else QUICK_MODELS:
        rows.extend(bench_one(name, quick, images, default_threads))
    return rows


if __name__ == "__main__":
    run_alone(run)
