"""Helpers the tests share (imported by test modules; conftest.py only holds fixtures):

- ``support.cli``: the command line in this process or in a fresh one, and ``assert_clean_failure``;
- ``support.web``: apps serving a models folder, test images, bundle copies, the gated captioner;
- ``support.tiny_vit_gpt2``: a tiny ViT-GPT2 built from configs with a tokenizer trained on the spot;
- ``support.tiny_image_to_text``: tiny BLIP, GIT and Florence-2 models with processors made offline;
- ``support.tiny_clip``: a tiny random CLIP with a character tokenizer, for CLIPScore;
- ``support.fake_azure_translator``: a local HTTP server that answers like Azure Translator;
- ``support.history_databases``: the databases the history tests run on;
- ``support.real_services``: a private PostgreSQL, Redis, a tiny filesystem, a record of files written.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
