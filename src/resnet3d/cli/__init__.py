"""The `resnet3d` command line: one sub-command module per job, each with `add_parser` and `run`."""

from __future__ import annotations

import argparse
import sys
import warnings
from importlib import import_module

from resnet3d import __version__
from resnet3d.errors import Resnet3dError
from resnet3d.io import no_room

# Sub-command name -> module under resnet3d.cli. Each module defines
#   add_parser(subparsers) -> argparse.ArgumentParser   and   run(args) -> int
# and imports heavy dependencies (torch, av, matplotlib) inside `run` only.
# Any resnet3d.errors.Resnet3dError escaping `run` is printed as one line, exit status 2.
COMMANDS = {
    "models": "models",
    "convert-weights": "convert_weights",
    "data": "data",
    "train": "train",
    "eval": "evaluate",
    "predict": "predict",
    "features": "features",
    "export": "export",
    "explain": "explain",
    "report": "report",
    "study": "study",
    "demo": "demo",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(prog="resnet3d", description="Spatiotemporal 3D CNNs for video action recognition.")
    parser.add_argument("--version", action="version", version=f"resnet3d {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        mod = import_module(f"resnet3d.cli.{module}")
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"resnet3d: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `resnet3d` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 1
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return int(args._run(args) or 0)
    except Resnet3dError as e:
        print(f"resnet3d: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # a file the atomic helpers did not write (a codec's, a log's) or read: one line that names it
        full = no_room(e, e.filename or ".")
        if full is None and not e.filename:
            raise
        print(f"resnet3d: error: {full or f'{e.filename}: {e.strerror}'}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("resnet3d: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
