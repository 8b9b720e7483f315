"""`captioner train vit-gpt2|blip|git PREPARED_DIR --out models/NAME`: fine-tune a pretrained image-to-text
captioner into a bundle (one trainer for all three; Florence-2 is not fine-tuned)."""

from __future__ import annotations

import sys

from captioner import environment
from captioner.cli.common import positive_int
from captioner.config import ImageToTextSettings

DEFAULTS = ImageToTextSettings()

# Subcommand -> (model it starts from by default, what it is).
STARTING_POINTS = {
    "vit-gpt2": (DEFAULTS.source, "the ViT-GPT2 captioner"),
    "blip": ("blip-base", "a BLIP captioner"),
    "git": ("git-base-coco", "a GIT captioner"),
}


def register(subparsers) -> None:
    for name, (source, what) in STARTING_POINTS.items():
        add_parser(subparsers, name, source, what)


def add_parser(subparsers, name: str, source: str, what: str) -> None:
    parser = subparsers.add_parser(
        name, help=f"fine-tune {what} (transformers)",
        description=f"Fine-tune {what} on a prepared folder and write a model bundle. Starts from {source} "
                    "unless --from names another model of the same kind (a short name, hub id, folder or bundle)"
                    + (", or --encoder and --decoder build a new one" if name == "vit-gpt2" else "")
                    + ". An interrupted run continues with --resume. For several GPUs, start the same command "
                    "under 'torchrun --nproc-per-node N -m captioner ...' or 'accelerate launch -m captioner ...'.")
    parser.add_argument("prepared", metavar="PREPARED_DIR", help="folder written by 'captioner data prepare'")
    parser.add_argument("--out", required=True, metavar="models/NAME", help="bundle folder to write")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--from", dest="source", metavar="ID_OR_PATH",
                       help=f"model to start from: a short name, hub id, model folder or bundle (default: {source})")
    if name == "vit-gpt2":
        start.add_argument("--encoder", metavar="ID", help="build a new model: ViT encoder id or folder "
                                                           "(e.g. google/vit-base-patch16-224-in21k); needs --decoder")
        parser.add_argument("--decoder", metavar="ID", help="build a new model: GPT-2 decoder id or folder (e.g. gpt2)")
    parser.add_argument("--epochs", type=positive_int, default=DEFAULTS.epochs,
                        help=f"most epochs (default {DEFAULTS.epochs})")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULTS.batch_size,
                        help=f"images per batch and device (default {DEFAULTS.batch_size})")
    parser.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate, metavar="LR",
                        help=f"AdamW learning rate (default {DEFAULTS.learning_rate})")
    parser.add_argument("--max-target-length", type=positive_int, default=DEFAULTS.max_target_length, metavar="N",
                        help=f"longest training caption in tokens (default {DEFAULTS.max_target_length})")
    parser.add_argument("--patience", type=positive_int, default=DEFAULTS.patience,
                        help=f"early-stopping patience in epochs (default {DEFAULTS.patience})")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, metavar="S",
                        help=f"seed of new weights and shuffling (default {DEFAULTS.seed})")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run of the same --out")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    parser.set_defaults(handler=run, default_source=source, family=name)


def run(args) -> int:
    encoder, decoder = getattr(args, "encoder", None), getattr(args, "decoder", None)
    if bool(encoder) != bool(decoder):
        raise ValueError("a new model needs both --encoder ID and --decoder ID (or neither, with --from)")
    if args.learning_rate <= 0:
        raise ValueError(f"the learning rate must be positive, not {args.learning_rate}")
    settings = ImageToTextSettings(source=args.default_source, encoder=encoder or "", decoder=decoder or "",
                                   epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                                   max_target_length=args.max_target_length, patience=args.patience, seed=args.seed)
    if args.family != "vit-gpt2":  # BLIP and GIT caption with their papers' beam width and length
        settings.num_beams = settings.max_length = 0
    if encoder:
        settings.source = ""
    from captioner.training.image_to_text import train_image_to_text

    say = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    bundle = train_image_to_text(args.prepared, args.out, settings, from_=args.source, resume=args.resume,
                                 progress=say, family=args.family)
    from captioner.models.bundle import read_bundle_info

    if environment.current().rank != 0:  # in a multi-GPU run, the first process writes the bundle
        return 0
    val = read_bundle_info(bundle).metrics.get("val", {})
    shown = ", ".join(f"{k} {val[k]:.3f}" for k in ("BLEU-4", "CIDEr", "METEOR") if k in val)
    print(f"model bundle written to {bundle} (validation: {shown or 'no metrics'})")
    print(f"caption with: captioner caption IMAGE --model {bundle}")
    return 0
