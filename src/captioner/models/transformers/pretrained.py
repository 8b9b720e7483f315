"""The well-known pretrained captioners: short names pinned to a hub id and a revision, with the quality
their authors published.

Any other hub id of a supported architecture (see :mod:`captioner.models.transformers.image_to_text`) works by name;
these short names only save typing and make a download repeatable (the revision is a commit of the
hub repository, so the same name always means the same weights).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PretrainedModel:
    """One well-known checkpoint."""

    name: str  # the short name users type: "blip-base"
    model_id: str  # hub repository: "Salesforce/blip-image-captioning-base"
    revision: str  # the pinned commit of that repository
    architecture: str  # "vit-gpt2", "blip", "git" or "florence-2"
    coco_cider: float | None  # published COCO Karpathy-test CIDEr (x100), None when the authors published none
    quality_source: str  # where that figure comes from


KNOWN_MODELS = {model.name: model for model in (
    PretrainedModel("vit-gpt2", "nlpconnect/vit-gpt2-image-captioning", "dc68f91c06a1ba6f15268e5b9c13ae7a7c514084",
                    "vit-gpt2", None, "no COCO figure published"),
    PretrainedModel("blip-base", "Salesforce/blip-image-captioning-base", "82a37760796d32b1411fe092ab5d4e227313294b",
                    "blip", 133.3, "BLIP paper, Table 7 (ViT-B, CapFilt-L, 129M images)"),
    PretrainedModel("blip-large", "Salesforce/blip-image-captioning-large", "2227ac38c9f16105cb0412e7cab4759978a8fd90",
                    "blip", 136.7, "BLIP paper, Table 7 (ViT-L, 129M images)"),
    PretrainedModel("git-base-coco", "microsoft/git-base-coco", "a13141da42abd4a8cbf283601a8104265f537cee",
                    "git", 131.4, "GIT paper, GIT-base on COCO Karpathy test"),
    PretrainedModel("florence-2-base", "florence-community/Florence-2-base", "00921df66db728a9ceb750f5eca43e5c203a2051",
                    "florence-2", 133.0, "Florence-2 paper, Florence-2-B zero-shot"),
    PretrainedModel("florence-2-base-ft", "florence-community/Florence-2-base-ft",
                    "0b03b6f15a4a211370fb204aee4e7dd48887ea37", "florence-2", 140.0,
                    "Florence-2 paper, Florence-2-B fine-tuned generalist"),
)}
BY_MODEL_ID = {model.model_id: model for model in KNOWN_MODELS.values()}

# What the web app loads when CAPTIONER_PRETRAINED is not set (README: "Choosing pretrained models").
DEFAULT_PRETRAINED = ("vit-gpt2", "florence-2-base-ft")


def known_model(name_or_id: str) -> PretrainedModel | None:
    """The catalogue entry for a short name or its hub id; None for anything else."""
    return KNOWN_MODELS.get(name_or_id) or BY_MODEL_ID.get(name_or_id)


def hub_reference(name_or_id: str) -> tuple[str, str | None]:
    """(hub id, revision) for a short name or any hub id (None: the repository's newest revision)."""
    known = known_model(name_or_id)
    return (known.model_id, known.revision) if known else (name_or_id, None)


def download_command(name_or_id: str) -> str:
    """The command that fetches a model, as the error messages and pages show it."""
    known = known_model(name_or_id)
    return f"captioner models download {known.name if known else name_or_id}"
