"""`captioner caption`: (in progress)."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("caption", help="(in progress)")
