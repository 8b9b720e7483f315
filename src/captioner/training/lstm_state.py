"""The state of an LSTM training run, as ``state.json`` in its run folder (``models/.NAME.training/``).

After every epoch the run writes its weights, then this state naming them, each atomically, so the state
on disk always describes one complete epoch. Resuming reads it back: the settings of the run, the history,
which weights to load, and the counters of early stopping and of the learning-rate schedule.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from captioner.errors import CaptionerError
from captioner.files import write_json_atomic

STATE_FILE = "state.json"


@dataclass
class TrainingState:
    """Where an LSTM training run stands after its last finished epoch."""

    settings: dict  # the run's settings as dicts: {"lstm", "training", "data", "backbone"}
    prepared: str  # the prepared folder it trains on (absolute path)
    epoch: int = 0  # epochs finished
    history: dict[str, list[float]] = field(default_factory=dict)  # per-epoch values by Keras metric name
    best_val_loss: float | None = None  # lowest validation loss so far (None before the first epoch)
    best_epoch: int | None = None  # epoch (from 0) of that loss
    best_weights: str | None = None  # file of the weights of that epoch, in the run folder
    last_weights: str | None = None  # file of the last epoch's weights with the optimizer state
    learning_rate: float | None = None  # the optimizer's learning rate after the last epoch
    stopped: bool = False  # early stopping ended the run
    # counters of the callbacks, put back on resume: {"early_stopping": {...}, "reduce_lr": {...}}
    callbacks: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def save(self, run_folder: Path) -> None:
        write_json_atomic(Path(run_folder) / STATE_FILE, asdict(self))

    @classmethod
    def read(cls, run_folder: Path) -> "TrainingState | None":
        """The state saved in ``run_folder``; None when there is none."""
        path = Path(run_folder) / STATE_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {item.name for item in fields(cls)}
            return cls(**{name: value for name, value in data.items() if name in known})
        except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as error:
            raise CaptionerError(f"{path} is damaged ({error}); delete {run_folder} to start the training "
                                 "again") from None
