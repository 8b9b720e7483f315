"""The process environment: the one module of the package that reads ``os.environ``.

Every ``CAPTIONER_*`` variable (and the few other variables the project honours) is read here, with one
rule for each type: a boolean is true for "1", "true", "yes", "on" and false for "0", "false", "no",
"off" or an empty value, in any case. :func:`current` reads the variables afresh on each call (cheap),
so a test or a caller may pass its own mapping instead. A ``.env`` file (read by the web app) lies under
the real environment: :func:`use_dotenv` adds its values to what :func:`variables` answers, and never
changes ``os.environ``. A command-line option that stands for a variable (``--precision``) lies above both:
:func:`choose` sets it for this process, and :func:`child_environment` and :func:`chosen` hand it on to
child processes and Ray workers.

Library variables that must be set before a library is imported live in one place too:
:func:`set_library_defaults`.
"""

from __future__ import annotations

import os
from collections import ChainMap
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")

# Set before TensorFlow is imported, unless the user chose otherwise: its C++ info and warning lines are noise.
LIBRARY_DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def parse_bool(variable: str, text: str) -> bool:
    """The one boolean rule for every variable; anything else is an error that names the variable."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{variable} must be true or false (1/0, yes/no, on/off), not {text!r}")


def parse_value(variable: str, text: str, default):
    """An environment string as the type of ``default`` (bool, int, float or str), with a clear message."""
    if isinstance(default, bool):
        return parse_bool(variable, text)
    try:
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise ValueError(f"{variable} must be a number, not {text!r}") from None
    return text


@dataclass(frozen=True)
class Environment:
    """What the environment says about how the package runs; each field names its variable."""

    # Never try the network for ImageNet weights or hub models (CAPTIONER_OFFLINE).
    offline: bool = False
    # Hugging Face hub switched off by the user (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE).
    hub_offline: bool = False
    # Show progress bars even when stderr is not a terminal (CAPTIONER_PROGRESS).
    progress: bool = False
    # Let errors end with a traceback instead of one line (CAPTIONER_DEBUG).
    debug: bool = False
    # Base of the feature cache and other caches (CAPTIONER_CACHE_DIR); empty: ~/.cache/captioner.
    cache_dir: str = ""
    # Folder of model bundles (CAPTIONER_MODELS_DIR); empty: ./models.
    models_dir: str = ""
    # Folder of `captioner compare` reports (CAPTIONER_REPORTS_DIR); empty: ./reports.
    reports_dir: str = ""
    # Device the transformers models run on (CAPTIONER_DEVICE), e.g. "cuda:1"; empty: cuda when present, else cpu.
    device: str = ""
    # Number format of transformers captioners (CAPTIONER_PRECISION): float32, bfloat16, int8 or auto (empty: auto).
    precision: str = ""
    # What runs the transformers captioners' encoders and decoder steps (CAPTIONER_RUNTIME): torch, onnx or auto
    # (empty: auto).
    runtime: str = ""
    # The CLIP model behind --score clip (CAPTIONER_SCORE_MODEL): a short name, hub id or folder;
    # empty: clip-vit-base-patch32.
    score_model: str = ""
    # Tiling of large images by vision-language models (CAPTIONER_VLM_TILING): on, off or auto (empty: auto,
    # that is on for a GPU and off for a CPU).
    vlm_tiling: str = ""
    # Bound on the image a vision-language model sees, in pixels of its longest side (CAPTIONER_VLM_IMAGE_SIZE);
    # 0: 512.
    vlm_image_size: int = 0
    # Where the Flickr8k zips are downloaded from (CAPTIONER_FLICKR8K_URL); empty: the default release.
    flickr8k_url: str = ""
    # Keras's own folder (KERAS_HOME), where it caches ImageNet weights; empty: ~/.keras.
    keras_home: str = ""
    # The user fixed the math libraries' thread count (OMP_NUM_THREADS or MKL_NUM_THREADS).
    threads_chosen: bool = False
    # That count, for libraries that do not read those variables themselves (ONNX Runtime); 0 when not chosen.
    thread_count: int = 0
    # This process's rank in a multi-process training run (RANK, set by torchrun and accelerate); 0 alone.
    rank: int = 0
    # Most requests in flight to each remote model from this process (CAPTIONER_REMOTE_CONCURRENCY); 0: its bundle's.
    remote_concurrency: int = 0

    @property
    def cache_base(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else Path.home() / ".cache" / "captioner"


# Variable of each Environment field that is read as such.
VARIABLES = {
    "offline": "CAPTIONER_OFFLINE",
    "progress": "CAPTIONER_PROGRESS",
    "debug": "CAPTIONER_DEBUG",
    "cache_dir": "CAPTIONER_CACHE_DIR",
    "models_dir": "CAPTIONER_MODELS_DIR",
    "reports_dir": "CAPTIONER_REPORTS_DIR",
    "device": "CAPTIONER_DEVICE",
    "precision": "CAPTIONER_PRECISION",
    "runtime": "CAPTIONER_RUNTIME",
    "score_model": "CAPTIONER_SCORE_MODEL",
    "flickr8k_url": "CAPTIONER_FLICKR8K_URL",
    "vlm_tiling": "CAPTIONER_VLM_TILING",
    "vlm_image_size": "CAPTIONER_VLM_IMAGE_SIZE",
    "keras_home": "KERAS_HOME",
    "rank": "RANK",
    "remote_concurrency": "CAPTIONER_REMOTE_CONCURRENCY",
}


_dotenv: dict[str, str] = {}  # values of the .env file in use (see use_dotenv); real variables win over them
_chosen: dict[str, str] = {}  # variables set by command-line options (see choose); they win over everything


def choose(**values: str) -> None:
    """Set :class:`Environment` fields by name for this process, as a command-line option does
    (``choose(precision="int8")`` for ``--precision int8``): they win over the environment and ``.env``."""
    for name, value in values.items():
        _chosen[VARIABLES[name]] = value


def chosen() -> dict[str, str]:
    """The variables :func:`choose` set, for a process that does not inherit this one's (a Ray worker)."""
    return dict(_chosen)


def use_dotenv(path: str | os.PathLike | None = None) -> dict[str, str]:
    """Read ``.env`` (or ``path``) so that :func:`variables` answers its values where the real environment
    sets nothing; returns them. A missing file means no values."""
    from dotenv import dotenv_values

    target = Path(path) if path else Path.cwd() / ".env"
    values = {k: v for k, v in dotenv_values(target).items() if v is not None} if target.is_file() else {}
    _dotenv.clear()
    _dotenv.update(values)
    return values


def variables() -> Mapping[str, str]:
    """The chosen values over the process environment over the ``.env`` values in use, read-only: for
    settings classes that map their own fields to variables."""
    return ChainMap(_chosen, os.environ, _dotenv)


def current(environ: Mapping[str, str] | None = None) -> Environment:
    """The :class:`Environment` of ``environ`` (default: this process's environment)."""
    environ = variables() if environ is None else environ
    defaults = Environment()
    values = {}
    for item in fields(Environment):
        variable = VARIABLES.get(item.name)
        text = (environ.get(variable) or "").strip() if variable else ""
        if text:
            values[item.name] = parse_value(variable, text, getattr(defaults, item.name))
    hub_flags = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    values["hub_offline"] = any(parse_bool(name, environ.get(name) or "") for name in hub_flags)
    thread_texts = [(name, (environ.get(name) or "").strip()) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")]
    values["threads_chosen"] = any(text for _, text in thread_texts)
    values["thread_count"] = next((parse_value(name, text, 0) for name, text in thread_texts if text), 0)
    return Environment(**values)


def secret(variable: str) -> str:
    """The value of a variable that a bundle names for its secret (a remote model's API key); "" when unset.
    Secrets are never part of :class:`Environment` and never written anywhere."""
    return (variables().get(variable) or "").strip()


def child_environment(**changes: str) -> dict[str, str]:
    """This process's environment with ``changes``, for a child process (Java, a server beside the tests)."""
    return {**variables(), **changes}


def set_library_defaults() -> None:
    """Set :data:`LIBRARY_DEFAULTS` where the user has not: call before importing TensorFlow."""
    for name, value in LIBRARY_DEFAULTS.items():
        os.environ.setdefault(name, value)
