"""`captioner train lstm|attention|vit-gpt2|blip|git`: train a captioner into a model bundle."""

from __future__ import annotations

from captioner.cli import train_attention, train_image_to_text, train_lstm


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a captioning model into a bundle")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    train_lstm.register(kinds)
    train_attention.register(kinds)
    train_image_to_text.register(kinds)
