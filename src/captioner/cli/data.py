"""`captioner data download|prepare|shapes|preview`: get a data set, prepare it for training, look at it."""

from __future__ import annotations

import argparse
import sys

from captioner.cli.common import positive_int, print_json
from captioner.config import DataSettings

DEFAULTS = DataSettings()

DROPPED_SHOWN = 5  # dropped images named in the human summary; --json lists them all


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="download, prepare, generate or preview caption data sets")
    jobs = parser.add_subparsers(dest="job", metavar="JOB", required=True)

    download = jobs.add_parser("download", help="download and unpack a data set (resumable, verified)")
    download.add_argument("dataset", choices=["flickr8k"], help="which data set")
    download.add_argument("--dest", default="data/flickr8k", help="folder to unpack into (default: data/flickr8k)")
    download.add_argument("--base-url", metavar="URL",
                          help="where the zips are (default: $CAPTIONER_FLICKR8K_URL, else the jbrownlee/Datasets release)")
    download.set_defaults(handler=run_download)

    prepare = jobs.add_parser("prepare", help="clean, split and build the vocabulary into a prepared folder")
    prepare.add_argument("dataset_dir", metavar="DATASET_DIR", help="data set folder (any supported layout)")
    prepare.add_argument("--out", required=True, metavar="PREPARED_DIR", help="folder to write (replaced as a whole)")
    prepare.add_argument("--preset", choices=["seed", "standard"], default=DEFAULTS.preset,
                         help=f"caption cleaning: seed (the original's steps) or standard (keeps 'a'); "
                              f"default {DEFAULTS.preset}")
    prepare.add_argument("--min-count", type=positive_int, default=DEFAULTS.min_count, metavar="N",
                         help=f"words seen fewer than N times in training become <unk> (default {DEFAULTS.min_count})")
    prepare.add_argument("--seed", type=int, default=DEFAULTS.seed, metavar="S",
                         help=f"seed of the split when the data set has none (default {DEFAULTS.seed})")
    prepare.add_argument("--json", action="store_true", help="print the summary as JSON")
    prepare.set_defaults(handler=run_prepare)

    shapes = jobs.add_parser("shapes", help="write the synthetic shapes data set (CSV layout)")
    shapes.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    shapes.add_argument("--images", type=positive_int, default=600, metavar="N", help="pictures (default 600)")
    shapes.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    shapes.set_defaults(handler=run_shapes)

    preview = jobs.add_parser("preview", help="draw sample images with their captions into a PNG")
    preview.add_argument("dataset_dir", metavar="DATASET_DIR", help="data set folder")
    preview.add_argument("--out", default="samples.png", metavar="PNG", help="image to write (default samples.png)")
    preview.add_argument("--n", type=positive_int, default=9, metavar="N", help="how many images (default 9)")
    preview.add_argument("--seed", type=int, default=0, metavar="S", help="which images (default 0)")
    preview.set_defaults(handler=run_preview)


def run_download(args: argparse.Namespace) -> int:
    from captioner.data.download import MARKER, download_flickr8k
    from pathlib import Path

    already = (Path(args.dest) / MARKER).is_file()
    dest = download_flickr8k(args.dest, args.base_url)
    print(f"Flickr8k {'was already' if already else 'is'} in {dest}")
    print(f"next: captioner data prepare {dest} --out data/prepared/flickr8k")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from captioner.data.prepare import prepare_dataset

    settings = DataSettings(preset=args.preset, min_count=args.min_count, seed=args.seed)
    summary = prepare_dataset(args.dataset_dir, args.out, settings)
    if args.json:
        print_json(summary)
    else:
        print(describe_summary(summary, args.out))
    return 0


def describe_summary(summary: dict, out) -> str:
    lines = [f"Prepared {summary['name']} ({summary['layout']} layout, {summary['split_source']} split) into {out}"]
    for split, counts in summary["splits"].items():
        lines.append(f"  {split:<5} {counts['images']:>7,} images {counts['captions']:>8,} captions")
    lines.append(f"  vocabulary: {summary['vocab_size']:,} tokens (preset {summary['preset']}, "
                 f"min count {summary['min_count']}, training split only)")
    lines.append(f"  caption length in tokens (startseq/endseq included): max {summary['max_length']}, "
                 f"mean {summary['mean_length']:.2f}")
    dropped = summary["dropped"]
    if dropped:
        reasons: dict[str, list[str]] = {}
        for entry in dropped:
            reasons.setdefault(entry["reason"], []).append(entry["image"])
        lines.append(f"  dropped {len(dropped):,} image(s):")
        for reason, images in reasons.items():
            shown = ", ".join(images[:DROPPED_SHOWN]) + (", ..." if len(images) > DROPPED_SHOWN else "")
            lines.append(f"    {len(images):,} {reason}: {shown}")
    else:
        lines.append("  dropped: nothing")
    for note in summary.get("notes", []):
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def run_shapes(args: argparse.Namespace) -> int:
    from captioner.data.shapes import write_shapes_dataset

    folder = write_shapes_dataset(args.out, images=args.images, seed=args.seed)
    print(f"wrote {args.images} pictures with 5 captions each to {folder}")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from captioner.data.preview import write_preview

    out = write_preview(args.dataset_dir, args.out, n=args.n, seed=args.seed)
    print(f"wrote {out}", file=sys.stdout)
    return 0
