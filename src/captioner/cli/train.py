"""`captioner train lstm|attention|vit-gpt2`: train a captioner into a model bundle."""

from __future__ import annotations

from captioner.cli import train_attention, train_lstm, train_vit_gpt2


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a captioning model into a bundle")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    train_lstm.register(kinds)
    train_attention.register(kinds)
    train_vit_gpt2.register(kinds)
