"""What `captioner train lstm` and `captioner train attention` share: the data, backbone and training options,
and running the trainer into a bundle with one summary line (or a clean stop on Ctrl-C)."""

from __future__ import annotations

import sys

from captioner.cli.common import positive_int
from captioner.config import TrainingSettings
from captioner.features.backbones import BACKBONE_NAMES, BackboneSpec

DEFAULTS = TrainingSettings()
BACKBONE_DEFAULTS = BackboneSpec()


def add_training_arguments(parser, *, backbone_help: str, image_size_help: str, precision_help: str,
                           batch_size_help: str) -> None:
    """PREPARED_DIR, --out, the backbone options and the training loop options (help texts by the kind)."""
    parser.add_argument("prepared", metavar="PREPARED_DIR", help="folder written by 'captioner data prepare'")
    parser.add_argument("--out", required=True, metavar="models/NAME", help="bundle folder to write")
    parser.add_argument("--backbone", default=BACKBONE_DEFAULTS.name, choices=BACKBONE_NAMES, help=backbone_help)
    parser.add_argument("--weights", default=BACKBONE_DEFAULTS.weights, metavar="imagenet|none|PATH",
                        help="backbone weights: ImageNet (default), 'none' (seeded random) or a weights file")
    parser.add_argument("--image-size", type=positive_int, metavar="N", help=image_size_help)
    parser.add_argument("--precision", default=BACKBONE_DEFAULTS.precision, metavar="float32|bfloat16",
                        help=precision_help)
    parser.add_argument("--features", metavar="PATH", help="feature cache folder to use (default: the usual cache)")
    parser.add_argument("--epochs", type=positive_int, default=DEFAULTS.epochs,
                        help=f"most epochs (default {DEFAULTS.epochs})")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULTS.batch_size, help=batch_size_help)
    parser.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate, metavar="LR",
                        help=f"Adam's learning rate (default {DEFAULTS.learning_rate})")
    parser.add_argument("--patience", type=positive_int, default=DEFAULTS.patience,
                        help=f"early-stopping patience in epochs (default {DEFAULTS.patience})")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, metavar="S",
                        help=f"seed of weights, shuffling and dropout (default {DEFAULTS.seed})")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run of the same --out")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")


def add_architecture_arguments(parser, options: tuple[str, ...], helps: dict[str, str],
                               floats: tuple[str, ...] = ("dropout",)) -> None:
    """One --option per architecture setting; unset ones keep the kind's defaults."""
    for option in options:
        parser.add_argument(f"--{option.replace('_', '-')}", type=float if option in floats else positive_int,
                            metavar="N", help=helps[option])


def run_training(train, args, architecture_options: tuple[str, ...], spec: BackboneSpec, hint: str,
                 **training) -> int:
    """Run ``train`` (train_lstm or train_attention) as the options say; print where the bundle went."""
    from captioner.models.bundle import read_bundle_info
    from captioner.training.lstm import TrainingInterrupted

    settings = TrainingSettings(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                                seed=args.seed, patience=args.patience, **training)
    overrides = {name: getattr(args, name) for name in architecture_options if getattr(args, name) is not None}
    try:
        bundle = train(args.prepared, args.out, settings, overrides, spec, feature_cache=args.features,
                       resume=args.resume, progress=not args.quiet)
    except TrainingInterrupted as stopped:
        print(f"captioner: {stopped}", file=sys.stderr)
        return 130
    val = read_bundle_info(bundle).metrics.get("val", {})
    print(f"model bundle written to {bundle} (best epoch {val.get('epoch')}, val_loss {val.get('loss')}, "
          f"val_accuracy {val.get('accuracy')})")
    print(f"caption with: captioner caption IMAGE --model {bundle}{hint}")
    return 0
