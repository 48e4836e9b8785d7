"""`resnet3d models`: every registered model with parameters, GMACs/GFLOPs per clip and feature dimension."""

from __future__ import annotations

import argparse
import sys
import time


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "models",
        help="list the model zoo with parameters and cost per clip",
        description="Every registered model with its parameter count, multiply-adds (GMACs) and FLOPs (GFLOPs = "
        "2 x GMACs, torch.utils.flop_counter's convention) for one clip, and its feature dimension. Counted on the "
        "meta device: nothing is computed.",
    )
    p.add_argument("pattern", nargs="?", help="shell pattern on the names, e.g. 'resnet*' or '*2p1d*'")
    p.add_argument("--frames", type=int, default=16, help="clip length in frames (default: 16)")
    p.add_argument("--size", type=int, default=112, help="crop height and width in pixels (default: 112)")
    p.add_argument("--num-classes", type=int, default=400, help="classes of the head (default: 400)")
    return p


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from resnet3d.errors import Resnet3dError
    from resnet3d.models import list_models
    from resnet3d.models.complexity import model_complexity

    names = list_models(args.pattern)
    if not names:
        raise Resnet3dError(f"no model matches {args.pattern!r}")
    start = time.perf_counter()
    rows = []
    for name in tqdm(names, desc="counting", unit="model", leave=False, file=sys.stderr):
        c = model_complexity(name, args.num_classes, args.frames, args.size)
        rows.append((name, f"{c.params:,}", f"{c.macs / 1e9:.2f}", f"{c.flops / 1e9:.2f}", str(c.num_features)))
    header = ("model", "params", "GMACs", "GFLOPs", "features")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for i, row in enumerate([header, *rows]):
        print("  ".join(cell.ljust(w) if j == 0 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(
        f"\n{len(rows)} models, {args.num_classes} classes; cost of one 1x3x{args.frames}x{args.size}x{args.size} clip; "
        f"GFLOPs = 2 x GMACs (torch flop counter: 2 FLOPs per multiply-add); counted in {time.perf_counter() - start:.1f} s"
    )
    return 0
