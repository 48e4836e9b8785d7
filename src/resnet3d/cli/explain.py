"""`resnet3d explain CHECKPOINT VIDEO...`: 3D Grad-CAM heat maps over predict's windows, as MP4, PNG and JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from resnet3d.cli import model_options
from resnet3d.cli.predict import add_clip_args
from resnet3d.errors import Resnet3dError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "explain", help="where the model looks: 3D Grad-CAM heat maps over predict's windows (MP4 + PNG + JSON)",
        description="Explain predictions with 3D Grad-CAM (or Grad-CAM++) in fp32 with gradients. For every video "
                    "it writes OUT/NAME.mp4 (each window's input clip with its heat map blended in) and OUT/NAME.png "
                    "(evenly spaced frames, their heat maps and the window's top-k). The windows are predict's.")
    p.add_argument("checkpoint", help="model checkpoint (resnet3d, the original's .pth, or a state dict)")
    p.add_argument("videos", nargs="+",
                   help="video files, JPEG frame folders or folders of videos (every video under them)")
    p.add_argument("-o", "--output-dir", default="explain", help="folder for the MP4 and PNG files (default: explain)")
    p.add_argument("--target", help="class to explain, by name or index (default: each window's predicted class)")
    p.add_argument("--layer", help="module whose output is explained, e.g. layer3 or features.denseblock3 "
                                   "(default: the last stage of convolutional blocks)")
    p.add_argument("--method", choices=["gradcam", "gradcam++"], default="gradcam", help="default: gradcam")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write per-window scores and heat-map statistics as JSON to FILE (no FILE: standard output)")
    p.add_argument("--top-k", type=int, default=3, help="classes listed per window (default: 3)")
    p.add_argument("--strip-frames", type=int, default=8, help="frames in the PNG strip (default: 8)")
    p.add_argument("--labels", help="text file with one class name per line (default: the checkpoint's names)")
    p.add_argument("--fps", type=float, help="frame rate for frame folders, which do not store one")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary lines")
    g = add_clip_args(p, stride_help="frames between window starts (default: the clip span, no overlap)")
    g.add_argument("--batch-size", type=int, default=4, help="clips per forward/backward pass (default: 4)")
    g.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available, else cpu)")
    model_options.add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from resnet3d.data.locate import video_inputs
    from resnet3d.data.stream import is_stream
    from resnet3d.inference.explain import GradCam, resolve_target
    from resnet3d.inference.explain_output import explain_videos
    from resnet3d.inference.fast_path import default_device
    from resnet3d.inference.predict import load_protocol
    from resnet3d.io import atomic_write_text

    if args.top_k < 1 or args.strip_frames < 1 or args.batch_size < 1:
        raise Resnet3dError("--top-k, --strip-frames and --batch-size must be >= 1")
    args.videos = video_inputs(args.videos)
    live = [v for v in args.videos if is_stream(v)]
    if live:
        raise Resnet3dError(f"{live[0]}: explain reads video files; live inputs are for predict")
    network, _, windowing, transform, names = load_protocol(
        args.checkpoint, clip_length=args.clip_length, t_stride=args.t_stride, input_size=args.input_size,
        stride=args.stride, labels=args.labels, model_options=model_options.load_kwargs(args))
    device = default_device(args.device)
    cam = GradCam(network, args.layer, args.method, device)
    target = resolve_target(args.target, names)
    records, errors = explain_videos(cam, args.videos, windowing, transform, names, Path(args.output_dir),
                                     target=target, batch_size=args.batch_size, fps=args.fps, top_k=args.top_k,
                                     strip_frames=args.strip_frames, progress=not args.quiet)
    if args.json:
        text = json.dumps({"checkpoint": str(args.checkpoint), "layer": cam.layer, "method": cam.method,
                           "target": None if target is None else names[target], "videos": records,
                           "errors": errors}, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            atomic_write_text(args.json, text)
    return 1 if errors else 0
