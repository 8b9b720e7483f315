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


BUILDERS = {"blip": tiny_blip, "git": tiny_git, "florence2": tiny_florence2}  # more below


def save_tiny(kind: str, folder: Path, seed: int = 0, **kwargs) -> Path:
    """A save_pretrained folder of a tiny model: ``vit-gpt2``, a key of BUILDERS (blip, git, florence2, the VLMs)."""
    if kind == "vit-gpt2":
        return save_tiny_model(folder, seed, **kwargs)
    model, processor = BUILDERS[kind](seed, **kwargs)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


# --- vision-language models: a chat template, image placeholder tokens and a tokenizer made on the spot -------

VLM_TEXTS = ["Describe this image in one sentence.", "Describe this image in detail.", "user assistant User Assistant",
             "List keywords for this image, separated by commas."]
CHATML = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% for part in message['content'] %}"
          "{% if part['type'] == 'image' %}IMAGE{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
          "{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SMOLVLM_CHAT = ("<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
                "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
                "{% elif part['type'] == 'image' %}<image>{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
                "{% if add_generation_prompt %}Assistant:{% endif %}")


def chat_tokenizer(end: str, specials: list[str]):
    """A byte-level BPE tokenizer (Qwen2's class) trained on shapes captions and the style instructions, with a
    padding token, the chat's end token and the model's special tokens."""
    import json

    from tokenizers import ByteLevelBPETokenizer
    from transformers import Qwen2Tokenizer

    tokens = ["<|endoftext|>", end, *specials]
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(shapes_captions() + VLM_TEXTS, vocab_size=500, min_frequency=1, special_tokens=tokens)
    model = json.loads(trainer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=trainer.get_vocab(), merges=merges, unk_token=None, bos_token=None,
                               eos_token=end, pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": tokens[1:]})
    return tokenizer


def _small_text(tokenizer, hidden: int, model_type: str, **extra) -> dict:
    return dict(model_type=model_type, vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **extra)


def tiny_smolvlm(seed: int = 0, hidden: int = 32, image_size: int = 32):
    """(model, processor): SmolVLM's Idefics3 (a 1-layer SigLIP on 32 px, pixel shuffle 2, a 2-layer Llama)."""
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil

    from captioner.models.transformers.vlm import images_only
    from transformers import Idefics3Processor

    grid = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tokenizer = chat_tokenizer("<end_of_utterance>", ["<|im_start|>", "<fake_token_around_image>", "<image>",
                                                      "<global-img>", *grid])
    config = Idefics3Config(
        vision_config=dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
                           num_attention_heads=2, image_size=image_size, patch_size=8),
        text_config=_small_text(tokenizer, hidden, "llama"), scale_factor=2,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    images = Idefics3ImageProcessorPil(size={"longest_edge": 2 * image_size},
                                       max_image_size={"longest_edge": image_size}, do_image_splitting=True)
    image_tokens = (image_size // 8) ** 2 // 4
    return model, images_only(Idefics3Processor)(images, tokenizer, image_seq_len=image_tokens,
                                                 chat_template=SMOLVLM_CHAT)


def tiny_qwen3_vl(seed: int = 0, hidden: int = 32):
    """(model, processor): Qwen3-VL (a 1-layer vision tower, patch 8, merge 2; a 2-layer decoder), ChatML."""
    import torch
    from transformers import Qwen2VLImageProcessorPil, Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor

    from captioner.models.transformers.vlm import images_only

    tokenizer = chat_tokenizer("<|im_end|>", ["<|im_start|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                                              "<|video_pad|>"])
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3VLConfig(
        vision_config=dict(depth=1, hidden_size=hidden, intermediate_size=2 * hidden, num_heads=2, patch_size=8,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=hidden,
                           num_position_embeddings=64, deepstack_visual_indexes=[0]),
        text_config=_small_text(tokenizer, hidden, "qwen3_vl_text", head_dim=16,
                                rope_scaling={"rope_type": "default", "mrope_section": [2, 3, 3],
                                              "mrope_interleaved": True}),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    images = Qwen2VLImageProcessorPil(patch_size=8, merge_size=2, temporal_patch_size=2, min_pixels=32 * 32,
                                      max_pixels=64 * 64)
    template = CHATML.replace("IMAGE", "<|vision_start|><|image_pad|><|vision_end|>")
    return model, images_only(Qwen3VLProcessor)(images, tokenizer, chat_template=template)


def tiny_llava_onevision(seed: int = 0, hidden: int = 32, image_size: int = 32):
    """(model, processor): LLaVA-OneVision (a 1-layer SigLIP on 32 px, an any-resolution grid up to 2x2 tiles,
    a 2-layer Qwen2), ChatML."""
    import torch
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration,
                              LlavaOnevisionImageProcessorPil, LlavaOnevisionProcessor)

    from captioner.models.transformers.vlm import images_only

    tokenizer = chat_tokenizer("<|im_end|>", ["<|im_start|>", "<image>", "<video>"])
    side = image_size
    grid = [[side, side], [side, 2 * side], [2 * side, side], [2 * side, 2 * side]]
    config = LlavaOnevisionConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=hidden, intermediate_size=2 * hidden,
                           num_hidden_layers=1, num_attention_heads=2, image_size=side, patch_size=8,
                           vision_use_head=False),
        text_config=_small_text(tokenizer, hidden, "qwen2"),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"), image_grid_pinpoints=grid,
        vision_feature_select_strategy="full", vision_feature_layer=-1)
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    images = LlavaOnevisionImageProcessorPil(size={"height": side, "width": side}, image_grid_pinpoints=grid)
    return model, images_only(LlavaOnevisionProcessor)(images, tokenizer, chat_template=CHATML.replace("IMAGE", "<image>\n"),
                                                       num_image_tokens=(side // 8) ** 2,
                                                       vision_feature_select_strategy="full")


def tiny_paligemma(seed: int = 0, hidden: int = 32, image_size: int = 32):
    """(model, processor): PaliGemma (a 1-layer SigLIP on 32 px, a 2-layer Gemma); no chat template: its
    prompts are task prefixes."""
    import torch
    from transformers import (PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor,
                              SiglipImageProcessorPil)

    tokenizer = chat_tokenizer("<eos>", ["<bos>", "<image>"])
    tokenizer.bos_token = "<bos>"
    text = dict(_small_text(tokenizer, hidden, "gemma", head_dim=16), bos_token_id=tokenizer.bos_token_id)
    config = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=hidden, intermediate_size=2 * hidden,
                           num_hidden_layers=1, num_attention_heads=2, image_size=image_size, patch_size=8,
                           projection_dim=hidden),
        text_config=text, image_token_index=tokenizer.convert_tokens_to_ids("<image>"), projection_dim=hidden)
    torch.manual_seed(seed)
    model = PaliGemmaForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    images = SiglipImageProcessorPil(size={"height": image_size, "width": image_size})
    images.image_seq_length = (image_size // 8) ** 2
    return model, PaliGemmaProcessor(images, tokenizer)


def tiny_llava(seed: int = 0, hidden: int = 32, image_size: int = 32):
    """(model, processor): a LLaVA as JoyCaption is published (a 1-layer SigLIP on 32 px, a 2-layer Llama),
    LlavaProcessor with a chat template."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor, SiglipImageProcessorPil

    from captioner.models.transformers.vlm import images_only

    tokenizer = chat_tokenizer("<|im_end|>", ["<|im_start|>", "<image>"])
    config = LlavaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=hidden, intermediate_size=2 * hidden,
                           num_hidden_layers=1, num_attention_heads=2, image_size=image_size, patch_size=8),
        text_config=_small_text(tokenizer, hidden, "llama"), image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="full", vision_feature_layer=-1)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    images = SiglipImageProcessorPil(size={"height": image_size, "width": image_size})
    return model, images_only(LlavaProcessor)(images, tokenizer, chat_template=CHATML.replace("IMAGE", "<image>\n"),
                                              patch_size=8, vision_feature_select_strategy="full",
                                              num_additional_image_tokens=0)


BUILDERS.update({"idefics3": tiny_smolvlm, "llava": tiny_llava, "qwen3_vl": tiny_qwen3_vl, "llava_onevision": tiny_llava_onevision,
                 "paligemma": tiny_paligemma})
VLM_TYPES = ("idefics3", "qwen3_vl", "llava_onevision")  # the tiny VLMs, by their config's model_type
