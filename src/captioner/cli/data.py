"""`captioner data`: (in progress)."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("data", help="(in progress)")
