"""`captioner train lstm PREPARED_DIR --out models/NAME`: train the CNN+LSTM captioner into a bundle."""

from __future__ import annotations

from captioner.cli.keras_training import (BACKBONE_DEFAULTS, DEFAULTS, add_architecture_arguments,
                                          add_training_arguments, run_training)
from captioner.config import GENERATORS
from captioner.features.backbones import BackboneSpec

ARCHITECTURE_OPTIONS = ("image_units", "embedding_dim", "lstm_units", "dense_units", "dropout")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lstm", help="train the CNN+LSTM captioner (the original Flickr8k model)",
        description="Train the CNN+LSTM captioner on a prepared folder and write a model bundle. Image features "
                    "come from the feature cache and are extracted first when missing. An interrupted run "
                    "continues with --resume.")
    add_training_arguments(
        parser, backbone_help=f"image encoder (default: {BACKBONE_DEFAULTS.name}, as the original)",
        image_size_help="side in pixels the backbone sees",
        precision_help="how the backbone computes: float32 (default) or bfloat16, faster on CPUs with AVX-512 BF16 "
                       "or AMX and on recent GPUs, with embeddings within about 1%% of float32; "
                       "stored in the bundle, so captioning uses the same precision",
        batch_size_help="teacher forcing: the captions of this many images per batch, grouped by length; "
                        f"prefix: this many (prefix, next word) samples per batch; default {DEFAULTS.batch_size}")
    parser.add_argument("--generator", choices=GENERATORS, default=DEFAULTS.generator,
                        help=f"teacher: whole captions per pass; prefix: the original's generator "
                             f"(default {DEFAULTS.generator})")
    add_architecture_arguments(parser, ARCHITECTURE_OPTIONS,
                               {option: f"architecture: {option} (default: the original's)"
                                for option in ARCHITECTURE_OPTIONS})
    parser.set_defaults(handler=run)


def run(args) -> int:
    from captioner.training.lstm import train_lstm

    spec = BackboneSpec(args.backbone, weights=args.weights, image_size=args.image_size, precision=args.precision)
    return run_training(train_lstm, args, ARCHITECTURE_OPTIONS, spec, "", generator=args.generator)
