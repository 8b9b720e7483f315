"""A tiny ViT-GPT2 built from configs, with a byte-level BPE tokenizer trained on the spot on shapes
captions. Shared by the ViT-GPT2 tests; nothing here touches the network."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from pathlib import Path

END = "<|endoftext|>"
IMAGE_SIZE = 32


@contextmanager
def single_thread():
    """torch on one thread (OMP_NUM_THREADS=1 too, so the captioner keeps it), restored afterwards."""
    import torch

    saved_env = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    saved_threads = torch.get_num_threads()
    os.environ.update({name: "1" for name in saved_env})
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved_threads)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def shapes_captions(count: int = 300, seed: int = 0) -> list[str]:
    """Captions in the shapes data set's wording, for training the tokenizer."""
    from captioner.data.shapes import describe, make_picture

    rng = random.Random(seed)
    captions = []
    for _ in range(count // 5):
        _, groups = make_picture(rng)
        captions.extend(describe(groups, rng))
    return captions


def train_tokenizer(captions: list[str]):
    """A word-level fast tokenizer trained on ``captions``; its only special token is <|endoftext|> (as GPT-2).

    One token per word makes token counts visible in the decoded text (words split on spaces).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(unk_token=END))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.train_from_iterator(captions, trainers.WordLevelTrainer(special_tokens=[END]))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=END, eos_token=END, unk_token=END,
                                   pad_token=END)


def tiny_parts(seed: int = 0, tokenizer=None, layers: int = 2, hidden: int = 32, decoder_init: float = 0.02):
    """(model, image_processor, tokenizer): ViT (image 32, patch 8) + GPT-2 with cross-attention, random weights.

    ``decoder_init`` is GPT-2's weight scale: the usual 0.02 gives near-uniform word probabilities (a model
    to train); 0.5 gives a random model with varied, peaked choices (a model to decode with).
    """
    import torch
    from transformers import (GenerationConfig, GPT2Config, ViTConfig, ViTImageProcessorPil,
                              VisionEncoderDecoderConfig, VisionEncoderDecoderModel)

    tokenizer = tokenizer or train_tokenizer(shapes_captions())
    encoder = ViTConfig(image_size=IMAGE_SIZE, patch_size=8, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=2 * hidden)
    decoder = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=hidden, n_layer=layers, n_head=2,
                         add_cross_attention=True, is_decoder=True, initializer_range=decoder_init,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    end = tokenizer.eos_token_id
    config.decoder_start_token_id = config.pad_token_id = config.eos_token_id = end
    torch.manual_seed(seed)
    model = VisionEncoderDecoderModel(config=config)
    model.generation_config = GenerationConfig(decoder_start_token_id=end, bos_token_id=end, eos_token_id=end,
                                               pad_token_id=end)
    processor = ViTImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return model, processor, tokenizer


def save_tiny_model(folder: Path, seed: int = 0, **kwargs) -> Path:
    """A save_pretrained folder of a tiny model (safetensors weights, image processor, tokenizer)."""
    model, processor, tokenizer = tiny_parts(seed, **kwargs)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_encoder_and_decoder(folder: Path, hidden: int = 32) -> tuple[Path, Path]:
    """A tiny ViT encoder folder (with image processor) and a tiny GPT-2 folder (with tokenizer), as on the hub."""
    from transformers import GPT2Config, GPT2LMHeadModel, ViTConfig, ViTImageProcessorPil, ViTModel

    tokenizer = train_tokenizer(shapes_captions())
    encoder = ViTModel(ViTConfig(image_size=IMAGE_SIZE, patch_size=8, hidden_size=hidden, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=2 * hidden))
    decoder = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=hidden, n_layer=2,
                                         n_head=2, bos_token_id=tokenizer.bos_token_id,
                                         eos_token_id=tokenizer.eos_token_id))
    encoder.save_pretrained(folder / "vit")
    ViTImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(folder / "vit")
    decoder.save_pretrained(folder / "gpt2")
    tokenizer.save_pretrained(folder / "gpt2")
    return folder / "vit", folder / "gpt2"


def fit_briefly(model, image_processor, tokenizer, images, captions: list[str], steps: int = 40, seed: int = 0):
    """A few plain teacher-forcing steps, so the tiny model writes caption-like text that ends."""
    import torch

    torch.manual_seed(seed)
    pixels = image_processor(images=images, return_tensors="pt")["pixel_values"]  # (n, 3, 32, 32)
    end = tokenizer.eos_token_id
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"] + [end] for c in captions]
    width = max(map(len, ids))
    labels = torch.tensor([row + [-100] * (width - len(row)) for row in ids])  # (n, width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model(pixel_values=pixels, labels=labels).loss.backward()
        optimizer.step()
    model.eval()
    return model
