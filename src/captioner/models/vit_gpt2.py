"""The ViT-GPT2 captioner (``nlpconnect/vit-gpt2-image-captioning`` and models fine-tuned from it).

A transformers ``VisionEncoderDecoderModel``: a ViT encoder reads the image, a GPT-2 decoder with
cross-attention writes the caption. Loaded from a model bundle (``captioner.json`` + ``model/``, a
``save_pretrained`` folder with safetensors weights, image processor and tokenizer) or from a hub
model id in the local cache, or any such folder.

Decoding follows the original: beam search with 4 beams, at most 16 words. The decoding contract of
:mod:`captioner.models.base` holds: ``max_length`` counts words, not BPE tokens
(:mod:`captioner.models.word_limit` converts), and a caption's ``score`` is its exact total
log-probability under the model: the sum, over every generated token up to and including the end
token, of ``log_softmax`` of the model's raw logits (before repetition penalties, n-gram bans or the
word limit, and without beam search's length normalisation).

Captions come from the one search of :mod:`captioner.models.decoding` over the cached decoder step of
:mod:`captioner.models.gpt2_decoder`, under the same word limit (float32 results equal ``generate``'s);
``generate`` only serves architectures without a cached step. The precision is
:mod:`captioner.models.precision`'s choice.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from captioner import environment
from captioner.config import VitGpt2Settings, settings_from_dict, settings_to_dict
from captioner.errors import ModelError, OfflineError
from captioner.models.base import Caption, Decoding
from captioner.models.bundle import BundleInfo
from captioner.models.hub import (DEFAULT_MODEL_ID, download_pretrained, find_pretrained, hub_offline,
                                  is_model_folder, local_model_folder, offline_hint)

if TYPE_CHECKING:
    import torch
    from PIL import Image

KIND = "vit-gpt2"
MODEL_FOLDER = "model"  # the save_pretrained folder inside a bundle
SETTINGS_KEY = "vit_gpt2"  # captioner.json: settings[SETTINGS_KEY] is a VitGpt2Settings
DEFAULT_BATCH_SIZE = 8  # images per generate() call

__all__ = ["VitGpt2Captioner", "download_pretrained", "load", "load_pretrained", "write_bundle", "DEFAULT_MODEL_ID"]


class _PixelInputsFilter(logging.Filter):
    """Drops transformers' warning about a missing attention mask: the encoder reads pixels, never padding."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "attention mask" not in record.getMessage()


_PIXEL_INPUTS_FILTER = _PixelInputsFilter()  # one instance: Logger.addFilter adds it once, however many loads


def configure_torch_threads() -> int:
    """Use every core this process may run on, unless the user chose (OMP_NUM_THREADS / MKL_NUM_THREADS)."""
    import torch

    if not environment.current().threads_chosen:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        if torch.get_num_threads() != cores:
            torch.set_num_threads(cores)
    return torch.get_num_threads()


def default_device() -> str:
    import torch

    return environment.current().device or ("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class ModelParts:
    """What a model folder holds: the network, its image processor and its tokenizer."""

    model: object  # transformers.VisionEncoderDecoderModel
    image_processor: object  # ViT image processor (PIL backend, as the original)
    tokenizer: object  # GPT-2 style tokenizer


def load_model_folder(folder: str | os.PathLike) -> ModelParts:
    """Read a ``save_pretrained`` folder (weights must be safetensors: no pickle is ever loaded here)."""
    folder = Path(folder)
    if not is_model_folder(folder):
        raise ModelError(f"{folder} is not a complete ViT-GPT2 model folder (config.json, preprocessor_config.json "
                         "and model.safetensors are needed); train or download the model again")
    import sys

    from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel
    from transformers.utils import logging as transformers_logging

    if not sys.stderr.isatty():  # no "Loading weights" bars in logs and pipes
        transformers_logging.disable_progress_bar()
    try:
        model = VisionEncoderDecoderModel.from_pretrained(folder, use_safetensors=True)
        # The PIL backend is the original ViTFeatureExtractor's arithmetic, and needs no torchvision.
        image_processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as error:
        raise ModelError(f"cannot load the ViT-GPT2 model in {folder}: {error}") from None
    prepare_special_tokens(model, tokenizer)
    return ModelParts(model, image_processor, tokenizer)


def prepare_special_tokens(model, tokenizer) -> None:
    """GPT-2 has no padding token: pad with the end token, and start decoding with it (as the original)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    end = tokenizer.eos_token_id
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else end
    for config in (model.config, model.generation_config):
        if getattr(config, "decoder_start_token_id", None) is None:
            config.decoder_start_token_id = start
        if getattr(config, "pad_token_id", None) is None:
            config.pad_token_id = tokenizer.pad_token_id
        if getattr(config, "eos_token_id", None) is None:
            config.eos_token_id = end


def generation_arguments(decoding: Decoding, word_limit) -> dict:
    """``generate`` keyword arguments for a Decoding, with its :class:`~captioner.models.word_limit.WordLimit`."""
    from transformers import LogitsProcessorList

    beams = decoding.beam_size if decoding.method == "beam" else 1
    arguments = {
        "num_beams": beams,
        "do_sample": False,
        "max_new_tokens": word_limit.budget,
        "logits_processor": LogitsProcessorList([word_limit]),
        "num_return_sequences": min(beams, decoding.alternatives + 1) if beams > 1 else 1,
        "repetition_penalty": decoding.repetition_penalty,
        "no_repeat_ngram_size": decoding.no_repeat_ngram_size,
        "output_logits": True,
        "return_dict_in_generate": True,
    }
    if beams > 1:
        arguments["length_penalty"] = decoding.length_penalty
    return arguments


def sequence_log_probs(output, end_token: int) -> "torch.Tensor":
    """Total log-probability of each returned sequence, from generate's raw logits.

    Follows each sequence back through the beams that produced it (``beam_indices``), takes
    ``log_softmax`` of the raw logits at each step and adds the chosen token's value, up to and
    including the first end token.
    """
    import torch

    tokens = output.sequences[:, 1:]  # (rows, steps): generated tokens after the decoder start token
    rows, steps = tokens.shape
    if getattr(output, "beam_indices", None) is None:  # greedy: row i of the logits always belongs to sequence i
        beam_rows = torch.arange(rows, device=tokens.device)[:, None].expand(rows, steps)  # (rows, steps)
    else:
        beam_rows = output.beam_indices[:, :steps].long()  # (rows, steps), -1 after a sequence ended
    total = torch.zeros(rows, dtype=torch.float64, device=tokens.device)  # (rows,)
    alive = torch.ones(rows, dtype=torch.bool, device=tokens.device)  # (rows,)
    for step in range(steps):
        source = beam_rows[:, step]  # (rows,)
        logits = output.logits[step][source.clamp(min=0)].float()  # (rows, vocab)
        chosen = torch.log_softmax(logits, dim=-1).gather(1, tokens[:, step : step + 1]).squeeze(1)  # (rows,)
        total += torch.where(alive & (source >= 0), chosen.double(), torch.zeros_like(total))
        alive &= tokens[:, step] != end_token
    return total


class VitGpt2Captioner:
    """A loaded ViT-GPT2 model behind the Captioner interface."""

    kind = KIND

    def __init__(self, parts: ModelParts, info: BundleInfo, default_decoding: Decoding | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, device: str | None = None, precision: str | None = None):
        import torch

        from captioner.models.cached_decoder import cached_decoder_for
        from captioner.models.precision import apply_precision, resolve_precision

        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.info = info
        self.name = info.name
        self.batch_size = batch_size
        self.device = torch.device(device or default_device())
        if self.device.type == "cpu":
            configure_torch_threads()
        self.precision = resolve_precision(precision, self.device)  # "float32" or "bfloat16"
        self.model = apply_precision(parts.model.to(self.device).eval(), self.precision)
        self.image_processor = parts.image_processor
        self.tokenizer = parts.tokenizer
        # the one search over a cached decoder step; None: this architecture decodes through generate()
        self.cached_decoder = cached_decoder_for(self.model, self.model.generation_config.decoder_start_token_id,
                                                 self.tokenizer.eos_token_id)
        self.default_decoding = default_decoding or decoding_for(VitGpt2Settings())
        self._word_starts: tuple | None = None  # (starts, special) tensors, built on first use
        logging.getLogger("transformers.generation.utils").addFilter(_PIXEL_INPUTS_FILTER)

    def word_limit(self, max_words: int):
        """The WordLimit processor for captions of at most ``max_words`` words."""
        import torch

        from captioner.models.word_limit import WordLimit, token_budget, word_start_table

        if self._word_starts is None:
            starts = torch.tensor(word_start_table(self.tokenizer), dtype=torch.bool, device=self.device)  # (vocab,)
            special = torch.zeros_like(starts)  # (vocab,)
            special[list(self.tokenizer.all_special_ids)] = True
            self._word_starts = (starts, special)
        decoder = self.model.config.decoder
        positions = getattr(decoder, "n_positions", None) or getattr(decoder, "max_position_embeddings", None)
        return WordLimit(*self._word_starts, self.tokenizer.eos_token_id, max_words, prompt_length=1,
                         budget=token_budget(max_words, positions))

    def caption(self, images: Sequence["Image.Image"], decoding: Decoding | None = None) -> list[Caption]:
        """Caption RGB images, ``batch_size`` at a time; one Caption per image, in order."""
        decoding = decoding or self.default_decoding
        results: list[Caption] = []
        for start in range(0, len(images), self.batch_size):
            results.extend(self._caption_batch(images[start : start + self.batch_size], decoding))
        return results

    def _caption_batch(self, images: Sequence["Image.Image"], decoding: Decoding) -> list[Caption]:
        import torch

        images = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        word_limit = self.word_limit(decoding.max_length)
        arguments = generation_arguments(decoding, word_limit)
        per_image = arguments["num_return_sequences"]
        with torch.inference_mode():
            pixels = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
            pixels = pixels.to(self.device, dtype=self.model.dtype)  # (batch, 3, height, width)
            if self.cached_decoder is not None:
                from captioner.models.cached_decoder import caption_pixels

                return caption_pixels(self.cached_decoder, self.tokenizer, pixels, decoding, word_limit, per_image)
            output = self.model.generate(pixel_values=pixels, **arguments)
            scores = sequence_log_probs(output, self.tokenizer.eos_token_id).tolist()  # (batch * per_image,)
        texts = [t.strip() for t in self.tokenizer.batch_decode(output.sequences, skip_special_tokens=True)]
        return [Caption.from_ranked([(texts[r], scores[r]) for r in range(i * per_image, (i + 1) * per_image)],
                                    decoding)
                for i in range(len(images))]


def settings_of(info: BundleInfo) -> VitGpt2Settings:
    return settings_from_dict(VitGpt2Settings, (info.settings or {}).get(SETTINGS_KEY))


def decoding_for(settings: VitGpt2Settings) -> Decoding:
    """The model's default decoding: the original's beam 4 and max length 16 unless the bundle says otherwise."""
    if settings.num_beams <= 1:
        return Decoding(method="greedy", max_length=settings.max_length)
    return Decoding(method="beam", beam_size=settings.num_beams, max_length=settings.max_length,
                    alternatives=min(3, settings.num_beams - 1))


def write_model_folder(folder: str | os.PathLike, model, image_processor, tokenizer) -> Path:
    """``save_pretrained`` the three parts into ``folder`` (safetensors weights), all or nothing."""
    from captioner.files import staged_folder

    folder = Path(folder)
    with staged_folder(folder) as staging:
        model.save_pretrained(staging)
        image_processor.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return folder


def write_bundle(bundle_dir: str | os.PathLike, parts: ModelParts, info: BundleInfo) -> Path:
    """A vit-gpt2 bundle: ``model/`` first, ``captioner.json`` last (its presence marks the bundle complete)."""
    from captioner.models.bundle import write_bundle_info

    bundle_dir = Path(bundle_dir)
    write_model_folder(bundle_dir / MODEL_FOLDER, parts.model, parts.image_processor, parts.tokenizer)
    info.kind = KIND
    write_bundle_info(bundle_dir, info)
    return bundle_dir


def load(bundle_dir: str | os.PathLike, info: BundleInfo) -> VitGpt2Captioner:
    """Load a vit-gpt2 bundle: ``captioner.json`` + ``model/``."""
    folder = Path(bundle_dir) / MODEL_FOLDER
    if not folder.is_dir():
        raise ModelError(f"the bundle {bundle_dir} has no {MODEL_FOLDER}/ folder; train or copy it again")
    settings = settings_of(info)
    return VitGpt2Captioner(load_model_folder(folder), info, decoding_for(settings))


def resolve_pretrained(model_id_or_folder: str | os.PathLike = DEFAULT_MODEL_ID) -> Path:
    """The local folder of a model id (from the cache) or a folder path; fetches only when the hub is allowed."""
    candidate = Path(model_id_or_folder).expanduser()
    if candidate.is_dir():
        return local_model_folder(candidate)
    model_id = str(model_id_or_folder)
    found = find_pretrained(model_id)
    if found is not None:
        return found
    if hub_offline():
        raise OfflineError(offline_hint(model_id) + " (HF_HUB_OFFLINE is set)")
    return download_pretrained(model_id)


def load_pretrained(model_id_or_folder: str | os.PathLike = DEFAULT_MODEL_ID) -> VitGpt2Captioner:
    """Load a pretrained model by hub id (local cache first) or from a ``save_pretrained`` folder."""
    folder = resolve_pretrained(model_id_or_folder)
    parts = load_model_folder(folder)
    encoder = getattr(parts.model.config.encoder, "_name_or_path", "") or "vit"
    settings = VitGpt2Settings(source=str(model_id_or_folder))
    name = str(model_id_or_folder) if not Path(model_id_or_folder).is_dir() else Path(model_id_or_folder).name
    info = BundleInfo(kind=KIND, name=name, dataset="pretrained", backbone=encoder,
                      settings={SETTINGS_KEY: settings_to_dict(settings)})
    return VitGpt2Captioner(parts, info, decoding_for(settings))
