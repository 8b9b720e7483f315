"""`captioner dataset check FOLDER`: what a trainer would trip over in a training set."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("dataset", help="training sets: check a folder of images and caption files",
                                   description="Tools for training sets (images with a caption file beside each).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="list what a trainer would trip over",
        description="List images without a caption file and caption files without an image, empty captions, stem "
                    "conflicts, the same image twice, a missing trigger word, unreadable images, and captions over "
                    "CLIP's 77-token limit. Exits with 1 when a problem was found.")
    check.add_argument("folder", metavar="FOLDER")
    check.add_argument("--trigger", metavar="WORD", help="every caption must start with this word")
    check.add_argument("--caption-extension", default=".txt", metavar=".EXT", help="caption files' extension (.txt)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(handler=run_check)


def run_check(args) -> int:
    from captioner.cli.common import print_json
    from captioner.collections.caption_files import CaptionFileSettings
    from captioner.collections.dataset_check import KINDS, check_dataset

    CaptionFileSettings(extension=args.caption_extension)  # the extension's one check
    report = check_dataset(args.folder, args.caption_extension, args.trigger)
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"{report.folder}: {report.images} images, {report.captions} caption files, "
              f"{len(report.problems)} problems (caption length counted in {report.counted}"
              f"{'' if report.counted == 'tokens' else '; no CLIP tokenizer in the local cache'})")
        for problem in report.problems:
            print(f"{KINDS[problem.kind]:<30}\t{problem.path}" + (f"\t{problem.detail}" if problem.detail else ""))
    return 1 if report.problems else 0
