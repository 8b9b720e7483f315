"""Training the CNN+LSTM captioner into a model bundle (``captioner train lstm``).

The run works in a hidden folder beside the bundle (``models/.NAME.training/``): after every epoch it
writes the weights with the optimizer state, the best weights so far, and ``state.json`` (epochs done,
history, the state of early stopping and of the learning-rate schedule), each file atomically. An
interrupted run leaves only that folder, and ``resume=True`` continues it from its last epoch with the
same result as an uninterrupted run: batches are shuffled by (seed, epoch) and dropout is re-seeded by
(seed, epoch). The finished bundle is assembled in a temporary folder and renamed into place.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from captioner.config import GENERATORS, DataSettings, LstmSettings, TrainingSettings, settings_from_dict
from captioner.data.prepared import PreparedData
from captioner.errors import CaptionerError, DataError
from captioner.models.bundle import BundleInfo, is_bundle, run_folder, staged_bundle
from captioner.training.lstm_fit import fit, load_trained_sequence_model
from captioner.training.lstm_state import TrainingState



class TrainingInterrupted(CaptionerError):
    """Training stopped before its last epoch; the message says how to resume."""


@dataclass(frozen=True)
class ModelFamily:
    """What differs between the kinds this trainer fits (``lstm``, ``attention``); the run is the same."""

    kind: str  # bundle kind, and the key of the architecture in captioner.json's settings
    settings_class: type  # the architecture's settings dataclass
    grid: bool  # True: reads backbone grids (rows, cols, channels); False: pooled vectors
    derived: Callable  # (settings, vocabulary, feature store, backbone spec) -> settings with data-given fields set
    fit_module: str  # module with make_training_model(settings, training) and build_sequence_model(settings)
    bundle_module: str  # module with write_bundle(folder, info, model, vocabulary, backbone)
    generators: tuple[str, ...] = GENERATORS  # batch kinds it can fit


def _lstm_derived(settings: LstmSettings, vocabulary, store, spec) -> LstmSettings:
    return replace(settings, vocab_size=len(vocabulary), max_length=vocabulary.max_length, feature_dim=store.dim,
                   backbone=spec.name, image_size=spec.size)


LSTM_FAMILY = ModelFamily("lstm", LstmSettings, False, _lstm_derived, "captioner.training.lstm_fit",
                          "captioner.models.keras.lstm")
DERIVED_FIELDS = ("vocab_size", "max_length", "feature_dim", "grid_cells", "annotation_dim", "backbone", "image_size")


def check_training_settings(training: TrainingSettings, generators: tuple[str, ...] = GENERATORS) -> None:
    if training.generator not in generators:
        raise ValueError(f"generator must be one of {', '.join(generators)}, not {training.generator!r}")
    if training.epochs < 1 or training.batch_size < 1:
        raise ValueError("epochs and batch size must be at least 1")
    if not training.learning_rate > 0:
        raise ValueError("learning rate must be positive")
    if not 0 < training.lr_factor < 1:
        raise ValueError("lr_factor must be between 0 and 1")


def train_lstm(prepared_dir: str | os.PathLike, out_dir: str | os.PathLike, training: TrainingSettings | None = None,
               architecture: dict | LstmSettings | None = None, backbone_spec=None,
               feature_cache: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
               callbacks: Sequence = ()) -> Path:
    """Train an LSTM captioner on a prepared folder and write the bundle ``out_dir``; returns its path.

    ``architecture`` overrides architecture sizes (``image_units``, ``lstm_units``, ...); the vocabulary,
    caption length and feature size come from the data. ``backbone_spec`` is a
    :class:`captioner.features.BackboneSpec` (DenseNet201 with ImageNet weights in float32 when None); its
    features, in its precision, are read from the feature cache (``feature_cache`` names a cache folder
    other than the usual one) and extracted first when missing. The spec, precision
    included, is stored in the bundle, so captioning embeds images the way training did. ``callbacks``
    are extra Keras callbacks, called after the run's own.
    """
    return train_family(LSTM_FAMILY, prepared_dir, out_dir, training, architecture, backbone_spec, feature_cache,
                        resume, progress, callbacks)


def train_family(family: ModelFamily, prepared_dir, out_dir, training: TrainingSettings | None, architecture,
                 backbone_spec, feature_cache, resume: bool, progress: bool, callbacks: Sequence) -> Path:
    """The run every family shares: settings, features, resumable fitting, the bundle (see :func:`train_lstm`)."""
    import importlib

    from captioner.features import BackboneSpec, ensure_features

    out = Path(out_dir)
    work = run_folder(out)
    prepared = PreparedData(prepared_dir)
    if is_bundle(out):
        raise CaptionerError(f"{out} already holds a model bundle; choose another --out name or delete it first")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CaptionerError(f"{out} exists and is not an empty folder; choose another --out name")
    state = None
    if resume:
        state = TrainingState.read(work)
        if state is None:
            raise CaptionerError(f"there is no interrupted run of {out} to resume ({work} is missing); "
                                 "start it without --resume")
        settings = state.settings
        training = settings_from_dict(TrainingSettings, settings["training"])
        model_settings = settings_from_dict(family.settings_class, settings[family.kind])
        spec = BackboneSpec.from_dict(settings["backbone"])
    else:
        if work.exists():
            done = getattr(TrainingState.read(work), "epoch", 0)
            raise CaptionerError(f"an interrupted run of {out} is in {work} ({done} epoch(s) done); add --resume to "
                                 f"continue it, or delete that folder to start again")
        training = training or TrainingSettings()
        spec = replace(backbone_spec or BackboneSpec(), grid=family.grid)
        model_settings = None
    check_training_settings(training, family.generators)
    store = ensure_features(prepared, spec, cache_dir=feature_cache, progress=progress)
    vocabulary = prepared.vocabulary
    if model_settings is None:
        overrides = asdict(architecture) if not isinstance(architecture, (dict, type(None))) else dict(architecture or {})
        for derived in DERIVED_FIELDS:
            overrides.pop(derived, None)
        model_settings = family.derived(settings_from_dict(family.settings_class, overrides), vocabulary, store, spec)
    elif family.derived(model_settings, vocabulary, store, spec) != model_settings:
        raise DataError(f"the run in {work} was started on other data (vocabulary or features differ); "
                        "resume it with the same prepared folder and backbone, or delete it to start again")
    data_settings = settings_from_dict(DataSettings, prepared.meta.get("settings"))
    all_settings = {family.kind: asdict(model_settings), "training": asdict(training), "data": asdict(data_settings),
                    "backbone": spec.to_dict()}

    work.mkdir(parents=True, exist_ok=True)
    if state is None:
        state = TrainingState(settings=all_settings, prepared=str(prepared.folder.resolve()))
        state.save(work)
    try:
        state = fit(prepared, store, model_settings, training, work, state, progress, list(callbacks),
                    importlib.import_module(family.fit_module).make_training_model)
    except KeyboardInterrupt:
        done = getattr(TrainingState.read(work), "epoch", 0)
        raise TrainingInterrupted(
            f"training interrupted after {done} of {training.epochs} epoch(s); the finished epochs are saved in "
            f"{work}; continue with the same command and --resume") from None
    return assemble_bundle(family, out, work, prepared, spec, all_settings, state)


def assemble_bundle(family: ModelFamily, out: Path, work: Path, prepared: PreparedData, spec, settings: dict,
                    state: TrainingState) -> Path:
    """Write the bundle from the best weights into a temporary folder, then rename it to ``out``."""
    import importlib

    from captioner.features import build_backbone
    from captioner.training.plots import plot_history, write_history_csv

    fit_module = importlib.import_module(family.fit_module)
    model = load_trained_sequence_model(settings_from_dict(family.settings_class, settings[family.kind]),
                                        settings_from_dict(TrainingSettings, settings["training"]),
                                        work / state.best_weights, fit_module.make_training_model,
                                        fit_module.build_sequence_model)
    history = state.history
    best = state.best_epoch
    metrics = {"val": {"loss": round(history["val_loss"][best], 6)}}
    if history.get("val_accuracy"):
        metrics["val"]["accuracy"] = round(history["val_accuracy"][best], 6)
    metrics["val"]["epoch"] = best + 1
    info = BundleInfo(kind=family.kind, name=out.name, dataset=prepared.name, backbone=spec.name, settings=settings,
                      metrics=metrics)
    # train_lstm refused a non-empty ``out`` before training, so replacing it loses nothing
    with staged_bundle(out) as staging:
        importlib.import_module(family.bundle_module).write_bundle(staging, info, model, prepared.vocabulary,
                                                                  build_backbone(spec))
        write_history_csv(history, staging / "history.csv")
        plot_history(history, staging)
        plot_model_diagram(model, staging / "model.png")
    shutil.rmtree(work, ignore_errors=True)
    return out


def plot_model_diagram(model, path: Path) -> bool:
    """``model.png`` of the layer graph; skipped with a note when pydot or Graphviz is missing."""
    import sys

    import keras

    try:
        keras.utils.plot_model(model, to_file=str(path), show_shapes=True, show_layer_names=True)
        return path.is_file()
    except (ImportError, OSError) as error:
        print(f"note: model.png not drawn ({error}); install pydot and Graphviz for the diagram", file=sys.stderr)
        return False
