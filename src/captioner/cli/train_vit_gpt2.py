"""`captioner train vit-gpt2`: (in progress)."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("vit-gpt2", help="(in progress)")
