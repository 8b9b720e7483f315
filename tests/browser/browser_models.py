"""Two real small captioners for the browser tests: the shapes demo model (LSTM) and the attention demo,
so "compare all" shows two models side by side and the attention view has maps to show."""

from __future__ import annotations

from pathlib import Path

MODEL_NAMES = ("shapes-attention", "shapes-demo")


def build_two_models(folder: Path) -> Path:
    from captioner.training.demo import build_attention_demo, build_demo_model

    build_attention_demo(folder, name=MODEL_NAMES[0], seed=0)
    build_demo_model(folder, name=MODEL_NAMES[1], seed=0)
    return folder
