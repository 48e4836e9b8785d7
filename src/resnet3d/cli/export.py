"""`resnet3d export CHECKPOINT --onnx FILE`: ONNX with a dynamic batch axis, checked against PyTorch."""

from __future__ import annotations

import argparse

from resnet3d.cli import model_options
from resnet3d.errors import Resnet3dError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export", help="export a checkpoint to ONNX (dynamic batch axis), checked with onnxruntime",
        description="Export to ONNX with the dynamo exporter. The input is 'clips' (batch, C, T, H, W) float, "
                    "normalised like in training; the output is 'logits'. Class names, normalisation and clip "
                    "geometry are stored in the model's metadata. With onnxruntime installed the export is run on "
                    "random clips and the largest difference to PyTorch is printed.")
    p.add_argument("checkpoint", help="model checkpoint")
    p.add_argument("--onnx", required=True, help="output .onnx file")
    p.add_argument("--clip-length", type=int, help="frames per clip (default: the checkpoint's)")
    p.add_argument("--input-size", type=int, help="crop size in pixels (default: the checkpoint's)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed absolute logit difference to PyTorch (default: 1e-4)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    model_options.add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from resnet3d.engine import export as engine
    from resnet3d.engine.predict import class_names, input_channels
    from resnet3d.models.checkpoint import load_model

    model, meta = load_model(args.checkpoint, **model_options.load_kwargs(args))
    model.eval()
    length, size = args.clip_length or meta.clip_length, args.input_size or meta.input_size
    shape = (input_channels(model), length, size, size)
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    metadata = {"resnet3d_arch": model.arch_name, "class_names": class_names(meta, model.num_classes),
                "normalization": meta.normalization.to_dict(), "clip_length": length, "t_stride": meta.t_stride,
                "input_size": size, "input_layout": "clips (batch, C, T, H, W) float, normalised"}
    path = engine.export_onnx(model, args.onnx, example, metadata=metadata)
    print(f"exported        {path} (input 'clips' [batch, {', '.join(map(str, shape))}], output 'logits' "
          f"[batch, {model.num_classes}])")
    if args.no_check:
        return 0
    if not engine.onnxruntime_available():
        print("check           skipped: onnxruntime is not installed (pip install 'resnet3d[onnx]')")
        return 0
    clips = torch.randn(3, *shape, generator=torch.Generator().manual_seed(1))  # another batch size than exported
    diff = engine.max_abs_diff(path, model, clips)
    print(f"check           onnxruntime vs PyTorch on 3 random clips: max abs diff {diff:.3g} "
          f"({'ok' if diff <= args.tolerance else 'TOO LARGE'}, tolerance {args.tolerance:g})")
    if diff > args.tolerance:
        raise Resnet3dError(f"{path}: ONNX output differs from PyTorch by {diff:.3g} > {args.tolerance:g}")
    return 0
