"""The shapes demo models: small captioners trained in seconds on the synthetic shapes data set.

They let the web app and the command line work out of the box, offline, before any real model is
trained: ``build_demo_model(models_dir)`` writes ``models_dir/shapes-demo`` (or returns it when it is
already there). Everything runs on the CPU: the shapes pictures, the thumbnail backbone (no weights),
a narrow LSTM of the original architecture. ``build_attention_demo`` trains the attention kind the same
way on the thumbnail grid (6 x 6 cells), so its maps can be checked against where the shapes were drawn.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from captioner.models.bundle import is_bundle

DEMO_NAME = "shapes-demo"
DEMO_IMAGES = 400  # pictures generated (80% train)
DEMO_EPOCHS = 20  # passes over the training captions
DEMO_UNITS = 96  # image_units = embedding_dim = lstm_units; dense_units is half of it
DEMO_DROPOUT = 0.1  # the original's 0.5 needs longer training than a demo gets
DEMO_THUMBNAIL = 24  # thumbnail side in pixels: 24 x 24 x 3 = 1728 features
ATTENTION_DEMO_NAME = "shapes-attention"
ATTENTION_DEMO_IMAGES = 300  # pictures generated (80% train)
ATTENTION_DEMO_EPOCHS = 35  # passes over the training captions
ATTENTION_DEMO_UNITS = 96  # embedding_dim = lstm_units = attention_units
ATTENTION_DEMO_PENALTY = 0.0  # lambda of the attention penalty: off for 6 x 6 cells and captions of about 8 words


def build_demo_model(models_dir: str | os.PathLike, *, images: int = DEMO_IMAGES, epochs: int = DEMO_EPOCHS,
                     progress: bool = False, seed: int = 0, name: str = DEMO_NAME) -> Path:
    """Train the shapes demo into ``models_dir/NAME`` unless a bundle is already there; returns its path."""
    from captioner.config import DataSettings
    from captioner.data.prepare import prepare_dataset
    from captioner.data.shapes import write_shapes_dataset
    from captioner.features import BackboneSpec
    from captioner.models.bundle import run_folder
    from captioner.training.lstm import train_lstm

    root = Path(models_dir)
    out = root / name
    if is_bundle(out):
        return out
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive(root / f".{name}.lock"):
        if is_bundle(out):  # built by another process while this one waited
            return out
        shutil.rmtree(run_folder(out), ignore_errors=True)  # a stale run of an earlier, interrupted build
        with tempfile.TemporaryDirectory(prefix="captioner-demo-") as tmp:
            dataset = write_shapes_dataset(Path(tmp) / "shapes", images=images, seed=seed)
            prepared = Path(tmp) / "prepared"
            prepare_dataset(dataset, prepared, DataSettings(preset="standard", seed=seed))
            training, architecture = demo_lstm_settings(epochs, seed)
            return train_lstm(prepared, out, training, architecture,
                              BackboneSpec("thumbnail", image_size=DEMO_THUMBNAIL),
                              feature_cache=Path(tmp) / "features", progress=progress)


def demo_lstm_settings(epochs: int = DEMO_EPOCHS, seed: int = 0):
    """The demo LSTM's training settings and architecture: a short run with a steady learning rate, no early
    stop, light dropout."""
    from captioner.config import TrainingSettings

    training = TrainingSettings(epochs=epochs, batch_size=16, learning_rate=3e-3, seed=seed, patience=epochs,
                                lr_patience=epochs)
    architecture = {"image_units": DEMO_UNITS, "embedding_dim": DEMO_UNITS, "lstm_units": DEMO_UNITS,
                    "dense_units": DEMO_UNITS // 2, "dropout": DEMO_DROPOUT}
    return training, architecture


def demo_attention_settings(epochs: int = ATTENTION_DEMO_EPOCHS, seed: int = 0):
    """The attention demo's training settings and architecture (a short run, as the LSTM demo's)."""
    from captioner.config import TrainingSettings

    training = TrainingSettings(epochs=epochs, batch_size=32, learning_rate=7e-3, seed=seed, patience=epochs,
                                lr_patience=epochs)
    architecture = {"embedding_dim": ATTENTION_DEMO_UNITS, "lstm_units": ATTENTION_DEMO_UNITS,
                    "attention_units": ATTENTION_DEMO_UNITS, "dropout": DEMO_DROPOUT,
                    "penalty": ATTENTION_DEMO_PENALTY}
    return training, architecture


def demo_grid_spec():
    """The attention demo's backbone: the thumbnail grid, 6 x 6 cells of 4 x 4 pixels."""
    from captioner.features import BackboneSpec

    return BackboneSpec("thumbnail", image_size=DEMO_THUMBNAIL, grid=True)


def build_attention_demo(models_dir: str | os.PathLike, prepared: str | os.PathLike | None = None, *,
                         images: int = ATTENTION_DEMO_IMAGES, epochs: int = ATTENTION_DEMO_EPOCHS, seed: int = 0,
                         name: str = ATTENTION_DEMO_NAME, features: str | os.PathLike | None = None,
                         progress: bool = False) -> Path:
    """Train the attention demo into ``models_dir/NAME`` unless a bundle is already there; returns its path.
    ``prepared`` trains on that prepared folder instead of a fresh shapes set of ``images`` pictures."""
    from captioner.config import DataSettings
    from captioner.data.prepare import prepare_dataset
    from captioner.data.shapes import write_shapes_dataset
    from captioner.training.attention import train_attention
    from captioner.models.bundle import run_folder

    out = Path(models_dir) / name
    if is_bundle(out):
        return out
    Path(models_dir).mkdir(parents=True, exist_ok=True)
    shutil.rmtree(run_folder(out), ignore_errors=True)
    training, architecture = demo_attention_settings(epochs, seed)
    with tempfile.TemporaryDirectory(prefix="captioner-demo-") as tmp:
        if prepared is None:
            dataset = write_shapes_dataset(Path(tmp) / "shapes", images=images, seed=seed)
            prepared = Path(tmp) / "prepared"
            prepare_dataset(dataset, prepared, DataSettings(preset="standard", seed=seed))
        return train_attention(prepared, out, training, architecture, demo_grid_spec(),
                               feature_cache=features or Path(tmp) / "features", progress=progress)


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """One builder at a time across processes (web workers starting together)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
