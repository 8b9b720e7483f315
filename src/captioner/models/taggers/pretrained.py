"""SmilingWolf's WD taggers by short name, each pinned to a public revision of its hub repository, fetched
through the same hub download path as the pretrained captioners (only ``model.onnx`` and ``selected_tags.csv``).

The pinned revisions are the repositories' ``main`` commits as of 2025-2026; ``revision_source`` is a public
page naming each one. All five v3 taggers are Apache-2.0 (their model cards) and share one tag list of 10,861
tags (8,106 general, 2,751 character, 4 rating).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from captioner.errors import OfflineError
from captioner.models.taggers.tag_list import TAGS_FILE

TAGGER_FILES = ["model.onnx", TAGS_FILE]


@dataclass(frozen=True)
class KnownTagger:
    name: str  # the short name users type
    model_id: str  # hub repository
    revision: str  # pinned commit
    licence: str
    revision_source: str  # public evidence that the pinned revision exists
    threshold: float  # the general threshold at which the model card reports precision = recall


def _card(model_id: str, revision: str) -> str:
    return f"https://huggingface.co/{model_id}/blob/{revision}/README.md"


KNOWN_TAGGERS = {tagger.name: tagger for tagger in (
    KnownTagger("wd-vit-tagger-v3", "SmilingWolf/wd-vit-tagger-v3", "7f6b584d0bd3f55c4531f14ba3d4761b2bccdc0f",
                "Apache-2.0", _card("SmilingWolf/wd-vit-tagger-v3", "7f6b584d0bd3f55c4531f14ba3d4761b2bccdc0f"),
                0.2614),
    KnownTagger("wd-swinv2-tagger-v3", "SmilingWolf/wd-swinv2-tagger-v3", "627aef95638667ddcaa3ac8ae625e88ea5b02f51",
                "Apache-2.0", _card("SmilingWolf/wd-swinv2-tagger-v3", "627aef95638667ddcaa3ac8ae625e88ea5b02f51"),
                0.2653),
    KnownTagger("wd-convnext-tagger-v3", "SmilingWolf/wd-convnext-tagger-v3",
                "d39e46de298d27340111b64965e20b8185c407e6", "Apache-2.0",
                _card("SmilingWolf/wd-convnext-tagger-v3", "d39e46de298d27340111b64965e20b8185c407e6"), 0.2682),
    KnownTagger("wd-vit-large-tagger-v3", "SmilingWolf/wd-vit-large-tagger-v3",
                "ae469aa2e4706a3af08d3673cf73a11d1add314c", "Apache-2.0",
                _card("SmilingWolf/wd-vit-large-tagger-v3", "ae469aa2e4706a3af08d3673cf73a11d1add314c"), 0.2606),
    KnownTagger("wd-eva02-large-tagger-v3", "SmilingWolf/wd-eva02-large-tagger-v3",
                "b25b82a03f7282e41aa2f257a52c7583b710bd1c", "Apache-2.0",
                _card("SmilingWolf/wd-eva02-large-tagger-v3", "b25b82a03f7282e41aa2f257a52c7583b710bd1c"), 0.5296),
)}
BY_MODEL_ID = {tagger.model_id: tagger for tagger in KNOWN_TAGGERS.values()}


def known_tagger(name_or_id: str) -> KnownTagger | None:
    return KNOWN_TAGGERS.get(name_or_id) or BY_MODEL_ID.get(name_or_id)


def tagger_folder(tagger: KnownTagger, cache_dir=None, download: bool = True) -> Path:
    """The local folder of a known tagger at its pinned revision: the hub cache first, else downloaded (only its
    graph and tag list); OfflineError when it is not cached and the hub cannot be reached."""
    from huggingface_hub import snapshot_download

    from captioner.models.transformers.hub import NETWORK_TIMEOUT_S, _network_error, hub_offline, hub_reachable

    try:
        found = Path(snapshot_download(tagger.model_id, revision=tagger.revision, cache_dir=cache_dir,
                                       allow_patterns=TAGGER_FILES, local_files_only=True))
        if all((found / name).is_file() for name in TAGGER_FILES):
            return found
    except Exception:  # noqa: BLE001 - not cached (huggingface_hub raises several types for that)
        pass
    hint = (f"the tagger {tagger.name!r} is not in the local cache and the Hugging Face hub cannot be reached; run "
            f"'captioner models download {tagger.name}' where there is internet access, or download model.onnx "
            f"and {TAGS_FILE} from {tagger.model_id} into a folder and pass its path")
    if not download or hub_offline() or not hub_reachable():
        raise OfflineError(hint)
    try:
        return Path(snapshot_download(tagger.model_id, revision=tagger.revision, cache_dir=cache_dir,
                                      allow_patterns=TAGGER_FILES, etag_timeout=NETWORK_TIMEOUT_S))
    except Exception as error:  # noqa: BLE001 - every failure becomes one message
        raise _network_error(tagger.model_id, error) from None
