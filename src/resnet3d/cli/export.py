"""`resnet3d export CHECKPOINT -o FILE [--format onnx|torchscript|export]`: a dynamic-batch export checked against
the eager model."""

from __future__ import annotations

import argparse

from resnet3d.cli import model_options
from resnet3d.errors import Resnet3dError

FORMATS = ("onnx", "torchscript", "export")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export", help="export a checkpoint to ONNX, TorchScript or torch.export (.pt2), checked against PyTorch",
        description="Export with a dynamic batch axis: ONNX (dynamo exporter), TorchScript (traced) or a torch.export "
                    "ExportedProgram (.pt2). The input is 'clips' (batch, C, T, H, W) float, normalised like in "
                    "training; the output is the logits. Class names, normalisation and clip geometry are stored in "
                    "the file (ONNX metadata, or the extra file resnet3d.json). The export is run on random clips at "
                    "another batch size and the largest difference to the eager model is printed.")
    p.add_argument("checkpoint", help="model checkpoint")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", help="output file (.onnx, .pt for TorchScript, .pt2 for torch.export)")
    out.add_argument("--onnx", help="output .onnx file (the same as --format onnx -o FILE)")
    p.add_argument("--format", choices=list(FORMATS), help="default: from the output's suffix (.onnx, .pt2, else "
                                                         "torchscript)")
    p.add_argument("--clip-length", type=int, help="frames per clip (default: the checkpoint's)")
    p.add_argument("--input-size", type=int, help="crop size in pixels (default: the checkpoint's)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed absolute logit difference to PyTorch (default: 1e-4)")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with the eager model")
    model_options.add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from resnet3d.inference import export as engine
    from resnet3d.inference.predict import class_names, input_channels
    from resnet3d.models.checkpoint import load_model

    if args.onnx and args.format not in (None, "onnx"):
        raise Resnet3dError(f"--onnx writes ONNX; use -o FILE with --format {args.format}")
    target = args.onnx or args.output
    fmt = "onnx" if args.onnx else (args.format or engine.format_for(target))
    model, meta = load_model(args.checkpoint, **model_options.load_kwargs(args))
    model.eval()
    length, size = args.clip_length or meta.clip_length, args.input_size or meta.input_size
    shape = (input_channels(model), length, size, size)
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    metadata = {"resnet3d_arch": model.arch_name, "class_names": class_names(meta, model.num_classes),
                "normalization": meta.normalization.to_dict(), "clip_length": length, "t_stride": meta.t_stride,
                "input_size": size, "input_layout": "clips (batch, C, T, H, W) float, normalised"}
    path = engine.export_model(model, target, example, fmt, metadata=metadata)
    print(f"exported        {path} ({fmt}; input 'clips' [batch, {', '.join(map(str, shape))}], output logits "
          f"[batch, {model.num_classes}])")
    if args.no_check:
        return 0
    if fmt == "onnx" and not engine.onnxruntime_available():
        print("check           skipped: onnxruntime is not installed (pip install 'resnet3d[onnx]')")
        return 0
    clips = torch.randn(3, *shape, generator=torch.Generator().manual_seed(1))  # another batch size than exported
    diff = engine.max_abs_diff(path, model, clips, fmt)
    print(f"check           {fmt} vs eager PyTorch on 3 random clips: max abs diff {diff:.3g} "
          f"({'ok' if diff <= args.tolerance else 'TOO LARGE'}, tolerance {args.tolerance:g})")
    if diff > args.tolerance:
        raise Resnet3dError(f"{path}: the {fmt} export differs from PyTorch by {diff:.3g} > {args.tolerance:g}")
    return 0
