"""A tiny ViT-GPT2 built from configs, with a byte-level BPE tokenizer trained on the spot on shapes
captions. Shared by the ViT-GPT2 tests; nothing here touches the network."""

from __future__ import annotations

import csv
import random
from pathlib import Path

END = "<|endoftext|>"
IMAGE_SIZE = 32


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


def write_shapes_prepared(dataset: Path, out: Path) -> Path:
    """A prepared folder (train/val/test by a seeded split) from a shapes data set in the CSV layout."""
    from captioner.data.prepared import PreparedItem, write_prepared
    from captioner.data.text import Vocabulary, clean_caption

    by_image: dict[str, list[str]] = {}
    with open(dataset / "captions.txt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            by_image.setdefault(row["image"], []).append(row["caption"])
    names = sorted(by_image)
    random.Random(0).shuffle(names)
    cut_val, cut_test = int(len(names) * 0.7), int(len(names) * 0.85)
    groups = {"train": names[:cut_val], "val": names[cut_val:cut_test], "test": names[cut_test:]}
    splits = {split: [PreparedItem(n, tuple(clean_caption(c) for c in by_image[n]), tuple(by_image[n]))
                      for n in chosen] for split, chosen in groups.items()}
    words = sorted({w for items in splits.values() for item in items for c in item.captions for w in c.split()})
    vocabulary = Vocabulary(["<pad>", "<unk>", *words])
    meta = {"name": "shapes", "dataset": str(dataset), "images_dir": str(dataset / "Images"), "layout": "csv",
            "counts": {k: len(v) for k, v in splits.items()}}
    write_prepared(out, meta, vocabulary, splits)
    return out


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
