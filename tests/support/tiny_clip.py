"""A tiny random CLIP built from its config, with a character-level CLIP tokenizer made on the spot, saved with
``save_pretrained`` the way the hub has it. It scores captions for the CLIPScore tests; nothing here touches
the network."""

from __future__ import annotations

import string
from pathlib import Path

IMAGE_SIZE = 32  # the tiny CLIP's input side; pictures of this size pass its processor unresized
CHARACTERS = string.ascii_lowercase + string.digits + ".,'-!?"


def character_tokenizer():
    """A CLIP tokenizer whose vocabulary is single characters (inside a word, and word-final with ``</w>``)
    and no merges: every caption spells out, so any text has a tokenization."""
    from transformers import CLIPTokenizer

    tokens = ["<|startoftext|>", "<|endoftext|>", *CHARACTERS, *(c + "</w>" for c in CHARACTERS)]
    return CLIPTokenizer(vocab={token: index for index, token in enumerate(tokens)}, merges=[])


def save_tiny_clip(folder: Path, seed: int = 1) -> Path:
    """A save_pretrained folder of a 2-layer CLIP (ViT 32 px, patch 8; 77 text positions, as OpenAI's).

    A random CLIP's cosines share one sign for every pair: seed 1 gives positive ones (scores above 0),
    seed 0 negative ones (every score clipped to 0)."""
    import torch
    from transformers import (CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTextConfig,
                              CLIPVisionConfig)

    tokenizer = character_tokenizer()
    text = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=2, max_position_embeddings=77, projection_dim=16,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                          pad_token_id=tokenizer.pad_token_id)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=IMAGE_SIZE, patch_size=8, projection_dim=16)
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16))
    processor = CLIPProcessor(CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE},
                                                    crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}), tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
