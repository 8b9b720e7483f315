"""CLIPScore: how well a caption fits its image, without reference captions.

People's own photos have no reference captions, so BLEU and CIDEr cannot say which model describes them
best. CLIPScore (Hessel et al., 2021, "CLIPScore: A Reference-free Evaluation Metric for Image Captioning")
asks a CLIP model instead: embed the image and the caption, and

    CLIP-S(image, caption) = w * max(cos(E_image, E_caption), 0),   w = 2.5

where the caption is embedded with the paper's prompt in front ("A photo depicts ..."). The score runs from
0 to 2.5; on the paper's benchmarks good human captions land around 0.75-0.85 with ViT-B/32.

Long captions: CLIP reads at most 77 tokens (its position table). Longer ones are truncated to that
length, the end marker kept as the last token (as OpenAI's ``clip.tokenize(truncate=True)`` does); a
detailed description is scored on its first sentences only.

The CLIP model is transformers' native ``CLIPModel`` (never remote code), by default
``openai/clip-vit-base-patch32`` pinned to one revision, read from the local hub cache only (``captioner
models download clip-vit-base-patch32`` fetches it). ``CAPTIONER_SCORE_MODEL`` names another short name,
hub id or ``save_pretrained`` folder. It loads once per process, on the first score asked for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from captioner import environment
from captioner.errors import ModelError

SCORES = ("clip",)  # the reference-free scores a caption can be given (--score, score=)
CLIP_WEIGHT = 2.5  # the paper's w: stretches CLIP's cosines (rarely above 0.4) over a range near 0-1
CAPTION_PROMPT = "A photo depicts"  # the paper's prefix before every caption
BATCH_SIZE = 32  # images (and captions) embedded per forward pass


@dataclass(frozen=True)
class ClipModel:
    """One known CLIP checkpoint, pinned to a revision of its hub repository."""

    name: str  # the short name users type
    model_id: str  # hub repository
    revision: str  # the pinned commit


# The revision is the commit that public code and caches most often name for this repository
# (models--openai--clip-vit-base-patch32/snapshots/3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268).
CLIP_MODELS = {model.name: model for model in (
    ClipModel("clip-vit-base-patch32", "openai/clip-vit-base-patch32", "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268"),
)}
DEFAULT_CLIP = "clip-vit-base-patch32"


def known_clip(name_or_id: str) -> ClipModel | None:
    """The catalogue entry for a CLIP short name or its hub id; None for anything else."""
    return CLIP_MODELS.get(name_or_id) or next((m for m in CLIP_MODELS.values() if m.model_id == name_or_id), None)


def check_score(name: str | None) -> str | None:
    """``name`` when it is a score we compute (or None/"" for none); ValueError otherwise."""
    if not name:
        return None
    if name not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}, not {name!r}")
    return name


class ClipScorer:
    """A loaded CLIP: ``score(images, captions)`` gives each pair's CLIP-S."""

    def __init__(self, model, processor, name: str, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.processor = processor
        self.name = name
        self.device = device
        self.max_tokens = int(model.config.text_config.max_position_embeddings)  # 77 for OpenAI's CLIPs
        self._lock = threading.Lock()  # one forward pass at a time (web workers share the scorer)

    def score(self, images: Sequence, captions: Sequence[str]) -> list[float | None]:
        """CLIP-S of each (image, caption) pair; None for an empty caption (nothing to score)."""
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images and {len(captions)} captions: give one caption per image")
        wanted = [index for index, caption in enumerate(captions) if caption and caption.strip()]
        scores: list[float | None] = [None] * len(captions)
        for start in range(0, len(wanted), BATCH_SIZE):
            chunk = wanted[start:start + BATCH_SIZE]
            cosines = self.cosines([images[i] for i in chunk], [captions[i] for i in chunk])
            for index, cosine in zip(chunk, cosines):
                scores[index] = CLIP_WEIGHT * max(cosine, 0.0)
        return scores

    def cosines(self, images: Sequence, captions: Sequence[str]) -> list[float]:
        """cos(E_image, E_caption) of each pair, the captions with the paper's prompt in front."""
        import torch

        texts = [f"{CAPTION_PROMPT} {caption.strip()}" for caption in captions]
        with self._lock, torch.inference_mode():
            pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"]  # (batch, 3, h, w)
            tokens = self.processor.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens,
                                              return_tensors="pt")
            image = _features(self.model.get_image_features(pixel_values=pixels.to(self.device)))  # (batch, dim)
            text = _features(self.model.get_text_features(input_ids=tokens["input_ids"].to(self.device),
                                                          attention_mask=tokens["attention_mask"].to(self.device)))
            image = image / image.norm(p=2, dim=-1, keepdim=True)
            text = text / text.norm(p=2, dim=-1, keepdim=True)
            return (image * text).sum(dim=-1).float().cpu().tolist()  # (batch,)


def _features(output):
    """The projected embedding: a tensor (transformers 4) or an output's ``pooler_output`` (transformers 5)."""
    return output if hasattr(output, "norm") else output.pooler_output


_scorers: dict[str, ClipScorer] = {}
_loading = threading.Lock()


def score_model_name() -> str:
    """The CLIP that scores captions: ``CAPTIONER_SCORE_MODEL``, else clip-vit-base-patch32."""
    return environment.current().score_model or DEFAULT_CLIP


def require_score_model(score: str | None) -> None:
    """When ``score`` asks for one, check that its CLIP is on this machine (without loading it); a missing one
    is a ModelError naming the download command, raised before any work starts."""
    if check_score(score) is not None:
        clip_folder(score_model_name())


def clip_scorer(name_or_folder: str | None = None) -> ClipScorer:
    """The CLIP scorer of this process for a short name, hub id or folder (default: :func:`score_model_name`),
    loaded on first use and kept."""
    name = name_or_folder or score_model_name()
    with _loading:
        if name not in _scorers:
            _scorers[name] = load_scorer(name)
        return _scorers[name]


def score_captions(score: str | None, images: Sequence, captions: Sequence[str | None],
                   model: str | None = None) -> list[float | None]:
    """Each caption's ``score`` ("clip") against its image, by the CLIP ``model`` (default:
    :func:`score_model_name`); all None when no score is asked for."""
    if check_score(score) is None:
        return [None] * len(captions)
    return clip_scorer(model).score(images, [caption or "" for caption in captions])


def load_scorer(name_or_folder: str) -> ClipScorer:
    """Load a CLIP from a folder, or a short name or hub id from the local hub cache (never the network)."""
    try:
        from transformers import CLIPModel, CLIPProcessor

        from captioner.models.transformers.image_to_text import default_device
    except ImportError as error:
        raise ModelError(f"--score clip needs PyTorch and transformers ({error}); install captioner[vit]") from None
    folder = clip_folder(name_or_folder)
    try:
        model = CLIPModel.from_pretrained(folder, use_safetensors=True)
        processor = CLIPProcessor.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise ModelError(f"{folder} is not a complete CLIP model folder ({error}); "
                         f"run '{download_command(name_or_folder)}' again") from None
    return ClipScorer(model, processor, name_or_folder, default_device())


def clip_folder(name_or_folder: str) -> Path:
    """The local folder of a CLIP: the folder itself, or the cached snapshot of its (pinned) revision."""
    from captioner.models.transformers.hub import find_pretrained

    candidate = Path(name_or_folder).expanduser()
    if candidate.is_dir():
        if not (candidate / "config.json").is_file():
            raise ModelError(f"{candidate} holds no config.json; is it a CLIP model folder?")
        return candidate
    known = known_clip(name_or_folder)
    model_id, revision = (known.model_id, known.revision) if known else (name_or_folder, None)
    found = find_pretrained(model_id, revision=revision)
    if found is None:
        raise ModelError(f"the CLIP model for --score clip is not downloaded; run "
                         f"'{download_command(name_or_folder)}' (or set CAPTIONER_SCORE_MODEL to a CLIP folder)")
    return found


def download_command(name_or_id: str) -> str:
    known = known_clip(name_or_id)
    return f"captioner models download {known.name if known else name_or_id}"
