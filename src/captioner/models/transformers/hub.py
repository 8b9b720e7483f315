"""Pretrained image-to-text models from the Hugging Face hub: finding them in the local cache, downloading them,
listing what is cached.

A model is used from a plain ``save_pretrained`` folder (ViT-GPT2, BLIP, GIT, Florence-2), with its
weights as safetensors. Short names (``blip-base``) are pinned to a revision (:mod:`captioner.models.transformers.pretrained`). :func:`download_pretrained` fetches only the files captioning needs
(configuration, tokenizer, image processor, weights) through ``huggingface_hub.snapshot_download``
into the usual hub cache. Repositories that publish only ``pytorch_model.bin`` (the original
``nlpconnect/vit-gpt2-image-captioning`` does) are converted once, right after the download, into a
safetensors folder beside the cache; the ``.bin`` is read with ``torch.load(weights_only=True)``
(transformers' own loader), which refuses arbitrary pickled objects, and never again after that.

Nothing here waits on a network that is not there: with ``HF_HUB_OFFLINE=1`` (or no route to the hub)
a model that is not cached raises :class:`~captioner.errors.OfflineError` with the way to get it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from captioner import environment
from captioner.errors import DownloadError, ModelError, OfflineError
from captioner.files import staged_folder
from captioner.models.transformers.pretrained import download_command

DEFAULT_MODEL_ID = "nlpconnect/vit-gpt2-image-captioning"
SAFE_WEIGHTS = "model.safetensors"
PICKLED_WEIGHTS = "pytorch_model.bin"
# Everything a captioning folder needs besides its weights (missing ones are simply not in the repo).
SUPPORT_FILES = ["config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json",
                 "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                 "vocab.json", "vocab.txt", "merges.txt", "chat_template.json", "chat_template.jinja",
                 "tokenizer.model"]
SHARDED_WEIGHTS = [f"{SAFE_WEIGHTS}.index.json", "model-*-of-*.safetensors"]  # larger models' weights in parts
REQUIRED_FILES = ("config.json",)
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")  # one of them holds the image processor
NETWORK_TIMEOUT_S = 10.0  # seconds to wait for the hub to answer before calling it unreachable
PROBE_TIMEOUT_S = 3.0  # seconds one TCP connection to the hub may take before the hub counts as unreachable


def offline_hint(model_id: str) -> str:
    return (f"the model {model_id!r} is not in the local cache and the Hugging Face hub cannot be reached; "
            f"run '{download_command(model_id)}' on a machine with internet access and copy the "
            "downloaded folder here, then pass its path (or its hub cache as HF_HUB_CACHE)")


def hub_offline() -> bool:
    """True when the user switched the hub off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or environment.current().hub_offline


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to the hub's host opens within ``timeout`` seconds (name lookup included).

    One quick look before any hub call: without it, huggingface_hub retries an unreachable hub for about
    half a minute, logging every retry.
    """
    import socket
    import threading
    from urllib.parse import urlparse

    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    address = (endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443))
    answered, opened = threading.Event(), []

    def connect() -> None:  # in a thread: a name lookup has no timeout of its own
        try:
            socket.create_connection(address, timeout=timeout).close()
            opened.append(True)
        except OSError:
            pass
        answered.set()

    threading.Thread(target=connect, name="hub-probe", daemon=True).start()
    return answered.wait(timeout) and bool(opened)


def is_model_folder(path: Path) -> bool:
    """A folder that holds a configuration, an image processor and safetensors weights."""
    return _has_support_files(path) and _has_safe_weights(path)


def _has_support_files(path: Path) -> bool:
    return (path.is_dir() and all((path / name).is_file() for name in REQUIRED_FILES)
            and any((path / name).is_file() for name in PROCESSOR_FILES))


def _has_safe_weights(path: Path) -> bool:
    return (path / SAFE_WEIGHTS).is_file() or (path / f"{SAFE_WEIGHTS}.index.json").is_file()


def converted_folder(model_id: str, cache_dir: str | os.PathLike | None = None, revision: str | None = None) -> Path:
    """Where the safetensors copy of a ``.bin``-only repository lives (beside the hub's own cache)."""
    from huggingface_hub import constants

    root = Path(cache_dir or constants.HF_HUB_CACHE)
    pinned = f"--{revision[:12]}" if revision else ""
    return root / f"captioner--{model_id.replace('/', '--')}{pinned}--safetensors"


def find_pretrained(model_id: str = DEFAULT_MODEL_ID, cache_dir: str | os.PathLike | None = None,
                    revision: str | None = None) -> Path | None:
    """The local folder of a model id (at ``revision``, else the cached newest), from the cache only (never the
    network); None when it is not there.

    A cached snapshot that holds only ``pytorch_model.bin`` is converted to safetensors here, once.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    converted = converted_folder(model_id, cache_dir, revision)
    if is_model_folder(converted):
        return converted
    try:
        snapshot = Path(snapshot_download(model_id, cache_dir=cache_dir, revision=revision, local_files_only=True,
                                          allow_patterns=[*SUPPORT_FILES, SAFE_WEIGHTS, *SHARDED_WEIGHTS,
                                                          PICKLED_WEIGHTS]))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    if is_model_folder(snapshot):
        return snapshot
    if (snapshot / PICKLED_WEIGHTS).is_file() and _has_support_files(snapshot):
        return convert_to_safetensors(snapshot, converted)
    return None


def local_model_folder(folder: Path) -> Path:
    """A local folder ready to load: itself, or its safetensors copy (made once, beside the hub cache) when it
    is a copied snapshot that holds only ``pytorch_model.bin``."""
    pickled_only = (not is_model_folder(folder) and (folder / PICKLED_WEIGHTS).is_file()
                    and _has_support_files(folder))
    if not pickled_only:
        return folder
    converted = converted_folder(str(folder.resolve()).strip(os.sep).replace(os.sep, "--"))
    return converted if is_model_folder(converted) else convert_to_safetensors(folder, converted)


def download_pretrained(model_id: str | None = None, cache_dir: str | os.PathLike | None = None,
                        revision: str | None = None) -> Path:
    """Fetch a pretrained captioner into the local cache (only the files captioning needs); returns its folder.

    ``model_id`` defaults to ``nlpconnect/vit-gpt2-image-captioning``; an existing local folder is checked
    and returned as it is. Already cached models are not fetched again. Raises OfflineError when the model
    is not cached and the hub cannot be reached, DownloadError when the hub refuses.
    """
    model_id = model_id or DEFAULT_MODEL_ID
    local = Path(model_id).expanduser()
    if local.is_dir():
        if not is_model_folder(local):
            raise ModelError(f"{local} is not a complete model folder: it needs {', '.join(REQUIRED_FILES)}, "
                             f"{' or '.join(PROCESSOR_FILES)} and {SAFE_WEIGHTS}")
        return local
    found = find_pretrained(model_id, cache_dir, revision)
    if found is not None:
        return found
    if hub_offline():
        raise OfflineError(offline_hint(model_id) + " (HF_HUB_OFFLINE is set)")
    if not hub_reachable():
        raise OfflineError(offline_hint(model_id))
    weights = _remote_weights_file(model_id, revision)
    snapshot = _snapshot(model_id, cache_dir, [*SUPPORT_FILES, *(SHARDED_WEIGHTS if weights == SHARDED_WEIGHTS[0]
                                                                 else [weights])], revision)
    if weights == PICKLED_WEIGHTS:
        return convert_to_safetensors(snapshot, converted_folder(model_id, cache_dir, revision))
    if not is_model_folder(snapshot):
        raise DownloadError(f"{model_id} lacks files a captioner needs ({', '.join(REQUIRED_FILES)} and "
                            f"{' or '.join(PROCESSOR_FILES)}); is it an image-to-text model?")
    return snapshot


def _remote_weights_file(model_id: str, revision: str | None = None) -> str:
    """The weights file to fetch: safetensors when the repository has them, else the PyTorch pickle."""
    from huggingface_hub import HfApi

    try:
        files = set(HfApi().list_repo_files(model_id, revision=revision))
    except Exception as error:  # noqa: BLE001 - every failure here becomes one message
        raise _network_error(model_id, error) from None
    if SAFE_WEIGHTS in files:
        return SAFE_WEIGHTS
    if SHARDED_WEIGHTS[0] in files:
        return SHARDED_WEIGHTS[0]
    if PICKLED_WEIGHTS in files:
        return PICKLED_WEIGHTS
    raise DownloadError(f"{model_id} has neither {SAFE_WEIGHTS} nor {PICKLED_WEIGHTS}; "
                        "is it a transformers model?")


def _snapshot(model_id: str, cache_dir, patterns: list[str], revision: str | None = None) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_id, cache_dir=cache_dir, allow_patterns=patterns, revision=revision,
                                      etag_timeout=NETWORK_TIMEOUT_S))
    except Exception as error:  # noqa: BLE001 - every failure here becomes one message
        raise _network_error(model_id, error) from None


def _network_error(model_id: str, error: Exception) -> Exception:
    """Our error for a failed hub call: offline, unknown repository, or another refusal."""
    from huggingface_hub.errors import GatedRepoError, OfflineModeIsEnabled, RepositoryNotFoundError

    if isinstance(error, (RepositoryNotFoundError, GatedRepoError)):
        return DownloadError(f"the hub has no public model {model_id!r} ({type(error).__name__}); "
                             "check the model id, or log in with 'hf auth login' for private models")
    names = {type(e).__name__ for e in (error, error.__cause__, error.__context__) if e is not None}
    connection = {"ConnectError", "ConnectTimeout", "TimeoutException", "ReadTimeout", "ConnectionError",
                  "LocalEntryNotFoundError", "OfflineModeIsEnabled", "ProxyError", "NetworkError"}
    if isinstance(error, (OfflineModeIsEnabled, ConnectionError, TimeoutError)) or names & connection:
        return OfflineError(offline_hint(model_id))
    return DownloadError(f"downloading {model_id} failed ({type(error).__name__}: {error}); "
                         f"run '{download_command(model_id)}' again to resume")


def convert_to_safetensors(source: Path, target: Path) -> Path:
    """Write a safetensors copy of a ``pytorch_model.bin`` model folder to ``target`` (all or nothing)."""
    with staged_folder(target) as staging:
        # transformers reads .bin files with torch.load(weights_only=True): tensors only, no code.
        model = _model_class(source).from_pretrained(source, use_safetensors=False)
        model.save_pretrained(staging)
        for name in SUPPORT_FILES:
            if (source / name).is_file() and not (staging / name).exists():
                shutil.copyfile(source / name, staging / name)
    return target


def _model_class(folder: Path):
    """The native transformers class of a captioner folder, or CLIPModel for the CLIP that scores captions."""
    import json

    from captioner.models.transformers.architectures import architecture_of

    try:
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        model_type = None
    if model_type == "clip":
        from transformers import CLIPModel

        return CLIPModel
    return architecture_of(folder).model_class()


def cached_models(cache_dir: str | os.PathLike | None = None) -> list[dict]:
    """Every image-to-text model in the local hub cache: ``{"name", "model_id", "revision", "architecture",
    "path", "size_bytes"}``, one per cached revision (and one per safetensors copy made from a ``.bin``)."""
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    from captioner.models.transformers.architectures import architecture_name
    from captioner.models.transformers.pretrained import known_model

    root = Path(cache_dir or constants.HF_HUB_CACHE)
    rows = []
    try:
        repos = scan_cache_dir(root).repos
    except (CacheNotFound, OSError):
        repos = []
    for repo in repos:
        if repo.repo_type != "model":
            continue
        for revision in repo.revisions:
            architecture = architecture_name(Path(revision.snapshot_path))
            if architecture is None:  # not a captioner (a translation model, a tokenizer, ...)
                continue
            known = known_model(repo.repo_id)
            rows.append({"name": known.name if known else repo.repo_id, "model_id": repo.repo_id,
                         "revision": revision.commit_hash, "architecture": architecture,
                         "path": str(revision.snapshot_path), "size_bytes": revision.size_on_disk})
    for folder in sorted(root.glob("captioner--*--safetensors")) if root.is_dir() else []:
        architecture = architecture_name(folder)
        if architecture is not None and is_model_folder(folder):
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            rows.append({"name": folder.name, "model_id": "", "revision": "", "architecture": architecture,
                         "path": str(folder), "size_bytes": size})
    return rows
