"""`captioner keys create|list|revoke`: the API keys of a server with access control on.

Keys live in the history database of the server (``DATABASE_URL``, default ``captioner.db`` in the
instance folder), so run these commands with the server's settings (the same ``.env`` or environment).
"""

from __future__ import annotations

import sys

from captioner.cli.common import print_json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "keys", help="create, list and revoke API keys (for CAPTIONER_REQUIRE_KEYS=true)",
        description="API keys open a server that runs with CAPTIONER_REQUIRE_KEYS=true. They are stored "
                    "hashed in the history database (DATABASE_URL); a new key is shown once.")
    parser.add_argument("--database-url", metavar="URL",
                        help="the server's database (default: $DATABASE_URL, or captioner.db in the instance folder)")
    parser.set_defaults(handler=lambda _args: parser.print_help() or 1)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    create = actions.add_parser("create", help="make a new key and print it (once)")
    create.add_argument("name", help="who or what will use the key, e.g. 'alice' or 'gallery-bot'")
    create.add_argument("--admin", action="store_true", help="the key sees every key's history")
    create.add_argument("--json", action="store_true", help="print the key and its details as JSON")
    create.set_defaults(handler=create_key)
    listing = actions.add_parser("list", help="list keys (ids, names, prefixes; never the keys)")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(handler=list_keys)
    revoke = actions.add_parser("revoke", help="revoke a key for good (its history stays)")
    revoke.add_argument("key", metavar="ID_OR_PREFIX", help="the key's id or prefix, as 'captioner keys list' shows")
    revoke.set_defaults(handler=revoke_key)


def open_keys(args):
    from captioner.history import default_database_url, open_history
    from captioner.history.keys import KeyStore
    from captioner.web.settings import WebSettings

    # The secret key plays no part here; giving one keeps the settings from warning about it.
    settings = WebSettings.from_env(secret_key="unused-by-keys")
    url = args.database_url or settings.database_url or default_database_url(settings.instance_path)
    return KeyStore(open_history(url).session_factory)


def create_key(args) -> int:
    info, key = open_keys(args).create(args.name, admin=args.admin)
    if args.json:
        print_json({**info.to_dict(), "key": key})
    else:
        print(key)
        print(f"created key {info.id} {info.name!r}{' (admin)' if info.admin else ''}, prefix {info.prefix}; "
              "keep it now: it is stored hashed and cannot be shown again", file=sys.stderr)
    return 0


def list_keys(args) -> int:
    keys = open_keys(args).list()
    if args.json:
        print_json([info.to_dict() for info in keys])
        return 0
    if not keys:
        print("no API keys yet; make one with: captioner keys create NAME")
        return 0
    print(f"{'id':>4}  {'prefix':<12}  {'admin':<5}  {'state':<7}  {'created':<16}  name")
    for info in keys:
        print(f"{info.id:>4}  {info.prefix:<12}  {'yes' if info.admin else 'no':<5}  "
              f"{'active' if info.active else 'revoked':<7}  {info.created_at:%Y-%m-%d %H:%M}  {info.name}")
    return 0


def revoke_key(args) -> int:
    info = open_keys(args).revoke(args.key)
    print(f"revoked key {info.id} {info.name!r} ({info.prefix}); it opens nothing from now on")
    return 0
