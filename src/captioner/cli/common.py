"""Small helpers the subcommands share: JSON output, argument types, decoding options."""

from __future__ import annotations

import argparse
import json
import sys

from captioner.models.base import CAPTION_STYLES


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
    """--beam K, --sample, --max-length N and friends, shared by every command that captions."""
    parser.add_argument("--beam", type=positive_int, metavar="K",
                        help="beam search with K beams (default: the model's own default)")
    parser.add_argument("--greedy", action="store_true", help="greedy search (the original's decoding)")
    parser.add_argument("--sample", action="store_true",
                        help="sample: draw each word from the model's probabilities (also asked for by "
                             "--temperature above 0, --top-p or --seed)")
    parser.add_argument("--temperature", type=float, metavar="T",
                        help="sampling temperature: below 1 safer words, above 1 bolder ones "
                             "(0: the model's own deterministic decoding)")
    parser.add_argument("--top-p", type=float, metavar="P",
                        help="sample only from the most likely words that together hold P of the probability "
                             "(0 < P <= 1; default 1)")
    parser.add_argument("--seed", type=int, metavar="N",
                        help="sampling seed: the same seed, image and model give the same caption "
                             "(default: different each time)")
    parser.add_argument("--max-length", type=positive_int, metavar="N",
                        help="most words in a caption (start and end markers not counted)")
    parser.add_argument("--prompt", metavar="TEXT",
                        help="the model's own prompt: a caption start for BLIP and GIT (e.g. 'a photography of'), "
                             "a task for Florence-2 (<CAPTION>, <DETAILED_CAPTION>, <MORE_DETAILED_CAPTION>), "
                             "the instruction for a vision-language model (e.g. 'Describe the colours.')")
    parser.add_argument("--style", choices=CAPTION_STYLES, metavar="STYLE",
                        help=f"what kind of text to write: {', '.join(CAPTION_STYLES)} (default caption); "
                             "a model that cannot write it is refused, `captioner models` lists each one's styles")


ALTERNATIVES_HELP = ("also give the N next-best captions with their log-probabilities (beam search), "
                     "or N further samples (sampling)")


def add_score_argument(parser: argparse.ArgumentParser) -> None:
    """--score clip, shared by caption, collection and compare."""
    parser.add_argument("--score", choices=("clip",),
                        help="also rate each caption without references: clip = CLIPScore (0 to 2.5, higher fits "
                             "the image better; needs 'captioner models download clip-vit-base-patch32')")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """--precision and --runtime, shared by every command that loads a transformers captioner (they set
    CAPTIONER_PRECISION and CAPTIONER_RUNTIME for the run; see the precision guide)."""
    from captioner.models.transformers.precision import PRECISION_ENV, PRECISIONS

    parser.add_argument("--precision", dest="model_precision", choices=PRECISIONS, metavar="PRECISION",
                        help=f"number format of transformers models: {', '.join(PRECISIONS)} (default: "
                             f"${PRECISION_ENV}, else auto: int8 on the CPU for models measured to agree with "
                             "float32 (BLIP), bfloat16 where the hardware has it, else float32; int8: int8 "
                             "decoder weights, CPU only)")
    add_runtime_argument(parser)


def add_runtime_argument(parser: argparse.ArgumentParser) -> None:
    """--runtime, beside --precision (it sets CAPTIONER_RUNTIME for the run; see the precision guide)."""
    from captioner.models.transformers.onnx_step import RUNTIME_ENV, RUNTIMES

    parser.add_argument("--runtime", dest="model_runtime", choices=RUNTIMES, metavar="RUNTIME",
                        help=f"what runs transformers captioners' encoders and decoder steps: {', '.join(RUNTIMES)} "
                             f"(default: ${RUNTIME_ENV}, else auto: ONNX Runtime where the model computes in "
                             "float32 on the CPU, else PyTorch; onnx computes in float32, or int8 with --precision int8)")


def decoding_request(args):
    """The decoding options the user gave, checked now (before any model loads); DecodingRequest's one rule."""
    from captioner.models.base import DecodingRequest

    greedy, sample = getattr(args, "greedy", False), getattr(args, "sample", False)
    if greedy and sample:
        raise ValueError("--greedy and --sample contradict each other; ask for one of them")
    return DecodingRequest(method="greedy" if greedy else "sample" if sample else None,
                           beam_size=getattr(args, "beam", None), max_length=getattr(args, "max_length", None),
                           alternatives=getattr(args, "alternatives", None), prompt=getattr(args, "prompt", None),
                           temperature=getattr(args, "temperature", None), top_p=getattr(args, "top_p", None),
                           seed=getattr(args, "seed", None), style=getattr(args, "style", None))


def add_tagger_arguments(parser: argparse.ArgumentParser) -> None:
    """--general-threshold, --character-threshold and friends: how a tagger (kind tagger) chooses its tags."""
    group = parser.add_argument_group("tagger options (WD taggers)")
    group.add_argument("--general-threshold", type=float, metavar="P",
                       help="keep a general tag at this probability or above (default 0.35)")
    group.add_argument("--character-threshold", type=float, metavar="P",
                       help="keep a character tag at this probability or above (default 0.85)")
    group.add_argument("--undesired-tags", metavar="TAGS", help="comma-separated tags never to write")
    group.add_argument("--always-first-tags", metavar="TAGS",
                       help="comma-separated tags that lead when found, in this order (e.g. 1girl,1boy)")
    group.add_argument("--keep-underscores", action="store_true",
                       help="write tags as the tag list spells them (long_hair) instead of with spaces (long hair)")


def _tag_names(text: str | None) -> tuple[str, ...]:
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


def add_template_arguments(parser: argparse.ArgumentParser, trigger: bool = False) -> None:
    """--tags-from and --template (and, for the caption command, --trigger): tags and captions together."""
    parser.add_argument("--tags-from", metavar="TAGGER",
                        help="a tagger (folder or short name such as wd-vit-tagger-v3) whose tags go into a "
                             "vision-language model's instruction (in place of {tags} in --prompt, else after it) "
                             "and fill {tags} in --template; the tagger options apply to it")
    parser.add_argument("--template", metavar="TEXT",
                        help="write each caption as TEXT with {caption}, {tags} and {trigger} filled in, e.g. "
                             "'ohwx, {tags}' or '{caption}, {tags}'")
    if trigger:
        parser.add_argument("--trigger", metavar="WORD", default="", help="the trigger word {trigger} stands for")


def apply_wording_arguments(args, captioner, models_dir=None):
    """``captioner`` as the tagger options, --language, --tags-from and --template say (unchanged without them)."""
    from captioner.collections.wording import worded

    return worded(captioner, wording_options(args, models_dir))


def wording_options(args, models_dir=None):
    """The wording options the command line gives (a :class:`~captioner.collections.wording.WordingOptions`)."""
    from captioner.collections.wording import WordingOptions

    tagger = {name: getattr(args, name) for name in ("general_threshold", "character_threshold")
              if getattr(args, name, None) is not None}
    for name in ("undesired_tags", "always_first_tags"):
        if getattr(args, name, None):
            tagger[name] = _tag_names(getattr(args, name))
    if getattr(args, "keep_underscores", False):
        tagger["keep_underscores"] = True
    return WordingOptions(tags_from=getattr(args, "tags_from", None), template=getattr(args, "template", None),
                          trigger=getattr(args, "trigger", "") or "", language=getattr(args, "language", None),
                          tagger=tagger, models_dir=str(models_dir) if models_dir else None)


def add_language_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--language", metavar="CODE",
                        help="write captions in this language (e.g. de): vision-language models are instructed "
                             "in it, other models' English captions go through the configured translator")
