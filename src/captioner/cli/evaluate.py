"""`captioner evaluate`: score models (or a predictions file) on a data set's split with the COCO metrics.

    captioner evaluate lstm-flickr8k vit-gpt2 --dataset prepared/flickr8k --beam 3
    captioner evaluate --predictions other-system.jsonl --dataset data/flickr8k --split test

Prints a table of scores x100 (one row per model) and writes metrics.json, predictions.jsonl, report.md
and results.png into --report DIR (default reports/<dataset>-<split>-<UTC time>/). A bundle's own
captioner.json records its scores when the whole split was evaluated (not with --limit).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from captioner.cli.common import (add_decoding_arguments, add_precision_argument, decoding_request, positive_int,
                                  print_json)
from captioner.data.records import SPLITS

REPORTS_DIR = "reports"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score models on a data set split (BLEU, METEOR, ROUGE-L, CIDEr) and write a report",
        description="Caption every image of a data set split with each MODEL (bundle name or folder, model "
                    "folder, pretrained name such as 'blip-base', or hub id), or read captions from --predictions FILE.jsonl, and score them against the raw "
                    "reference captions with the official COCO caption metrics (pycocoevalcap). Scores print x100.")
    parser.add_argument("models", nargs="*", metavar="MODEL", help="bundle names or folders, model folders, pretrained "
                                                                    "names (vit-gpt2, blip-base, ...) or hub ids")
    parser.add_argument("--dataset", required=True, metavar="DIR",
                        help="a prepared folder (written by 'captioner data prepare') or a data set folder "
                             "in any supported layout")
    parser.add_argument("--split", choices=SPLITS, default="test", help="split to score (default: test)")
    parser.add_argument("--predictions", metavar="FILE",
                        help='score captions from a JSONL file of {"image": ..., "caption": ...} lines instead of a model')
    add_decoding_arguments(parser)
    add_precision_argument(parser)
    parser.add_argument("--limit", type=positive_int, metavar="N", help="only the first N images of the split")
    parser.add_argument("--batch-size", type=positive_int, default=16, metavar="N", help="images per batch (default 16)")
    parser.add_argument("--report", metavar="DIR",
                        help="where the report files go (default: reports/<dataset>-<split>-<UTC time>/)")
    parser.add_argument("--figure-images", type=int, default=6, metavar="N",
                        help="test images in results.png (default 6; 0 for no figure)")
    parser.add_argument("--models-dir", metavar="DIR", help="models folder (default: $CAPTIONER_MODELS_DIR or models/)")
    parser.add_argument("--json", action="store_true", help="print metrics.json to stdout instead of the table")
    parser.set_defaults(handler=run)


def check_models(names: list[str], models_dir: str | None) -> None:
    """Fail before any slow work when a MODEL names nothing that can be loaded."""
    from captioner.models.registry import load_captioner, names_pretrained, resolve_model_folder

    for name in names:
        if resolve_model_folder(name, models_dir) is None and not names_pretrained(name):
            load_captioner(name, models_dir)  # raises ModelError naming the installed bundles


def default_report_dir(prepared, split: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path(REPORTS_DIR) / f"{prepared.name}-{split}-{stamp}"


def run(args: argparse.Namespace) -> int:
    from captioner.data.prepare import open_dataset
    from captioner.evaluation import evaluate_predictions, read_predictions

    if bool(args.models) == bool(args.predictions):
        raise ValueError("name at least one MODEL, or give --predictions FILE.jsonl (not both)")
    if args.figure_images < 0:
        raise ValueError("--figure-images must be 0 or more")
    prepared = open_dataset(args.dataset)
    results = []
    if args.predictions:
        for name, captions in read_predictions(args.predictions).items():
            results.append(evaluate_predictions(captions, prepared, args.split, name=name))
    else:
        check_models(args.models, args.models_dir)
        results = [evaluate_model(name, prepared, args) for name in args.models]
    return finish(results, prepared, args)


def evaluate_model(name: str, prepared, args):
    from captioner.evaluation import evaluate_captioner, record_in_bundle
    from captioner.models.base import check_prompt
    from captioner.models.registry import load_captioner, resolve_bundle
    from captioner.models.styles import check_style

    captioner = load_captioner(name, args.models_dir)
    decoding = decoding_request(args).for_default(captioner.default_decoding)
    check_prompt(captioner, decoding.prompt)
    check_style(captioner, decoding.style)
    result = evaluate_captioner(captioner, prepared, args.split, decoding=decoding, limit=args.limit,
                                batch_size=args.batch_size, progress=True)
    bundle = resolve_bundle(name, args.models_dir)
    if bundle is not None and args.limit is None:
        result.bundle_dir = bundle
        record_in_bundle(result)
    elif bundle is not None:
        result.notes.append("Not recorded in the bundle: --limit scored only part of the split.")
    return result


def finish(results, prepared, args) -> int:
    from captioner.evaluation import text_table, write_report

    folder = Path(args.report) if args.report else default_report_dir(prepared, args.split)
    paths = write_report(results, prepared, folder, figure_images=args.figure_images)
    if args.json:
        import json

        print_json(json.loads(paths["metrics.json"].read_text(encoding="utf-8")))
        return 0
    print(f"{prepared.name}, {args.split} split; scores x100 (COCO caption metrics, CIDEr-D)")
    print(text_table(results))
    shared = [note for note in results[0].notes if all(note in r.notes for r in results)]
    for note in shared:
        print(f"note: {note}")
    for result in results:
        for note in result.notes:
            if note not in shared:
                print(f"note ({result.model}): {note}")
        if result.bundle_dir:
            print(f"recorded in {result.bundle_dir / 'captioner.json'}")
    print(f"report: {paths['report.md']}")
    return 0
