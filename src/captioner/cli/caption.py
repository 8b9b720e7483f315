"""`captioner caption IMAGE... --model NAME|PATH`: caption images with an installed model."""

from __future__ import annotations

import sys
from pathlib import Path

from captioner.cli.common import (ALTERNATIVES_HELP, add_decoding_arguments, add_precision_argument, add_score_argument,
                                  add_language_argument, add_tagger_arguments, add_template_arguments,
                                  apply_wording_arguments,
                                  decoding_request, print_json)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "caption", help="caption one or more images",
        description="Caption images with a model bundle (a name in the models folder or a path), a model folder, "
                    "or a pretrained model (vit-gpt2, blip-base, blip-large, git-base-coco, florence-2-base, "
                    "florence-2-base-ft, or a hub id). Each line of output is 'IMAGE<TAB>CAPTION'.")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, GIF, WebP, BMP)")
    parser.add_argument("--model", required=True, metavar="NAME|PATH", help="bundle name or folder, model folder, "
                                                                          "pretrained name or hub id")
    parser.add_argument("--models-dir", metavar="DIR", help="models folder (default: $CAPTIONER_MODELS_DIR or models/)")
    add_decoding_arguments(parser)
    add_precision_argument(parser)
    add_tagger_arguments(parser)
    add_language_argument(parser)
    add_template_arguments(parser, trigger=True)
    parser.add_argument("--alternatives", type=int, metavar="N", help=ALTERNATIVES_HELP)
    parser.add_argument("--attention", metavar="OUT.png",
                        help="attention models: draw each word's attention map over the image into OUT.png "
                             "(several images: OUT-1.png, OUT-2.png, ...); with --json the maps are in the output")
    add_score_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from captioner.data.images import load_image
    from captioner.evaluation.clipscore import require_score_model, score_captions
    from captioner.models.base import check_prompt
    from captioner.models.registry import load_captioner
    from captioner.models.styles import check_style
    from captioner.translation.captions import language_of

    if args.alternatives is not None and args.alternatives < 0:
        raise ValueError("--alternatives must not be negative")
    if args.attention and not args.attention.lower().endswith(".png"):
        raise ValueError(f"--attention names a PNG file to write, ending in .png, not {args.attention!r}")
    request = decoding_request(args)
    images = [load_image(path) for path in args.images]  # a bad file stops here, named, before the model loads
    require_score_model(args.score)  # a missing CLIP model is one clear line, before any captioning
    captioner = load_captioner(args.model, args.models_dir)
    captioner = apply_wording_arguments(args, captioner, args.models_dir)
    if args.attention and captioner.kind != "attention":
        raise ValueError(f"--attention needs a model that attends (kind attention); {captioner.name} is a "
                         f"{captioner.kind} model")
    decoding = request.for_default(captioner.default_decoding)
    check_prompt(captioner, decoding.prompt)  # a prompt this model refuses is one clear line, before any work
    check_style(captioner, decoding.style)  # so is a style it cannot write
    results = captioner.caption(images, decoding)
    scores = score_captions(args.score, images, [result.text for result in results])
    figures = write_attention_figures(args.attention, args.images, images, results) if args.attention else []
    if args.json:
        def entry(path, result, score):
            maps = {"attention": result.attention.to_dict()} if args.attention and result.attention else {}
            rated = {"clip_score": score} if args.score else {}
            return {"image": path, **result.to_dict(), **rated, **maps}

        language = {"language": language_of(captioner)} if language_of(captioner) else {}
        print_json({"model": captioner.name, "kind": captioner.kind, "decoding": decoding.to_dict(), **language,
                    "captions": [entry(*item) for item in zip(args.images, results, scores)],
                    **({"attention_figures": [str(f) for f in figures]} if figures else {})})
        return 0
    for path, result, score in zip(args.images, results, scores):
        rated = "" if not args.score else f"\tCLIPScore {score:.3f}" if score is not None else "\tCLIPScore -"
        print(f"{path}\t{result.text}{rated}")
        for alternative in result.alternatives:
            print(f"\t{alternative.log_prob:8.3f}  {alternative.text}")
    for figure in figures:
        print(f"attention maps drawn in {figure}", file=sys.stderr)
    return 0


def write_attention_figures(out: str, paths: list[str], images, results) -> list[Path]:
    """One PNG of per-word attention maps per image: ``out`` itself for one image, else numbered beside it."""
    from captioner.evaluation.attention import attention_figure, save_png

    target = Path(out)
    written = []
    for number, (path, image, result) in enumerate(zip(paths, images, results), start=1):
        name = target if len(paths) == 1 else target.with_name(f"{target.stem}-{number}{target.suffix}")
        if result.attention is not None:
            written.append(save_png(attention_figure(image, result.attention, f"{Path(path).name}: {result.text}"),
                                    name))
    return written
