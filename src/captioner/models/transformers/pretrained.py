"""The well-known pretrained captioners: short names pinned to a hub id and a revision, with the quality
their authors published.

Any other hub id of a supported architecture (see :mod:`captioner.models.transformers.image_to_text`) works by name;
these short names only save typing and make a download repeatable (the revision is a commit of the
hub repository, so the same name always means the same weights). For the vision-language models,
``revision_source`` is a public page that names the pinned commit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PretrainedModel:
    """One well-known checkpoint."""

    name: str  # the short name users type: "blip-base"
    model_id: str  # hub repository: "Salesforce/blip-image-captioning-base"
    revision: str  # the pinned commit of that repository
    architecture: str  # "vit-gpt2", "blip", "git", "florence-2" or a VLM's ("smolvlm", "qwen3-vl", ...)
    coco_cider: float | None  # published COCO Karpathy-test CIDEr (x100), None when the authors published none
    quality_source: str  # where that figure comes from
    licence: str = ""  # the weights' licence, as the model card states it
    revision_source: str = ""  # public evidence that the pinned revision exists (a URL naming it)


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
    # Vision-language models (captioner.models.transformers.vlm). None publishes a COCO Karpathy-test CIDEr for
    # these instruct checkpoints; their cards report VQA-style benchmarks instead (docs/guides/instruction-models.md).
    PretrainedModel("smolvlm-256m", "HuggingFaceTB/SmolVLM-256M-Instruct", "c2bf2d847b92fbb2abe5a5b6e8825c99efcfade2",
                    "smolvlm", None, "no COCO caption figure published", "Apache-2.0",
                    "https://huggingface.co/HuggingFaceTB/SmolVLM-256M-Instruct/blob/"
                    "c2bf2d847b92fbb2abe5a5b6e8825c99efcfade2/config.json"),
    PretrainedModel("smolvlm-500m", "HuggingFaceTB/SmolVLM-500M-Instruct", "a7da5b986cb59b408707209984f360a5f4ad7e47",
                    "smolvlm", None, "no COCO caption figure published", "Apache-2.0",
                    "https://huggingface.co/HuggingFaceTB/SmolVLM-500M-Instruct/resolve/"
                    "a7da5b986cb59b408707209984f360a5f4ad7e47/README.md"),
    PretrainedModel("qwen3-vl-2b", "Qwen/Qwen3-VL-2B-Instruct", "89644892e4d85e24eaac8bacfd4f463576704203",
                    "qwen3-vl", None, "no COCO caption figure published", "Apache-2.0",
                    "https://huggingface.co/Qwen/Qwen3-VL-2B-Instruct/resolve/"
                    "89644892e4d85e24eaac8bacfd4f463576704203/config.json"),
    PretrainedModel("llava-onevision-0.5b", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
                    "74dd0bf867a4cda7950c17663794267c60cf4b40", "llava-onevision", None,
                    "no COCO caption figure published", "Apache-2.0",
                    "https://huggingface.co/llava-hf/llava-onevision-qwen2-0.5b-ov-hf/resolve/"
                    "74dd0bf867a4cda7950c17663794267c60cf4b40/"),
    PretrainedModel("internvl3-1b", "OpenGVLab/InternVL3-1B-hf", "014c0583a0d4bedf29fbe2dbff4f865eb998e171",
                    "internvl", None, "no COCO caption figure published",
                    "MIT (InternVL); its Qwen2.5 language part under the Qwen licence",
                    "https://huggingface.co/OpenGVLab/InternVL3-1B-hf/blob/"
                    "014c0583a0d4bedf29fbe2dbff4f865eb998e171/config.json"),
    PretrainedModel("joycaption-beta-one", "fancyfeast/llama-joycaption-beta-one-hf-llava",
                    "ebf414ea497a020da0f82df3913e5b6cb8e9663a", "llava", None, "no COCO caption figure published",
                    "no licence on its model card; built on Llama-3.1-8B-Instruct (Llama 3.1 Community License) "
                    "and SigLIP2 (Apache-2.0)",
                    "https://huggingface.co/fancyfeast/llama-joycaption-beta-one-hf-llava/blob/"
                    "ebf414ea497a020da0f82df3913e5b6cb8e9663a/README.md"),
    PretrainedModel("gemma-3-4b", "google/gemma-3-4b-it", "093f9f388b31de276ce2de164bdc2081324b9767",
                    "gemma3", None, "no COCO caption figure published",
                    "Gemma Terms of Use (gated: accept them on the hub and log in before downloading)",
                    "https://huggingface.co/google/gemma-3-4b-it/blob/"
                    "093f9f388b31de276ce2de164bdc2081324b9767/README.md"),
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
