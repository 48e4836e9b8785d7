"""`--model-option KEY=VALUE` and `--opts FILE` for every command that loads a checkpoint.

They say what an original checkpoint's tensors cannot (`no_max_pool`, `conv1_t_stride`), or point at the original's
opts.json; both end up as keyword arguments of `load_model`.
"""

from __future__ import annotations

import argparse
from typing import Any

from resnet3d.errors import Resnet3dError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register --model-option (repeatable) and --opts."""
    g = p.add_argument_group("checkpoint options")
    g.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a model option the checkpoint cannot say, e.g. no_max_pool=true or conv1_t_stride=2 "
                        "(repeatable; options that change tensor shapes must match the file)")
    g.add_argument("--opts", metavar="FILE", help="the original's opts.json for the checkpoint (default: an "
                                                  "opts.json beside an original checkpoint)")


def parse(items: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings as a dict, values read as YAML (true, 2, 0.5, B)."""
    import yaml

    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise Resnet3dError(f"--model-option {item!r}: expected KEY=VALUE, e.g. no_max_pool=true")
        try:
            options[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            options[key.strip()] = text
    return options


def load_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The `load_model` keyword arguments the command line asked for."""
    return {**parse(args.model_option), **({"opts": args.opts} if args.opts else {})}
