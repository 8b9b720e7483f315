"""Tiny random BLIP, GIT and Florence-2 models built from their configs, with image processors and
tokenizers made offline from shapes captions, saved with ``save_pretrained`` the way the hub has them.
Shared by the image-to-text tests; nothing here touches the network. (The tiny ViT-GPT2 lives in
``support.tiny_vit_gpt2``.)"""

from __future__ import annotations

import re
from pathlib import Path

from support.tiny_vit_gpt2 import save_tiny_model, shapes_captions

BLIP_PROMPT = "a picture of"  # words that must be in the tiny BLIP's and GIT's vocabulary


def caption_words(captions: list[str]) -> list[str]:
    words = {word for caption in captions for word in re.findall(r"[a-z]+|[^\sa-z]", caption.lower())}
    return sorted(words | set(BLIP_PROMPT.split()))


def bert_tokenizer(captions: list[str], extra: tuple[str, ...] = ()):
    """A WordPiece (BERT) tokenizer whose vocabulary is the captions' words: one token per word."""
    from transformers import BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *extra]
    vocab = {token: index for index, token in enumerate(specials + caption_words(captions))}
    return BertTokenizer(vocab=vocab, **({"bos_token": "[DEC]"} if "[DEC]" in extra else {}))


def bart_tokenizer(captions: list[str]):
    """A byte-level BPE (BART) tokenizer trained on the captions, with Florence-2's image token."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartTokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(captions + ["What does the image describe?",
                                            "Describe in detail what is shown in the image.",
                                            "Describe with a paragraph what is shown in the image."],
                                vocab_size=400, min_frequency=1, special_tokens=specials)
    vocab = trainer.get_vocab()
    return BartTokenizer(vocab=vocab, merges=_merges(trainer), extra_special_tokens={"image_token": "<image>"})


def _merges(trainer) -> list[tuple[str, str]]:
    import json

    model = json.loads(trainer.to_str())["model"]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]


def tiny_blip(seed: int = 0, hidden: int = 32, image_size: int = 32, text_init: float = 0.02):
    """(model, processor): BLIP (ViT 32 px, patch 8) with a 2-layer BERT decoder; random weights."""
    import torch
    from transformers import (BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil, BlipProcessor,
                              BlipTextConfig, BlipVisionConfig)

    tokenizer = bert_tokenizer(shapes_captions(), extra=("[DEC]",))
    vocab = tokenizer.get_vocab()
    text = BlipTextConfig(vocab_size=len(vocab), hidden_size=hidden, encoder_hidden_size=hidden,
                          intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=2,
                          max_position_embeddings=64, initializer_range=text_init, bos_token_id=vocab["[DEC]"],
                          eos_token_id=vocab["[SEP]"], sep_token_id=vocab["[SEP]"], pad_token_id=vocab["[PAD]"])
    vision = BlipVisionConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                              num_attention_heads=2, image_size=image_size, patch_size=8)
    config = BlipConfig(text_config=text.to_dict(), vision_config=vision.to_dict())
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(config)
    processor = BlipProcessor(BlipImageProcessorPil(size={"height": image_size, "width": image_size}), tokenizer)
    return model, processor


def tiny_git(seed: int = 0, hidden: int = 32, image_size: int = 32, init: float = 0.02):
    """(model, processor): GIT (CLIP-style ViT 32 px, patch 8) with a 2-layer decoder; random weights."""
    import torch
    from transformers import CLIPImageProcessorPil, GitConfig, GitForCausalLM, GitProcessor, GitVisionConfig

    tokenizer = bert_tokenizer(shapes_captions())
    vocab = tokenizer.get_vocab()
    vision = GitVisionConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                             num_attention_heads=2, image_size=image_size, patch_size=8)
    config = GitConfig(vision_config=vision.to_dict(), vocab_size=len(vocab), hidden_size=hidden,
                       num_hidden_layers=2, num_attention_heads=2, intermediate_size=2 * hidden,
                       max_position_embeddings=64, initializer_range=init, bos_token_id=vocab["[CLS]"],
                       eos_token_id=vocab["[SEP]"], pad_token_id=vocab["[PAD]"])
    torch.manual_seed(seed)
    model = GitForCausalLM(config)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": image_size},
                                            crop_size={"height": image_size, "width": image_size})
    return model, GitProcessor(image_processor, tokenizer)


def tiny_florence2(seed: int = 0, hidden: int = 32, image_size: int = 64, init: float = 0.02):
    """(model, processor): Florence-2 (a 4-stage DaViT on 64 px) with a 1+1-layer BART; random weights."""
    import torch
    from transformers import (BartConfig, CLIPImageProcessorPil, Florence2Config,
                              Florence2ForConditionalGeneration, Florence2Processor, Florence2VisionConfig)

    tokenizer = bart_tokenizer(shapes_captions())
    vocab_size = len(tokenizer)
    text = BartConfig(vocab_size=vocab_size, d_model=hidden, encoder_layers=1, decoder_layers=1,
                      encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=2 * hidden,
                      decoder_ffn_dim=2 * hidden, max_position_embeddings=128, init_std=init,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, decoder_start_token_id=tokenizer.eos_token_id,
                      forced_eos_token_id=tokenizer.eos_token_id)
    vision = Florence2VisionConfig(depths=(1, 1, 1, 1), embed_dim=(8, 16, 16, 32), num_heads=(1, 2, 2, 2),
                                   num_groups=(1, 2, 2, 2), window_size=2, projection_dim=hidden,
                                   drop_path_rate=0.0)
    config = Florence2Config(text_config=text.to_dict(), vision_config=vision.to_dict(),
                             image_token_id=tokenizer.image_token_id)
    torch.manual_seed(seed)
    model = Florence2ForConditionalGeneration(config)
    image_processor = CLIPImageProcessorPil(size={"height": image_size, "width": image_size}, do_center_crop=False,
                                            image_seq_length=(image_size // 32) ** 2 + 1)
    return model, Florence2Processor(image_processor, tokenizer)


BUILDERS = {"blip": tiny_blip, "git": tiny_git, "florence2": tiny_florence2}


def save_tiny(kind: str, folder: Path, seed: int = 0, **kwargs) -> Path:
    """A save_pretrained folder of a tiny model: ``vit-gpt2``, ``blip``, ``git`` or ``florence2``."""
    if kind == "vit-gpt2":
        return save_tiny_model(folder, seed, **kwargs)
    model, processor = BUILDERS[kind](seed, **kwargs)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
