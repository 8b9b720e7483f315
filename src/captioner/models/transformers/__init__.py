"""The transformers family: pretrained image-to-text captioners (ViT-GPT2, BLIP, GIT, Florence-2), their
hub names and downloads, and the cached decoder steps that caption them quickly on a CPU.

Only native transformers classes are used, never remote code. This package is imported lazily, when a model of
the family is loaded, so the command line and the web app start without PyTorch.
"""
