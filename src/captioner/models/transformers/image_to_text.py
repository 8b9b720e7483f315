"""The image-to-text kind: transformers captioners (ViT-GPT2, BLIP, GIT, Florence-2, and the vision-language
models of :mod:`captioner.models.transformers.vlm`) behind one interface.

A model is a ``save_pretrained`` folder (safetensors weights, configuration, image processor, tokenizer).
Its architecture is read from ``config.json`` (``model_type``) and looked up in
:data:`captioner.models.transformers.architectures.ARCHITECTURES`, a
small table of what differs between them: the transformers class (native classes only, never remote
code), the prompt the model takes, its default decoding, and whether ``captioner train`` fine-tunes it.
Models load from a bundle (``captioner.json`` + ``model/``), a plain folder, the local hub cache or the
hub (short names such as ``blip-base`` are pinned to a revision, :mod:`captioner.models.transformers.pretrained`).
Bundles written with the older kind name ``vit-gpt2`` load here too.

Decoding follows the contract of :mod:`captioner.models.base`: :func:`generation_arguments` turns a
:class:`Decoding` into ``generate`` arguments (the one place that translates them), with a
:class:`~captioner.models.transformers.word_limit.WordLimit` so ``max_length`` counts words, not sub-word tokens,
and for sampling the search's own draw (:mod:`captioner.models.transformers.sampling`).
:func:`caption_batch` turns one batch of images into Captions; a caption's ``score`` is its exact total
log-probability under the model: the sum over every generated token, up to and including the end token,
of ``log_softmax`` of the raw logits (before repetition penalties, n-gram bans or the word limit, without
beam search's length normalisation). A prompt given to the model is not generated, so it is not scored;
BLIP and GIT captions begin with it, and its words count towards ``max_length``.

Every caption is written in a style (:mod:`captioner.models.styles`): a style may choose the prompt (a
Florence-2 task, a VLM's instruction) and finishes the text (alt text cut, keywords listed).

Captions come from the one search of :mod:`captioner.models.decoding` over a cached decoder step
(:mod:`captioner.models.transformers.cached_decoder`: ViT-GPT2, BLIP, GIT and Florence-2), else from ``generate``;
both apply the same word limit. The precision is :mod:`captioner.models.transformers.precision`'s choice, the
runtime (PyTorch or ONNX Runtime) :mod:`captioner.models.transformers.onnx_step`'s.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from captioner import environment
from captioner.config import VitGpt2Settings, settings_from_dict, settings_to_dict
from captioner.errors import ModelError, OfflineError
from captioner.models.transformers.architectures import (ARCHITECTURES, Architecture, architecture_for_config,
                                            architecture_of)
from captioner.models.base import Caption, Decoding, check_prompt
from captioner.models.bundle import BundleInfo
from captioner.models.transformers.generation import (end_token, generation_arguments, samples_per_image,
                                                       sequence_log_probs, word_limit)
from captioner.models.transformers.hub import (DEFAULT_MODEL_ID, download_pretrained, find_pretrained, hub_offline,
                                  local_model_folder, offline_hint)
from captioner.models.transformers.model_inputs import given_tokens, model_inputs, probe_inputs
from captioner.models.transformers.pretrained import PretrainedModel, hub_reference, known_model

if TYPE_CHECKING:
    from PIL import Image

KIND = "image-to-text"
LEGACY_KINDS = ("vit-gpt2",)  # kind names of bundles written before this module, still loaded here
MODEL_FOLDER = "model"  # the save_pretrained folder inside a bundle
SETTINGS_KEY = "image_to_text"  # captioner.json: settings[SETTINGS_KEY] is an ImageToTextSettings
LEGACY_SETTINGS_KEY = "vit_gpt2"  # where bundles of the vit-gpt2 kind kept the same settings
DEFAULT_BATCH_SIZE = 8  # images per generate() call

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
    """What a model folder holds: the network, its image processor and its tokenizer (and, for models whose
    inputs need more than pixels, the transformers processor that combines the two)."""

    model: object  # a transformers model of one of ARCHITECTURES
    image_processor: object  # PIL backend (no torchvision needed)
    tokenizer: object
    processor: object | None = None  # BlipProcessor, GitProcessor, Florence2Processor; None for ViT-GPT2
    architecture: Architecture = field(init=False)
    word_starts: tuple | None = field(default=None, init=False, repr=False)  # (starts, special), on first use

    def __post_init__(self) -> None:
        self.architecture = architecture_for_config(self.model.config)


def load_model_folder(folder: str | os.PathLike) -> ModelParts:
    """Read a ``save_pretrained`` folder (weights must be safetensors: no pickle is ever loaded here)."""
    from captioner.models.transformers.hub import is_model_folder

    folder = Path(folder)
    if not is_model_folder(folder):
        raise ModelError(f"{folder} is not a complete image-to-text model folder (config.json, an image processor "
                         "and model.safetensors are needed); train or download the model again")
    architecture = architecture_of(folder)
    import sys

    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    if not sys.stderr.isatty():  # no "Loading weights" bars in logs and pipes
        transformers_logging.disable_progress_bar()
    try:
        model = architecture.model_class().from_pretrained(folder, use_safetensors=True)
        if architecture.vision_language:
            from captioner.models.transformers.vlm import load_processor

            processor = load_processor(folder, architecture.name)
            image_processor, tokenizer = processor.image_processor, processor.tokenizer
        elif architecture.name == "vit-gpt2":
            # The PIL backend is the original ViTFeatureExtractor's arithmetic, and needs no torchvision.
            processor = None
            image_processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
            tokenizer = AutoTokenizer.from_pretrained(folder)
        else:
            processor = AutoProcessor.from_pretrained(folder, backend="pil")
            image_processor, tokenizer = processor.image_processor, processor.tokenizer
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise ModelError(f"cannot load the {architecture.name} model in {folder}: {error}") from None
    parts = ModelParts(model, image_processor, tokenizer, processor)
    prepare_special_tokens(parts.model, parts.tokenizer)
    return parts


def prepare_special_tokens(model, tokenizer) -> None:
    """ViT-GPT2: GPT-2 has no padding token, so pad with the end token and start decoding with it (as the
    original). The other architectures bring their own."""
    if getattr(model.config, "model_type", "") != "vision-encoder-decoder":
        return
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


# --- decoding: the one place Decoding becomes generate() arguments, and one batch becomes Captions --------


def caption_batch(parts: ModelParts, images: Sequence["Image.Image"], decoding: Decoding, prompt: str,
                  device, cached_decoder=None) -> list[Caption]:
    """One batch of RGB images into Captions (one per image, in order): through ``cached_decoder`` (the one
    search over a cached decoder step) when there is one that reads this prompt, else with ``generate``."""
    import torch

    per_image = samples_per_image(decoding)
    with torch.inference_mode():
        inputs = model_inputs(parts, images, prompt, device)
        given = given_tokens(parts, inputs)
        limit = word_limit(parts, decoding, prompt, given, device)
        arguments = generation_arguments(decoding, limit, len(images))
        if cached_decoder is not None and cached_decoder_reads(cached_decoder, prompt, decoding):
            from captioner.models.transformers.cached_decoder import caption_pixels

            return caption_pixels(cached_decoder, parts.tokenizer, inputs, decoding, limit, per_image)
        if decoding.method == "sample" and per_image > 1:  # each image's samples are rows of a greedy generate
            inputs = {key: value.repeat_interleave(per_image, dim=0) for key, value in inputs.items()}
        output = parts.model.generate(**inputs, **arguments)
        scores = sequence_log_probs(output, end_token(parts), given).tolist()  # (rows,)
    # Position 0 is the decoder's start token (or BLIP's/GIT's): never part of the caption; a prompt is.
    texts = [" ".join(t.split()) for t in parts.tokenizer.batch_decode(output.sequences[:, 1:],
                                                                       skip_special_tokens=True)]
    return [Caption.from_ranked([(texts[r], scores[r]) for r in range(i * per_image, (i + 1) * per_image)],
                                decoding)
            for i in range(len(images))]


def cached_decoder_reads(cached_decoder, prompt: str, decoding: Decoding) -> bool:
    """Whether ``cached_decoder`` gives ``generate``'s captions for this prompt: it reads the prompt, and a
    caption prefix meets no repetition rule (``generate`` applies those to the prefix too; the search does not)."""
    if not prompt:
        return True
    if not cached_decoder.prompted:
        return False
    prefixed = hasattr(cached_decoder, "prefix")
    return not (prefixed and (decoding.no_repeat_ngram_size or decoding.repetition_penalty != 1.0))


class ImageToTextCaptioner:
    """A loaded transformers image-to-text model behind the Captioner interface."""

    kind = KIND

    def __init__(self, parts: ModelParts, info: BundleInfo, default_decoding: Decoding | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, device: str | None = None,
                 reference: PretrainedModel | None = None, precision: str | None = None,
                 runtime: str | None = None):
        import torch

        from captioner.models.transformers.cached_decoder import cached_decoder_for
        from captioner.models.transformers.onnx_step import (onnx_decoder, precision_for_runtime, requested_runtime,
                                                             torch_precision)
        from captioner.models.transformers.precision import apply_precision, resolve_precision

        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.info = info
        self.name = info.name
        self.batch_size = batch_size
        self.device = torch.device(device or default_device())
        if self.device.type == "cpu":
            configure_torch_threads()
        self.parts = parts
        runtime = requested_runtime(runtime)  # auto, torch or onnx (onnx computes in float32 or int8)
        precision = precision_for_runtime(runtime, precision, parts.architecture.name, self.device)
        self.precision = resolve_precision(precision, self.device, parts.architecture.name)  # float32, bfloat16, int8
        held = torch_precision(runtime, self.precision)  # ONNX int8 quantises float32 graphs: PyTorch keeps float32
        parts.model = apply_precision(parts.model.to(self.device).eval(), held, self.device)
        self.vision_settings = None  # VLMs: the image bound and tiling in force (VisionLanguageSettings)
        if parts.architecture.vision_language:  # before any export: its probe sees the images as bounded
            from captioner.models.transformers.vlm import VisionLanguageSettings, bound_images

            self.vision_settings = VisionLanguageSettings.for_device(str(self.device))
            bound_images(parts.model, parts.processor, parts.architecture.name, self.vision_settings)
        # the one search over a cached decoder step; None: this architecture decodes through generate()
        start, end = parts.model.generation_config.decoder_start_token_id, end_token(parts)
        self.cached_decoder = cached_decoder_for(parts.model, start, end)
        # its encoder and steps through ONNX Runtime where chosen (self.runtime: "onnx"), else PyTorch ("torch")
        self.cached_decoder, self.runtime = onnx_decoder(self.cached_decoder, runtime, self.precision, self.device,
                                                         parts.architecture.name, lambda: probe_inputs(parts))
        if self.runtime == "torch" and held != self.precision:  # ONNX int8 could not run: PyTorch's int8 instead
            parts.model = apply_precision(parts.model, self.precision, self.device)
            self.cached_decoder = cached_decoder_for(parts.model, start, end)
        self.architecture = parts.architecture.name  # "vit-gpt2", "blip", "git", "florence-2", "smolvlm", ...
        self.prompt_option = parts.architecture.prompt  # what Decoding.prompt may say; None: no prompt
        self.styles = parts.architecture.styles  # the caption styles it writes (captioner.models.styles)
        self.reference = reference  # the catalogue entry (published quality) of a well-known checkpoint
        self.default_decoding = default_decoding or parts.architecture.default_decoding
        logging.getLogger("transformers.generation.utils").addFilter(_PIXEL_INPUTS_FILTER)

    @property
    def model(self):
        return self.parts.model

    @property
    def tokenizer(self):
        return self.parts.tokenizer

    def word_limit(self, max_words: int):
        """The WordLimit processor for captions of at most ``max_words`` words, without a prompt."""
        return word_limit(self.parts, Decoding(max_length=max_words), "", 1, self.device)

    def caption(self, images: Sequence["Image.Image"], decoding: Decoding | None = None) -> list[Caption]:
        """Caption RGB images, ``batch_size`` at a time; one Caption per image, in order."""
        from captioner.models.styles import check_style, finish

        decoding = decoding or self.default_decoding
        style = check_style(self, decoding.style)
        prompt = check_prompt(self, decoding.prompt)
        if not decoding.prompt.strip():  # a style with a prompt of its own (a Florence-2 task)
            prompt = dict(self.parts.architecture.style_prompts).get(style, prompt)
        if self.vision_settings is not None:  # a VLM: the instruction (the prompt, else the style's)
            from captioner.models.transformers import vlm

            prompt = vlm.check_instruction(self.tokenizer, vlm.instruction_for(self.parts.architecture, style, prompt))
        images = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        results: list[Caption] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            if self.vision_settings is not None:
                results.extend(vlm.caption_batch(self.parts, chunk, decoding, prompt, self.device, self.cached_decoder))
            else:
                results.extend(caption_batch(self.parts, chunk, decoding, prompt, self.device, self.cached_decoder))
        return [finish(caption, style) for caption in results]


# --- bundles and pretrained models ---------------------------------------------------------------------


def settings_of(info: BundleInfo) -> VitGpt2Settings:
    settings = info.settings or {}
    return settings_from_dict(VitGpt2Settings, settings.get(SETTINGS_KEY, settings.get(LEGACY_SETTINGS_KEY)))


def decoding_for(settings: VitGpt2Settings, architecture: Architecture | None = None) -> Decoding:
    """A bundle's default decoding: its settings' beam width and length (the architecture's own when unset)."""
    base = (architecture or ARCHITECTURES["vit-gpt2"]).default_decoding
    beams = settings.num_beams or (base.beam_size if base.method == "beam" else 1)
    length = settings.max_length or base.max_length
    if beams <= 1:
        return Decoding(method="greedy", max_length=length)
    return Decoding(method="beam", beam_size=beams, max_length=length, alternatives=min(3, beams - 1))


def write_model_folder(folder: str | os.PathLike, parts: ModelParts) -> Path:
    """``save_pretrained`` the model and its processing into ``folder`` (safetensors weights), all or nothing."""
    from captioner.files import staged_folder

    folder = Path(folder)
    with staged_folder(folder) as staging:
        parts.model.save_pretrained(staging)
        if parts.processor is not None:
            parts.processor.save_pretrained(staging)
        else:
            parts.image_processor.save_pretrained(staging)
            parts.tokenizer.save_pretrained(staging)
    return folder


def write_bundle(bundle_dir: str | os.PathLike, parts: ModelParts, info: BundleInfo) -> Path:
    """An image-to-text bundle: ``model/`` first, ``captioner.json`` last (its presence marks it complete)."""
    from captioner.models.bundle import write_bundle_info

    bundle_dir = Path(bundle_dir)
    write_model_folder(bundle_dir / MODEL_FOLDER, parts)
    info.kind = KIND
    write_bundle_info(bundle_dir, info)
    return bundle_dir


def load(bundle_dir: str | os.PathLike, info: BundleInfo) -> ImageToTextCaptioner:
    """Load an image-to-text (or older vit-gpt2) bundle: ``captioner.json`` + ``model/``."""
    folder = Path(bundle_dir) / MODEL_FOLDER
    if not folder.is_dir():
        raise ModelError(f"the bundle {bundle_dir} has no {MODEL_FOLDER}/ folder; train or copy it again")
    parts = load_model_folder(folder)
    return ImageToTextCaptioner(parts, info, decoding_for(settings_of(info), parts.architecture))


def resolve_pretrained(name_or_folder: str | os.PathLike = DEFAULT_MODEL_ID) -> Path:
    """The local folder of a short name or hub id (from the cache, at the pinned revision for short names) or
    a folder path; fetches only when the hub is allowed."""
    candidate = Path(name_or_folder).expanduser()
    if candidate.is_dir():
        return local_model_folder(candidate)
    model_id, revision = hub_reference(str(name_or_folder))
    found = find_pretrained(model_id, revision=revision)
    if found is not None:
        return found
    if hub_offline():
        raise OfflineError(offline_hint(model_id) + " (HF_HUB_OFFLINE is set)")
    return download_pretrained(model_id, revision=revision)


def load_pretrained(name_or_folder: str | os.PathLike = DEFAULT_MODEL_ID) -> ImageToTextCaptioner:
    """Load a pretrained model by short name or hub id (local cache first) or from a ``save_pretrained`` folder."""
    folder = resolve_pretrained(name_or_folder)
    parts = load_model_folder(folder)
    is_folder = Path(name_or_folder).expanduser().is_dir()
    reference = None if is_folder else known_model(str(name_or_folder))
    name = Path(name_or_folder).name if is_folder else (reference.name if reference else str(name_or_folder))
    settings = VitGpt2Settings(source=str(name_or_folder), architecture=parts.architecture.name, num_beams=0,
                               max_length=0)
    info = BundleInfo(kind=KIND, name=name, dataset="pretrained", backbone=encoder_name(parts),
                      settings={SETTINGS_KEY: settings_to_dict(settings)})
    return ImageToTextCaptioner(parts, info, decoding_for(settings, parts.architecture), reference=reference)


def encoder_name(parts: ModelParts) -> str:
    """What the image encoder is called, for listings."""
    config = parts.model.config
    encoder = getattr(config, "encoder", None) or getattr(config, "vision_config", None)
    named = getattr(encoder, "_name_or_path", "") if encoder is not None else ""
    kind = getattr(encoder, "model_type", "") if encoder is not None else ""
    return named or kind or parts.architecture.name


__all__ = ["ARCHITECTURES", "Architecture", "ImageToTextCaptioner", "ModelParts", "download_pretrained", "load",
           "load_pretrained", "write_bundle", "DEFAULT_MODEL_ID", "KIND"]
