"""`captioner immich --url URL --key-env VAR`: caption an Immich library in place, keeping a person's words."""

from __future__ import annotations

import sys

from captioner.cli.common import add_decoding_arguments, add_precision_argument, decoding_request, positive_int
from captioner.collections.immich.client import PAGE_SIZE


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "immich", help="caption the photos of an Immich server and write descriptions and tags back",
        description="Caption the image assets of an Immich server (all, or one album) through its API and write "
                    "the captions back as descriptions (and, with --write tags, as tags). A description a person "
                    "wrote is kept unless --existing says otherwise; captioner knows its own descriptions by a "
                    "local state, so a run with other settings replaces them and keeps a person's edit. A stopped "
                    "run resumes where it stopped.")
    parser.add_argument("--url", required=True, metavar="URL", help="the Immich server, e.g. http://immich.local:2283")
    parser.add_argument("--key-env", required=True, metavar="VAR",
                        help="name of the environment variable holding the Immich API key (the key itself is "
                             "never given on the command line)")
    parser.add_argument("--album", metavar="ID", help="only the assets of this album (its id, from the album's URL)")
    parser.add_argument("--model", required=True, metavar="NAME|PATH", help="bundle name or folder, model folder, "
                                                                          "pretrained name or hub id")
    parser.add_argument("--models-dir", metavar="DIR", help="models folder (default: $CAPTIONER_MODELS_DIR or models/)")
    parser.add_argument("--write", default="description", metavar="FIELDS",
                        help="what to write, comma-separated: description, tags (default description)")
    parser.add_argument("--existing", default="skip", choices=("skip", "replace", "append"),
                        help="a description a person wrote: skip it (default), replace it, or append the caption "
                             "after it")
    parser.add_argument("--dry-run", action="store_true", help="read and caption, write nothing; print what would "
                                                               "be written")
    parser.add_argument("--concurrency", type=positive_int, default=4, metavar="N",
                        help="requests to Immich at the same time (default 4)")
    parser.add_argument("--page-size", type=positive_int, default=PAGE_SIZE, metavar="N",
                        help=f"assets asked for per search page (default {PAGE_SIZE})")
    parser.add_argument("--state", metavar="FILE",
                        help="the local record of what captioner wrote (default: one file per server in the cache "
                             "folder, $CAPTIONER_CACHE_DIR/immich/)")
    add_decoding_arguments(parser)
    add_precision_argument(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    from captioner import environment
    from captioner.collections.immich.client import ImmichClient, ImmichError
    from captioner.collections.immich.state import ImmichState, default_state_path
    from captioner.collections.immich.sync import SyncSettings, sync_library
    from captioner.models.base import check_prompt
    from captioner.models.registry import load_captioner
    from captioner.models.styles import check_style

    settings = SyncSettings(fields=tuple(name.strip() for name in args.write.split(",") if name.strip()),
                            existing=args.existing, dry_run=args.dry_run, concurrency=args.concurrency,
                            album=args.album, page_size=args.page_size)
    request = decoding_request(args)
    key = environment.secret(args.key_env)
    if not key:
        raise ImmichError(f"the environment variable {args.key_env} holds no Immich API key; set it to a key made "
                          "in Immich (Account settings > API keys)")
    client = ImmichClient(args.url, key)
    version = client.version()  # a wrong address stops here, before any model loads
    client.check_access(args.album)  # and so does a wrong key, or one that may not read the assets
    state = ImmichState(args.state or default_state_path(client.url), client.url)
    captioner = load_captioner(args.model, args.models_dir)
    decoding = request.for_default(captioner.default_decoding)
    check_prompt(captioner, decoding.prompt)
    check_style(captioner, decoding.style)
    doing = "dry run, nothing is written" if args.dry_run else "writing " + ", ".join(settings.fields)
    person = {"skip": "kept", "replace": "REPLACED", "append": "appended to"}[args.existing]
    print(f"Immich {version} at {client.url}: {doing}; a person's description is {person}.")
    report = sync_library(client, state, captioner, decoding, settings)
    for line in report.lines if args.dry_run else report.failures:
        print(line)
    print(f"Immich: {report.summary()}.")
    failed = report.counts.get("failed")
    if failed:
        print(f"captioner: error: {failed} asset{'s' if failed > 1 else ''} could not be captioned (listed above); "
              "the others are done", file=sys.stderr)
    return 1 if failed else 0
