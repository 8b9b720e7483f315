"""`captioner train attention PREPARED_DIR --out models/NAME`: train the Show-Attend-Tell captioner."""

from __future__ import annotations

import sys

from captioner.cli.common import positive_int
from captioner.config import AttentionSettings, TrainingSettings
from captioner.features.backbones import BACKBONE_NAMES, BackboneSpec

DEFAULTS = TrainingSettings()
BACKBONE_DEFAULTS = BackboneSpec()
ARCHITECTURE_DEFAULTS = AttentionSettings()

ARCHITECTURE_OPTIONS = ("embedding_dim", "lstm_units", "attention_units", "dropout", "penalty")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "attention", help="train the attention captioner (Show, Attend and Tell)",
        description="Train an LSTM with soft attention over the backbone's grid (DenseNet201: 7x7x1920 at 224 px) "
                    "on a prepared folder and write a model bundle. The grids come from the feature cache (float16) "
                    "and are extracted first when missing. An interrupted run continues with --resume.")
    parser.add_argument("prepared", metavar="PREPARED_DIR", help="folder written by 'captioner data prepare'")
    parser.add_argument("--out", required=True, metavar="models/NAME", help="bundle folder to write")
    parser.add_argument("--backbone", default=BACKBONE_DEFAULTS.name, choices=BACKBONE_NAMES,
                        help=f"image encoder whose last convolutional map is attended over "
                             f"(default: {BACKBONE_DEFAULTS.name})")
    parser.add_argument("--weights", default=BACKBONE_DEFAULTS.weights, metavar="imagenet|none|PATH",
                        help="backbone weights: ImageNet (default), 'none' (seeded random) or a weights file")
    parser.add_argument("--image-size", type=positive_int, metavar="N",
                        help="side in pixels the backbone sees (a multiple of 32 for Keras backbones)")
    parser.add_argument("--precision", default=BACKBONE_DEFAULTS.precision, metavar="float32|bfloat16",
                        help="how the backbone computes (see 'captioner train lstm --help')")
    parser.add_argument("--features", metavar="PATH", help="feature cache folder to use (default: the usual cache)")
    parser.add_argument("--epochs", type=positive_int, default=DEFAULTS.epochs,
                        help=f"most epochs (default {DEFAULTS.epochs})")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULTS.batch_size,
                        help=f"the captions of this many images per batch, grouped by length "
                             f"(default {DEFAULTS.batch_size})")
    parser.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate, metavar="LR",
                        help=f"Adam's learning rate (default {DEFAULTS.learning_rate})")
    parser.add_argument("--patience", type=positive_int, default=DEFAULTS.patience,
                        help=f"early-stopping patience in epochs (default {DEFAULTS.patience})")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, metavar="S",
                        help=f"seed of weights, shuffling and dropout (default {DEFAULTS.seed})")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run of the same --out")
    for option in ARCHITECTURE_OPTIONS:
        kind = float if option in ("dropout", "penalty") else positive_int
        default = getattr(ARCHITECTURE_DEFAULTS, option)
        helps = {"penalty": f"lambda of the doubly stochastic attention penalty (default {default}, the paper's)"}
        parser.add_argument(f"--{option.replace('_', '-')}", type=kind, metavar="N",
                            help=helps.get(option, f"architecture: {option} (default {default})"))
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from captioner.training.attention import train_attention
    from captioner.training.lstm import TrainingInterrupted

    training = TrainingSettings(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                                seed=args.seed, patience=args.patience)
    overrides = {name: getattr(args, name) for name in ARCHITECTURE_OPTIONS if getattr(args, name) is not None}
    spec = BackboneSpec(args.backbone, weights=args.weights, image_size=args.image_size, precision=args.precision,
                        grid=True)
    try:
        bundle = train_attention(args.prepared, args.out, training, overrides, spec, feature_cache=args.features,
                                 resume=args.resume, progress=not args.quiet)
    except TrainingInterrupted as stopped:
        print(f"captioner: {stopped}", file=sys.stderr)
        return 130
    from captioner.models.bundle import read_bundle_info

    val = read_bundle_info(bundle).metrics.get("val", {})
    print(f"model bundle written to {bundle} (best epoch {val.get('epoch')}, val_loss {val.get('loss')}, "
          f"val_accuracy {val.get('accuracy')})")
    print(f"caption with: captioner caption IMAGE --model {bundle} --attention attention.png")
    return 0
