"""`captioner caption IMAGE... --model NAME|PATH`: caption images with an installed model."""

from __future__ import annotations

from captioner.cli.common import add_decoding_arguments, decoding_request, print_json


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
    parser.add_argument("--alternatives", type=int, metavar="N",
                        help="also show the N next-best captions with their log-probabilities (beam search)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from captioner.data.images import load_image
    from captioner.models.base import check_prompt
    from captioner.models.registry import load_captioner

    if args.alternatives is not None and args.alternatives < 0:
        raise ValueError("--alternatives must not be negative")
    request = decoding_request(args)
    images = [load_image(path) for path in args.images]  # a bad file stops here, named, before the model loads
    captioner = load_captioner(args.model, args.models_dir)
    decoding = request.for_default(captioner.default_decoding)
    check_prompt(captioner, decoding.prompt)  # a prompt this model refuses is one clear line, before any work
    results = captioner.caption(images, decoding)
    if args.json:
        print_json({"model": captioner.name, "kind": captioner.kind, "decoding": decoding.to_dict(),
                    "captions": [{"image": path, **result.to_dict()} for path, result in zip(args.images, results)]})
        return 0
    for path, result in zip(args.images, results):
        print(f"{path}\t{result.text}")
        for alternative in result.alternatives:
            print(f"\t{alternative.log_prob:8.3f}  {alternative.text}")
    return 0
