"""The ``captioner`` command: one entry point, a subcommand per job.

Each subcommand lives in its own module with ``register(subparsers)``; heavy libraries are imported
inside the handlers, so ``captioner --help`` is fast. Every error a user can cause ends as one line on
stderr and a non-zero exit, never a traceback (set ``CAPTIONER_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from captioner import __version__, environment
from captioner.errors import CaptionerError

COMMAND_MODULES = ("data", "features", "train", "evaluate", "caption", "collection", "dataset", "compare", "models",
                   "serve", "keys", "immich", "mcp")

EXIT_ERROR = 1  # a bad input or a failed job
EXIT_INTERRUPTED = 130  # Ctrl-C


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="captioner",
        description="Caption images; prepare data, train, evaluate and serve captioning models.",
    )
    parser.add_argument("--version", action="version", version=f"captioner {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"captioner.cli.{name}").register(subparsers)
    return parser


def fail(message: str, code: int = EXIT_ERROR) -> int:
    print(f"captioner: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    environment.set_library_defaults()  # e.g. TensorFlow's C++ info lines off, unless the user asked for them
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0 if args.command is None else EXIT_ERROR
    if getattr(args, "model_precision", None):
        environment.choose(precision=args.model_precision)
    if getattr(args, "model_runtime", None):
        environment.choose(runtime=args.model_runtime)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return fail("interrupted; run the same command again to resume where it stopped", EXIT_INTERRUPTED)
    except (CaptionerError, ValueError, OSError) as error:
        if environment.current().debug:
            raise
        return fail(str(error) or type(error).__name__)
    except Exception as error:  # a bug: still one line, with the way to see more
        if environment.current().debug:
            raise
        return fail(f"unexpected {type(error).__name__}: {error} (set CAPTIONER_DEBUG=1 for the traceback)")
