"""`captioner train lstm`: (in progress)."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("lstm", help="(in progress)")
