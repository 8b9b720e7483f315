"""`captioner train lstm PREPARED_DIR --out models/NAME`: train the CNN+LSTM captioner into a bundle."""

from __future__ import annotations

import sys

from captioner.cli.common import positive_int
from captioner.config import GENERATORS, TrainingSettings
from captioner.features.backbones import BACKBONE_NAMES, BackboneSpec

DEFAULTS = TrainingSettings()
BACKBONE_DEFAULTS = BackboneSpec()
ARCHITECTURE_OPTIONS = ("image_units", "embedding_dim", "lstm_units", "dense_units", "dropout")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lstm", help="train the CNN+LSTM captioner (the original Flickr8k model)",
        description="Train the CNN+LSTM captioner on a prepared folder and write a model bundle. Image features "
                    "come from the feature cache and are extracted first when missing. An interrupted run "
                    "continues with --resume.")
    parser.add_argument("prepared", metavar="PREPARED_DIR", help="folder written by 'captioner data prepare'")
    parser.add_argument("--out", required=True, metavar="models/NAME", help="bundle folder to write")
    parser.add_argument("--backbone", default=BACKBONE_DEFAULTS.name, choices=BACKBONE_NAMES,
                        help=f"image encoder (default: {BACKBONE_DEFAULTS.name}, as the original)")
    parser.add_argument("--weights", default=BACKBONE_DEFAULTS.weights, metavar="imagenet|none|PATH",
                        help="backbone weights: ImageNet (default), 'none' (seeded random) or a weights file")
    parser.add_argument("--image-size", type=positive_int, metavar="N", help="side in pixels the backbone sees")
    parser.add_argument("--precision", default=BACKBONE_DEFAULTS.precision, metavar="float32|bfloat16",
                        help="how the backbone computes: float32 (default) or bfloat16, faster on CPUs with AVX-512 BF16 "
                             "or AMX and on recent GPUs, with embeddings within about 1%% of float32; "
                             "stored in the bundle, so captioning uses the same precision")
    parser.add_argument("--features", metavar="PATH", help="feature cache folder to use (default: the usual cache)")
    parser.add_argument("--epochs", type=positive_int, default=DEFAULTS.epochs,
                        help=f"most epochs (default {DEFAULTS.epochs})")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULTS.batch_size,
                        help="teacher forcing: the captions of this many images per batch, grouped by length; "
                             f"prefix: this many (prefix, next word) samples per batch; default {DEFAULTS.batch_size}")
    parser.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate, metavar="LR",
                        help=f"Adam's learning rate (default {DEFAULTS.learning_rate})")
    parser.add_argument("--generator", choices=GENERATORS, default=DEFAULTS.generator,
                        help=f"teacher: whole captions per pass; prefix: the original's generator "
                             f"(default {DEFAULTS.generator})")
    parser.add_argument("--patience", type=positive_int, default=DEFAULTS.patience,
                        help=f"early-stopping patience in epochs (default {DEFAULTS.patience})")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, metavar="S",
                        help=f"seed of weights, shuffling and dropout (default {DEFAULTS.seed})")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run of the same --out")
    for option in ARCHITECTURE_OPTIONS:
        kind = float if option == "dropout" else positive_int
        parser.add_argument(f"--{option.replace('_', '-')}", type=kind, metavar="N",
                            help=f"architecture: {option} (default: the original's)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from captioner.training.lstm import TrainingInterrupted, train_lstm

    training = TrainingSettings(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                                generator=args.generator, seed=args.seed, patience=args.patience)
    overrides = {name: getattr(args, name) for name in ARCHITECTURE_OPTIONS if getattr(args, name) is not None}
    spec = BackboneSpec(args.backbone, weights=args.weights, image_size=args.image_size, precision=args.precision)
    try:
        bundle = train_lstm(args.prepared, args.out, training, overrides, spec, feature_cache=args.features,
                            resume=args.resume, progress=not args.quiet)
    except TrainingInterrupted as stopped:
        print(f"captioner: {stopped}", file=sys.stderr)
        return 130
    from captioner.models.bundle import read_bundle_info

    info = read_bundle_info(bundle)
    val = info.metrics.get("val", {})
    print(f"model bundle written to {bundle} (best epoch {val.get('epoch')}, val_loss {val.get('loss')}, "
          f"val_accuracy {val.get('accuracy')})")
    print(f"caption with: captioner caption IMAGE --model {bundle}")
    return 0
