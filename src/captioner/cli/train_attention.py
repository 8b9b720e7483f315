"""`captioner train attention PREPARED_DIR --out models/NAME`: train the Show-Attend-Tell captioner."""

from __future__ import annotations

from captioner.cli.keras_training import (BACKBONE_DEFAULTS, DEFAULTS, add_architecture_arguments,
                                          add_training_arguments, run_training)
from captioner.config import AttentionSettings
from captioner.features.backbones import BackboneSpec

ARCHITECTURE_DEFAULTS = AttentionSettings()
ARCHITECTURE_OPTIONS = ("embedding_dim", "lstm_units", "attention_units", "dropout", "penalty")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "attention", help="train the attention captioner (Show, Attend and Tell)",
        description="Train an LSTM with soft attention over the backbone's grid (DenseNet201: 7x7x1920 at 224 px) "
                    "on a prepared folder and write a model bundle. The grids come from the feature cache (float16) "
                    "and are extracted first when missing. An interrupted run continues with --resume.")
    add_training_arguments(
        parser, backbone_help=f"image encoder whose last convolutional map is attended over "
                              f"(default: {BACKBONE_DEFAULTS.name})",
        image_size_help="side in pixels the backbone sees (a multiple of 32 for Keras backbones)",
        precision_help="how the backbone computes (see 'captioner train lstm --help')",
        batch_size_help=f"the captions of this many images per batch, grouped by length (default {DEFAULTS.batch_size})")
    helps = {option: f"architecture: {option} (default {getattr(ARCHITECTURE_DEFAULTS, option)})"
             for option in ARCHITECTURE_OPTIONS}
    helps["penalty"] = (f"lambda of the doubly stochastic attention penalty (default {ARCHITECTURE_DEFAULTS.penalty}, "
                        "the paper's)")
    add_architecture_arguments(parser, ARCHITECTURE_OPTIONS, helps, floats=("dropout", "penalty"))
    parser.set_defaults(handler=run)


def run(args) -> int:
    from captioner.training.attention import train_attention

    spec = BackboneSpec(args.backbone, weights=args.weights, image_size=args.image_size, precision=args.precision,
                        grid=True)
    return run_training(train_attention, args, ARCHITECTURE_OPTIONS, spec, " --attention attention.png")
