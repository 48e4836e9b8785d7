"""`resnet3d demo`: the one-command tour, from generated videos to a 3D-vs-2D results table."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `demo`."""
    p = subparsers.add_parser(
        "demo", help="generate motion videos, train a 3D ResNet and a 2D baseline, evaluate, predict, report",
        description="Writes the synthetic motion data set (12 classes; every class has a time-reversed twin), "
                    "trains a small 3D ResNet and the same network with 2D (1x3x3) kernels on it, evaluates both at "
                    "video level on the test split, runs predict on a few test videos, writes reports and "
                    "checkpoints, and ends with a comparison table (also in OUT/demo_summary.md and .json). "
                    "About 5 minutes on a 2-core laptop CPU; no GPU, no download.")
    p.add_argument("--out", default="resnet3d-demo", help="output folder (default: ./resnet3d-demo)")
    p.add_argument("--size", choices=["tiny", "default", "large"], default="default",
                   help="data-set size; tiny is a smoke test of a few seconds (default: default)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of data and training; same seed, same numbers (default: 0)")
    p.add_argument("--epochs", type=int, help="training epochs per model (default: the demo recipe's)")
    p.add_argument("--jobs", type=int, help="processes writing videos (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its summary."""
    import sys

    from resnet3d.demo import DemoInterrupted, format_summary, run_demo
    from resnet3d.errors import Resnet3dError

    if args.epochs is not None and args.epochs < 1:
        raise Resnet3dError(f"--epochs must be >= 1, got {args.epochs}")
    try:
        summary = run_demo(args.out, size=args.size, seed=args.seed, epochs=args.epochs, jobs=args.jobs,
                           progress=not args.quiet)
    except DemoInterrupted as e:
        print(f"resnet3d: demo interrupted: {e}", file=sys.stderr)
        return 130
    print()
    print(format_summary(summary), end="")
    return 0
