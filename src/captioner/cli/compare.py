"""`captioner compare FOLDER --models a,b,c`: which captioner describes your own photos best, as a report."""

from __future__ import annotations

import sys

from captioner.cli.common import add_precision_argument, positive_int, print_json


def register(subparsers) -> None:
    from captioner.models.base import CAPTION_STYLES

    parser = subparsers.add_parser(
        "compare", help="compare captioners on a sample of your own photos (CLIPScore, latency, refusals)",
        description="Caption a sample of the photos in FOLDER (images told by their content, found recursively) "
                    "with each model, rate every caption with CLIPScore (no reference captions needed), and write "
                    "a report: an HTML page with thumbnails and every caption with its score, a table of each "
                    "model's mean CLIPScore and spread, latency, share of distinct captions and refusals, and a "
                    "plot. Needs the CLIP model: captioner models download clip-vit-base-patch32.")
    parser.add_argument("folder", metavar="FOLDER", help="a folder of photos")
    parser.add_argument("--models", required=True, metavar="A,B,C",
                        help="models to compare, comma-separated: bundle names or folders, pretrained names or hub ids")
    parser.add_argument("--models-dir", metavar="DIR", help="models folder (default: $CAPTIONER_MODELS_DIR or models/)")
    parser.add_argument("--style", choices=CAPTION_STYLES,
                        help="the kind of text to ask every model for (default: caption); a model that cannot "
                             "write it counts as refusing every photo")
    parser.add_argument("--sample", type=positive_int, default=None, metavar="N",
                        help="photos to compare on, spread evenly over the folder (default: 24)")
    parser.add_argument("--out", metavar="DIR",
                        help="report folder (default: a new compare-DATE-TIME folder in $CAPTIONER_REPORTS_DIR or "
                             "reports/, where the web app's models page finds the latest one)")
    parser.add_argument("--json", action="store_true", help="print the summary table as JSON")
    add_precision_argument(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    from captioner.collections.walk import check_roots
    from captioner.evaluation.clipscore import clip_scorer, require_score_model
    from captioner.collections.compare import DEFAULT_SAMPLE, compare_models
    from captioner.collections.compare_report import new_report_path, write_compare_report
    from captioner.models.base import DecodingRequest
    from captioner.models.registry import load_captioner
    from captioner.progress import progress_bar

    names = list(dict.fromkeys(name.strip() for name in args.models.split(",") if name.strip()))
    if not names:
        raise ValueError("--models names no model; give one or more, e.g. --models vit-gpt2,blip-base")
    check_roots([args.folder])
    require_score_model("clip")  # a missing CLIP model is one clear line, before any captioning
    request = DecodingRequest(style=args.style)
    sample = args.sample or DEFAULT_SAMPLE
    out = args.out or new_report_path()
    bars = []  # made once the sample is drawn and its size known

    def started(total: int) -> None:
        bars.append(progress_bar(total=total, desc="captioning", unit="img"))

    try:
        comparison = compare_models(args.folder, names, lambda name: load_captioner(name, args.models_dir),
                                    request, clip_scorer(), sample, on_start=started,
                                    on_photo=lambda: bars[0].update(1))
    finally:
        for bar in bars:
            bar.close()
    report = write_compare_report(comparison, out)
    summaries = comparison.summaries()
    if args.json:
        print_json({"report": str(report), "photos": len(comparison.photos), "style": comparison.style,
                    "models": summaries})
        return 0
    print(f"{len(comparison.photos)} photos, style {comparison.style}; CLIPScore from 0 to 2.5, higher fits better")
    print("model\tmean CLIPScore\tspread\tlatency ms\tdistinct\trefusals")
    for row in summaries:
        def number(value, pattern):
            return "-" if value is None else format(value, pattern)

        print(f"{row['model']}\t{number(row['mean_clip_score'], '.3f')}\t{number(row['clip_score_spread'], '.3f')}\t"
              f"{number(row['median_latency_ms'], '.0f')}\t{number(row['distinct_share'], '.0%')}\t{row['refusals']}")
    for path, error in comparison.unreadable:
        print(f"unreadable\t{path}\t{error}", file=sys.stderr)
    print(f"report: {report / 'index.html'}")
    return 0
