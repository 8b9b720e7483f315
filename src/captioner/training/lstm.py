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
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

from captioner.config import GENERATORS, DataSettings, LstmSettings, TrainingSettings, settings_from_dict
from captioner.data.prepared import PreparedData
from captioner.errors import CaptionerError, DataError
from captioner.models.bundle import BundleInfo, is_bundle, run_folder, staged_bundle
from captioner.training.lstm_fit import fit, load_trained_sequence_model
from captioner.training.lstm_state import TrainingState



class TrainingInterrupted(CaptionerError):
    """Training stopped before its last epoch; the message says how to resume."""


def check_training_settings(training: TrainingSettings) -> None:
    if training.generator not in GENERATORS:
        raise ValueError(f"generator must be one of {', '.join(GENERATORS)}, not {training.generator!r}")
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
        lstm_settings = settings_from_dict(LstmSettings, settings["lstm"])
        spec = BackboneSpec.from_dict(settings["backbone"])
    else:
        if work.exists():
            done = getattr(TrainingState.read(work), "epoch", 0)
            raise CaptionerError(f"an interrupted run of {out} is in {work} ({done} epoch(s) done); add --resume to "
                                 f"continue it, or delete that folder to start again")
        training = training or TrainingSettings()
        spec = backbone_spec or BackboneSpec()
        lstm_settings = None
    check_training_settings(training)
    store = ensure_features(prepared, spec, cache_dir=feature_cache, progress=progress)
    vocabulary = prepared.vocabulary
    if lstm_settings is None:
        overrides = asdict(architecture) if isinstance(architecture, LstmSettings) else dict(architecture or {})
        for derived in ("vocab_size", "max_length", "feature_dim", "backbone", "image_size"):
            overrides.pop(derived, None)
        lstm_settings = replace(settings_from_dict(LstmSettings, overrides), vocab_size=len(vocabulary),
                                max_length=vocabulary.max_length, feature_dim=store.dim, backbone=spec.name,
                                image_size=spec.size)
    elif lstm_settings.feature_dim != store.dim or lstm_settings.vocab_size != len(vocabulary):
        raise DataError(f"the run in {work} was started on other data (vocabulary or features differ); "
                        "resume it with the same prepared folder and backbone, or delete it to start again")
    data_settings = settings_from_dict(DataSettings, prepared.meta.get("settings"))
    all_settings = {"lstm": asdict(lstm_settings), "training": asdict(training), "data": asdict(data_settings),
                    "backbone": spec.to_dict()}

    work.mkdir(parents=True, exist_ok=True)
    if state is None:
        state = TrainingState(settings=all_settings, prepared=str(prepared.folder.resolve()))
        state.save(work)
    try:
        state = fit(prepared, store, lstm_settings, training, work, state, progress, list(callbacks))
    except KeyboardInterrupt:
        done = getattr(TrainingState.read(work), "epoch", 0)
        raise TrainingInterrupted(
            f"training interrupted after {done} of {training.epochs} epoch(s); the finished epochs are saved in "
            f"{work}; continue with the same command and --resume") from None
    return assemble_bundle(out, work, prepared, spec, all_settings, state)


def assemble_bundle(out: Path, work: Path, prepared: PreparedData, spec, settings: dict, state: TrainingState) -> Path:
    """Write the bundle from the best weights into a temporary folder, then rename it to ``out``."""
    from captioner.features import build_backbone
    from captioner.models.lstm import KIND, write_bundle
    from captioner.training.plots import plot_history, write_history_csv

    model = load_trained_sequence_model(settings_from_dict(LstmSettings, settings["lstm"]),
                                        settings_from_dict(TrainingSettings, settings["training"]),
                                        work / state.best_weights)
    history = state.history
    best = state.best_epoch
    metrics = {"val": {"loss": round(history["val_loss"][best], 6)}}
    if history.get("val_accuracy"):
        metrics["val"]["accuracy"] = round(history["val_accuracy"][best], 6)
    metrics["val"]["epoch"] = best + 1
    info = BundleInfo(kind=KIND, name=out.name, dataset=prepared.name, backbone=spec.name, settings=settings,
                      metrics=metrics)
    # train_lstm refused a non-empty ``out`` before training, so replacing it loses nothing
    with staged_bundle(out) as staging:
        write_bundle(staging, info, model, prepared.vocabulary, build_backbone(spec))
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
