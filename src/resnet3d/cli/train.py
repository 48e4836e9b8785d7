"""`resnet3d train`: train, fine-tune or resume a model from a YAML config plus key=value overrides."""

from __future__ import annotations

import argparse

from resnet3d.cli import model_options
from resnet3d.errors import Resnet3dError


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `train` sub-command."""
    p = subparsers.add_parser(
        "train", help="train or fine-tune a model (one CPU, or many GPUs under torchrun)",
        description="Train from a YAML config (a file or a shipped preset: hara2018-kinetics, hara2020-kinetics, "
                    "finetune) with section.key=value overrides, e.g.  resnet3d train --config finetune "
                    "data.index=ucf101_01.json model.pretrained=r3d18_K_200ep.pth optim.lr=0.01. "
                    "Distributed: torchrun --nproc_per_node 4 -m resnet3d train ... (see docs/training.md).")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. optim.lr=0.01")
    p.add_argument("--config", "-c", metavar="NAME|PATH", help="YAML config file or shipped preset name")
    p.add_argument("--resume", metavar="RUN|CKPT",
                   help="continue a run (its folder or a checkpoint) with its stored config; overrides still apply")
    p.add_argument("--pretrained", metavar="CKPT", help="start from these weights (same as model.pretrained=CKPT)")
    p.add_argument("--out", metavar="DIR", help="run folder (same as run.out_dir=DIR)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    model_options.add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Resolve the config, train, and return 0 (finished) or 130/143 style status when interrupted."""
    from resnet3d.training.config import load_config

    overrides = list(args.overrides)
    if args.pretrained:
        overrides.append(f"model.pretrained={args.pretrained}")
    if args.out:
        overrides.append(f"run.out_dir={args.out}")
    if args.opts:
        overrides.append(f"model.pretrained_opts={args.opts}")
    if args.resume:
        if args.config:
            raise Resnet3dError("--resume keeps the run's stored config; pass changes as key=value instead of --config")
        from resnet3d.training.loop import resume_config

        config = resume_config(args.resume, overrides)
    else:
        config = load_config(args.config, overrides)
    config.model.options.update(model_options.parse(args.model_option))
    if args.print_config:
        print(config.to_yaml(), end="")
        return 0
    from resnet3d.training.loop import train

    summary = train(config)
    return 0 if summary.status == "finished" else 130
