"""`captioner models`: (in progress)."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("models", help="(in progress)")
