"""`captioner evaluate`: (in progress)."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("evaluate", help="(in progress)")
