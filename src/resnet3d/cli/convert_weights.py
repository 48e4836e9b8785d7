"""`resnet3d convert-weights IN OUT`: any supported checkpoint (original 2020, CVPR-2018, bare state dict) → ours."""

from __future__ import annotations

import argparse
from pathlib import Path

from resnet3d.cli import model_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "convert-weights",
        help="convert an original 3D-ResNets checkpoint (or a bare state dict) to the resnet3d format",
        description="Reads the original's 2020 files (r3d50_K_200ep.pth …), the CVPR-2018 files (module. prefix, "
        "old DenseNet names, 64-channel WRN/ResNeXt stem) and bare state dicts, infers the architecture from the "
        "tensors and writes a resnet3d checkpoint with metadata (architecture, normalisation, classes).",
    )
    p.add_argument("input", type=Path, help="checkpoint to convert")
    p.add_argument("output", type=Path, help="resnet3d checkpoint to write")
    p.add_argument("--class-names", type=Path, help="text file with one class name per line, in output order")
    p.add_argument("--normalization", help="override the inferred input normalisation preset "
                   "(kinetics, activitynet, 0.5, hara2018)")
    model_options.add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from resnet3d.errors import Resnet3dError
    from resnet3d.models.checkpoint import load_model, save_model
    from resnet3d.models.complexity import count_params
    from resnet3d.normalization import get_normalization

    model, meta = load_model(args.input, **model_options.load_kwargs(args))
    changes = {}
    if args.class_names:
        from resnet3d.data.index import read_class_list

        changes["class_names"] = read_class_list(args.class_names, meta.num_classes)
    if args.normalization:
        try:
            norm = get_normalization(args.normalization)
        except ValueError as e:
            raise Resnet3dError(str(e)) from None
        changes["normalization"] = norm.channels(meta.options.get("n_input_channels", 3))
    meta = replace(meta, **changes)
    save_model(args.output, model, meta)
    options = ", ".join(f"{k}={v}" for k, v in meta.options.items())
    n = meta.normalization
    print(f"{args.input} ({meta.source}) -> {args.output}")
    print(f"  {meta.arch} ({options}), {meta.num_classes} classes, {count_params(model):,} params")
    print(f"  input: {n.describe()}")
    return 0
