"""The ViT-GPT2 captioner (``nlpconnect/vit-gpt2-image-captioning`` and models fine-tuned from it) is the
``vit-gpt2`` architecture of the image-to-text kind (:mod:`captioner.models.transformers.image_to_text`); these names
stay importable from here for code written against the earlier vit-gpt2 kind."""

from captioner.models.transformers.image_to_text import (DEFAULT_MODEL_ID, MODEL_FOLDER, ImageToTextCaptioner, ModelParts,
                                            configure_torch_threads, decoding_for, default_device,
                                            download_pretrained, generation_arguments, load, load_model_folder,
                                            load_pretrained, prepare_special_tokens, resolve_pretrained,
                                            sequence_log_probs, write_bundle, write_model_folder)

VitGpt2Captioner = ImageToTextCaptioner

__all__ = ["DEFAULT_MODEL_ID", "MODEL_FOLDER", "ModelParts", "VitGpt2Captioner", "configure_torch_threads",
           "decoding_for", "default_device", "download_pretrained", "generation_arguments", "load",
           "load_model_folder", "load_pretrained", "prepare_special_tokens", "resolve_pretrained",
           "sequence_log_probs", "write_bundle", "write_model_folder"]
