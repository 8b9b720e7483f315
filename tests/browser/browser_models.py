"""Two real small captioners for the browser tests: the shapes demo model, trained twice with different
seeds under two names, so "compare all" shows two models side by side."""

from __future__ import annotations

from pathlib import Path

MODEL_NAMES = ("shapes-demo", "shapes-demo-b")


def build_two_models(folder: Path) -> Path:
    from captioner.training.demo import build_demo_model

    build_demo_model(folder, name=MODEL_NAMES[0], seed=0)
    build_demo_model(folder, name=MODEL_NAMES[1], seed=1)
    return folder
