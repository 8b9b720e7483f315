"""Learning curves and the training history file, for every trainer.

``history`` is what Keras's ``History`` holds: metric name -> one value per epoch, e.g. ``loss``,
``val_loss``, ``accuracy``, ``val_accuracy``, ``learning_rate``.
"""

from __future__ import annotations

import csv
import os
import io
from pathlib import Path

from captioner.files import atomic_path, write_text_atomic

CURVES = {"loss.png": ("loss", "Loss"), "accuracy.png": ("accuracy", "Accuracy (next word)")}


def plot_history(history: dict[str, list[float]], out_dir: str | os.PathLike) -> list[Path]:
    """Write ``loss.png`` and ``accuracy.png`` (training and validation per epoch) into ``out_dir``.

    A curve whose metric is not in ``history`` is skipped; returns the files written.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, (metric, title) in CURVES.items():
        series = {name: history[name] for name in (metric, f"val_{metric}") if history.get(name)}
        if not series:
            continue
        figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
        try:
            for name, values in series.items():
                epochs = range(1, len(values) + 1)
                axes.plot(epochs, values, marker="o", markersize=3,
                          label="validation" if name.startswith("val_") else "training")
            axes.set_xlabel("epoch")
            axes.set_ylabel(metric)
            axes.set_title(title)
            axes.grid(alpha=0.3)
            axes.legend()
            figure.tight_layout()
            path = out / file_name
            with atomic_path(path) as temporary:
                figure.savefig(temporary, format="png")
            written.append(path)
        finally:
            plt.close(figure)
    return written


def write_history_csv(history: dict[str, list[float]], path: str | os.PathLike) -> Path:
    """One row per epoch (``epoch`` counted from 1), one column per metric."""
    path = Path(path)
    names = sorted(history)
    epochs = max((len(v) for v in history.values()), default=0)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["epoch", *names])
    for epoch in range(epochs):
        writer.writerow([epoch + 1, *(_cell(history[n], epoch) for n in names)])
    return write_text_atomic(path, text.getvalue())


def _cell(values: list[float], epoch: int):
    return f"{values[epoch]:.6g}" if epoch < len(values) else ""
