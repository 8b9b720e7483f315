"""`captioner serve`: (in progress)."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("serve", help="(in progress)")
