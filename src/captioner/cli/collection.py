"""`captioner collection DIR... --out results.jsonl --model NAME`: caption whole folders, resumably."""

from __future__ import annotations

import sys

from captioner.cli.common import (ALTERNATIVES_HELP, add_decoding_arguments, add_precision_argument, add_score_argument,
                                  add_language_argument, add_tagger_arguments, add_template_arguments,
                                  wording_options,
                                  decoding_request, positive_int, print_json)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "collection", help="caption whole folders of photos into a results file (resumable)",
        description="Caption every image under the folders (recursively; images are told by their content) "
                    "and append one row per image to --out as results come. Run the same command again and "
                    "it skips every image already captioned with the same model and settings, even when "
                    "the file was renamed or moved. Unreadable files are listed and skipped.")
    parser.add_argument("roots", nargs="+", metavar="FOLDER|IMAGE", help="folders to walk and image files")
    parser.add_argument("--out", metavar="FILE",
                        help="results: FILE.jsonl, FILE.csv or FILE.parquet (a folder of part files); optional with "
                             "--captions txt (then FOLDER/.captioner/results.jsonl keeps the run's state)")
    parser.add_argument("--model", required=True, metavar="NAME|PATH", help="bundle name, bundle folder or vit-gpt2")
    parser.add_argument("--models-dir", metavar="DIR", help="models folder (default: $CAPTIONER_MODELS_DIR or models/)")
    add_decoding_arguments(parser)
    add_precision_argument(parser)
    add_tagger_arguments(parser)
    add_language_argument(parser)
    add_template_arguments(parser)
    parser.add_argument("--alternatives", type=int, metavar="N", help=ALTERNATIVES_HELP)
    parser.add_argument("--batch-size", type=positive_int, default=16, metavar="N", help="images per model call (16)")
    parser.add_argument("--readers", type=positive_int, default=2, metavar="N",
                        help="threads reading and decoding images ahead of the model (2)")
    parser.add_argument("--translate", metavar="CODES", default="",
                        help="also translate each caption, e.g. de,ar (the configured translation backend)")
    parser.add_argument("--metadata", choices=("sidecar", "embed"),
                        help="write captions where photo managers read them: an XMP sidecar, or into the photo "
                             "(XMP, EXIF, IPTC; pixels untouched; RAW files always get a sidecar); off unless given")
    add_score_argument(parser)
    parser.add_argument("--min-score", type=float, metavar="X",
                        help="with --score clip: captions scoring below X are marked for review (the review "
                             "column) and no metadata is written for them")
    parser.add_argument("--write", metavar="FIELDS",
                        help="with --metadata: which fields, comma-separated: description (dc:description), keywords "
                             "(dc:subject and IPTC Keywords, merged), alt-text (IPTC AltTextAccessibility), detailed "
                             "(IPTC ExtDescrAccessibility); default description")
    parser.add_argument("--existing", choices=("skip", "replace", "append", "prepend"),
                        help="with --metadata or --captions: text a person or another tool already wrote is left alone "
                             "(skip, the default, listed in the summary), replaced, or has the caption appended or "
                             "prepended; captioner's own earlier text is replaced whenever the model, style or "
                             "settings change")
    add_caption_file_arguments(parser)
    parser.add_argument("--sidecar-name", choices=("full", "base"),
                        help="sidecar file name: full = IMG_0001.CR2.xmp (darktable, digiKam, Immich; default), "
                             "base = IMG_0001.xmp (Lightroom); an existing sidecar is updated in place")
    parser.add_argument("--dry-run", action="store_true",
                        help="caption and show what would be written, but write nothing")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="caption in this process (default) or on Ray Data")
    parser.add_argument("--address", metavar="ADDR",
                        help="Ray cluster to join (e.g. auto or ray://head:10001); default: a local Ray")
    parser.add_argument("--actors", type=positive_int, default=1, metavar="N",
                        help="Ray actors, each holding one copy of the model (1)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def add_caption_file_arguments(parser) -> None:
    group = parser.add_argument_group("caption files (training sets)")
    group.add_argument("--captions", choices=("txt",),
                       help="write a caption file beside each image (a.jpg -> a.txt), as kohya, OneTrainer and "
                            "musubi-tuner read them; off unless given")
    group.add_argument("--caption-extension", metavar=".EXT", help="the caption files' extension (.txt; also .caption)")
    group.add_argument("--trigger", metavar="WORD", help="a trigger word, always first in each caption")
    group.add_argument("--prefix", metavar="TEXT", help="text after the trigger word, before the caption")
    group.add_argument("--suffix", metavar="TEXT", help="text after the caption")
    group.add_argument("--separator", metavar="TEXT", help="between trigger, prefix, caption, suffix and tags (', ')")
    group.add_argument("--lines", type=positive_int, metavar="N",
                       help="the N best captions, one per line (OneTrainer's several captions per file)")
    group.add_argument("--manifest", choices=("hf", "musubi", "kohya"),
                       help="also write one manifest of the set: hf (ImageFolder metadata.jsonl, per split folder), "
                            "musubi (musubi.jsonl) or kohya (meta_cap.json)")


def caption_file_settings(args):
    """The caption-file options given, checked; None without --captions (then none of them may be given)."""
    from captioner.collections.caption_files import CaptionFileSettings

    options = {"--caption-extension": args.caption_extension, "--trigger": args.trigger, "--prefix": args.prefix,
               "--suffix": args.suffix, "--separator": args.separator, "--lines": args.lines,
               "--manifest": args.manifest}
    if not args.captions:
        given = [option for option, value in options.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply with --captions txt")
        return None
    return CaptionFileSettings(extension=args.caption_extension or ".txt", trigger=(args.trigger or "").strip(),
                               prefix=args.prefix or "", suffix=args.suffix or "",
                               separator=", " if args.separator is None else args.separator, lines=args.lines or 1,
                               existing=args.existing or "skip")


def results_path(args) -> str:
    """--out, or with --captions and no --out, the results file in the state folder of the one FOLDER."""
    from pathlib import Path

    from captioner.collections.caption_files import RESULTS_FILE, STATE_FOLDER

    if args.out:
        return args.out
    if not args.captions:
        raise ValueError("--out is needed (a results file: FILE.jsonl, FILE.csv or FILE.parquet), unless "
                         "--captions txt writes caption files")
    if len(args.roots) != 1 or not Path(args.roots[0]).is_dir():
        raise ValueError("without --out, --captions takes one FOLDER (its state goes in FOLDER/.captioner/); "
                         "give --out FILE to caption several")
    return str(Path(args.roots[0]) / STATE_FOLDER / RESULTS_FILE)


def run(args) -> int:
    from captioner.collections import CollectionJob, CollectionSettings, run_collection
    from captioner.collections.results import results_format
    from captioner.collections.walk import check_roots
    from captioner.models.base import check_prompt
    from captioner.models.registry import load_captioner, resolve_model_folder
    from captioner.models.styles import check_style
    from captioner.collections.wording import worded
    from captioner.translation.captions import language_of

    if args.alternatives is not None and args.alternatives < 0:
        raise ValueError("--alternatives must not be negative")
    if args.address and args.engine != "ray":
        raise ValueError("--address is for --engine ray")
    if args.lines and args.lines > 1:  # the N best captions: the best and N - 1 alternatives, from a beam search
        if args.alternatives is None:
            args.alternatives = args.lines - 1
        if args.beam is None and not args.greedy and not args.sample:
            args.beam = max(args.lines, 3)
    request = decoding_request(args)  # bad options, a bad --out name or a missing folder fail before the model loads
    check_roots(args.roots)
    args.out = results_path(args)
    results_format(args.out)
    given = [option for option, value in (("--write", args.write), ("--existing", args.existing),
                                          ("--sidecar-name", args.sidecar_name)) if value is not None]
    if args.captions:
        given = [option for option in given if option != "--existing"]
    if given and not args.metadata:
        raise ValueError(f"{', '.join(given)} only apply with --metadata sidecar or --metadata embed")
    files = caption_file_settings(args)
    wording = wording_options(args, args.models_dir)
    write = _fields(args.write or "description")
    folder = resolve_model_folder(args.model, args.models_dir)
    job = CollectionJob(
        roots=tuple(args.roots), out=args.out,
        translate=tuple(code.strip() for code in args.translate.split(",") if code.strip()),
        metadata=args.metadata, write=write, existing=args.existing or "skip",
        sidecar_name=args.sidecar_name or "full", dry_run=args.dry_run, engine=args.engine, address=args.address,
        ray_actors=args.actors, model=str(folder.resolve()) if folder else args.model, models_dir=args.models_dir,
        settings=CollectionSettings(batch_size=args.batch_size, readers=args.readers), score=args.score,
        min_score=args.min_score, captions=args.captions, manifest=args.manifest,
        wording=wording.to_dict(), **({"caption_files": files} if files else {}))
    captioner = load_captioner(args.model, args.models_dir)
    captioner = worded(captioner, wording)
    decoding = request.for_default(captioner.default_decoding)
    check_prompt(captioner, decoding.prompt)  # refused before any image is read
    check_style(captioner, decoding.style)

    bars = []  # the progress bar (images/s and time left), made once the images are counted
    say = (lambda text: print(text, file=sys.stderr)) if args.json else print

    def started(total: int) -> None:
        from captioner.progress import progress_bar

        bars.append(progress_bar(total=total, desc="captioning", unit="img"))

    def stepped(step) -> None:
        bars[0].update(len(step.rows) + step.skipped)
        if args.dry_run and not args.metadata and not args.captions:
            for row in step.rows:
                say(f"{row.path}\t{row.caption or 'ERROR: ' + str(row.error)}")

    try:
        summary = run_collection(job, captioner, decoding, on_start=started, on_step=stepped, say=say)
    finally:
        for bar in bars:
            bar.close()
    if args.json:
        language = {"language": language_of(captioner)} if language_of(captioner) else {}
        print_json({"model": captioner.name, "decoding": decoding.to_dict(), "out": args.out, **language,
                    "dry_run": args.dry_run, **summary.to_dict()})
        return 0
    written = "would write" if args.dry_run else f"wrote to {args.out}"
    print(f"{summary.found} images found: {summary.captioned} captioned ({written}), {summary.skipped} already done, "
          f"{len(summary.failed)} unreadable")
    for row in summary.failed:
        print(f"unreadable\t{row.path}\t{row.error}")
    if args.min_score is not None:
        print(f"{len(summary.review)} captions scored below {args.min_score:g} and are marked for review "
              "(no metadata written for them)")
    for row in summary.review:
        shown = "-" if row.clip_score is None else f"{row.clip_score:.3f}"
        print(f"review\t{row.path}\t{shown}\t{row.caption}")
    if args.metadata:
        written = "nothing written (dry run)" if args.dry_run else f"{summary.written} files written"
        print(f"metadata: {written}; {len(summary.kept)} photos keep text a person or another tool wrote "
              f"(--existing {args.existing or 'skip'})")
    if args.captions:
        written = "nothing written (dry run)" if args.dry_run else f"{summary.caption_files} written"
        kept = [path for path, fields in summary.kept if fields == ("caption file",)]
        print(f"caption files: {written}; {len(kept)} kept as a person wrote them (--existing "
              f"{args.existing or 'skip'}); {len(summary.conflicts)} stem conflicts")
        for path, images in summary.conflicts:
            print(f"conflict\t{path}\t{' '.join(images)}")
        for path in summary.manifests:
            print(f"manifest\t{path}")
    for path, fields in summary.kept:
        print(f"kept\t{path}\t{','.join(fields)}")
    return 0


def _fields(text: str) -> tuple[str, ...]:
    from captioner.collections.metadata import FIELDS

    fields = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in fields if name not in FIELDS]
    if unknown or not fields:
        raise ValueError(f"--write takes one or more of {', '.join(FIELDS)}, comma-separated, "
                         f"not {','.join(unknown) or repr(text)}")
    return fields
