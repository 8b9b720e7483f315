"""`captioner features`: (in progress)."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("features", help="(in progress)")
