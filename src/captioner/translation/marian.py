"""Offline translation with MarianMT models (Helsinki-NLP ``opus-mt-en-XX``) through transformers.

Used only when such models are on this machine: a folder of model folders named like the models
(``CAPTIONER_TRANSLATION_MODELS=/srv/opus`` holding ``opus-mt-en-de/``, ``opus-mt-en-jap/`` ...), or
the Hugging Face cache. Nothing is ever downloaded. Weights must be safetensors (no pickle).
"""

from __future__ import annotations

import threading
from pathlib import Path

from captioner.translation.base import LANGUAGE_NAMES, TranslationError, check_request

# Our language code -> the suffix of its Helsinki-NLP model id (opus-mt-en-<suffix>).
MODEL_SUFFIXES = {"ar": "ar", "it": "it", "ja": "jap", "ru": "ru", "de": "de", "es": "es", "fr": "fr",
                  "nl": "nl", "zh-Hans": "zh"}
# Multi-target models want a target token first; these are the ones for our languages.
TARGET_TOKENS = {"ar": ">>ara<<", "zh-Hans": ">>cmn_Hans<<"}
HUB_OWNER = "Helsinki-NLP"
MAX_NEW_TOKENS = 128  # longest translation, in tokens
NUM_BEAMS = 4  # beam width of the translation search


def model_id(language: str) -> str:
    return f"opus-mt-en-{MODEL_SUFFIXES[language]}"


def _is_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "source.spm").is_file()


def find_local_models(models_dir: str | Path | None) -> dict[str, Path]:
    """{language: model folder} for each ``opus-mt-en-XX`` folder in ``models_dir``, else in the HF cache."""
    found: dict[str, Path] = {}
    if models_dir:
        folder = Path(models_dir)
        if not folder.is_dir():
            raise ValueError(f"the translation models folder {folder} does not exist; "
                             "set CAPTIONER_TRANSLATION_MODELS to a folder of opus-mt-en-XX model folders")
        for language in MODEL_SUFFIXES:
            for name in (model_id(language), f"{HUB_OWNER}--{model_id(language)}"):
                if _is_model_folder(folder / name):
                    found[language] = folder / name
                    break
        return found
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return found
    for language in MODEL_SUFFIXES:
        config = try_to_load_from_cache(f"{HUB_OWNER}/{model_id(language)}", "config.json")
        if isinstance(config, str) and _is_model_folder(Path(config).parent):
            found[language] = Path(config).parent
    return found


class MarianTranslator:
    """Translates with local MarianMT models, one per target language, loaded on first use."""

    name = "marian"

    def __init__(self, model_folders: dict[str, Path], device: str = "cpu"):
        unknown = [code for code in model_folders if code not in LANGUAGE_NAMES]
        if unknown:
            raise ValueError(f"unknown translation language(s): {', '.join(unknown)}")
        self._folders = dict(model_folders)
        self._device = device
        self._loaded: dict[str, tuple] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_folder(cls, models_dir: str | Path | None) -> "MarianTranslator":
        return cls(find_local_models(models_dir))

    def languages(self) -> dict[str, str]:
        return {code: LANGUAGE_NAMES[code] for code in LANGUAGE_NAMES if code in self._folders}

    def _model(self, language: str):
        with self._lock:
            if language not in self._loaded:
                folder = self._folders[language]
                try:
                    from transformers import MarianMTModel, MarianTokenizer

                    tokenizer = MarianTokenizer.from_pretrained(folder, local_files_only=True)
                    model = MarianMTModel.from_pretrained(folder, local_files_only=True, use_safetensors=True)
                except (OSError, ValueError) as error:
                    raise TranslationError(f"cannot load the translation model in {folder}: "
                                           f"{str(error).splitlines()[0]} (it needs source.spm, target.spm, "
                                           "vocab.json, config.json and model.safetensors)") from None
                model.to(self._device).eval()
                self._loaded[language] = (tokenizer, model)
            return self._loaded[language]

    def translate(self, text: str, to: str) -> str:
        text = check_request(text, to, self.languages())
        tokenizer, model = self._model(to)
        import torch

        target = TARGET_TOKENS.get(to)
        if target and target in getattr(tokenizer, "supported_language_codes", ()):
            text = f"{target} {text}"
        batch = tokenizer([text], return_tensors="pt", truncation=True).to(self._device)  # (1, source tokens)
        with torch.inference_mode():
            output = model.generate(**batch, num_beams=NUM_BEAMS, max_new_tokens=MAX_NEW_TOKENS)  # (1, tokens)
        translated = tokenizer.decode(output[0], skip_special_tokens=True).strip()
        if not translated:
            raise TranslationError(f"the {LANGUAGE_NAMES[to]} translation model produced no text for this caption")
        return translated
