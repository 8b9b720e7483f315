"""Small helpers the subcommands share: JSON output, argument types, decoding options."""

from __future__ import annotations

import argparse
import json
import sys


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """--beam K, --max-length N and friends, shared by caption and evaluate."""
    parser.add_argument("--beam", type=positive_int, metavar="K",
                        help="beam search with K beams (default: the model's own default)")
    parser.add_argument("--greedy", action="store_true", help="greedy search (the original's decoding)")
    parser.add_argument("--max-length", type=positive_int, metavar="N", help="most words in a caption (start and end markers not counted)")
    parser.add_argument("--prompt", metavar="TEXT",
                        help="the model's own prompt: a caption start for BLIP and GIT (e.g. 'a photography of'), "
                             "a task for Florence-2 (<CAPTION>, <DETAILED_CAPTION>, <MORE_DETAILED_CAPTION>)")


def add_score_argument(parser: argparse.ArgumentParser) -> None:
    """--score clip, shared by caption, collection and compare."""
    parser.add_argument("--score", choices=("clip",),
                        help="also rate each caption without references: clip = CLIPScore (0 to 2.5, higher fits "
                             "the image better; needs 'captioner models download clip-vit-base-patch32')")


def decoding_request(args):
    """The decoding options the user gave, checked now (before any model loads); DecodingRequest's one rule."""
    from captioner.models.base import DecodingRequest

    return DecodingRequest(method="greedy" if getattr(args, "greedy", False) else None,
                           beam_size=getattr(args, "beam", None), max_length=getattr(args, "max_length", None),
                           alternatives=getattr(args, "alternatives", None), prompt=getattr(args, "prompt", None))
