"""The ``kgclip`` command. Each command group lives in its own module under ``kgclip/cli/`` and exposes
``register(subparsers)``; every command is a thin call into the library, so ``main(argv)`` is testable.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence

from kgclip.errors import KgclipError

__all__ = ["main", "build_parser"]

# Command-group modules, in help order. A module that does not exist (yet) is simply not offered.
_GROUPS = ("demo", "ask", "report", "search", "cases", "vqa", "serve", "ontology", "kg", "link", "train", "encode",
           "index", "eval")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kgclip",
        description="Knowledge-graph-augmented image-text retrieval and VQA for medical imaging.",
    )
    from kgclip import __version__

    parser.add_argument("--version", action="version", version=f"kgclip {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in _GROUPS:
        name = f"kgclip.cli.{group}_cmd"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 kgclip error, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KgclipError as exc:
        print(f"kgclip: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kgclip: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`kgclip ontology search ... | head`): not an error. Point stdout at devnull so the
        # interpreter's final flush does not raise a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
