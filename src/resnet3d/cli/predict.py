"""`resnet3d predict CHECKPOINT VIDEO...`: sliding-window predictions on any video files, no annotation file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resnet3d.cli import model_options
from resnet3d.errors import Resnet3dError
from resnet3d.inference.precisions import COMPILE_CHOICES, PRECISIONS


def add_clip_args(p: argparse.ArgumentParser, *, stride_help: str) -> argparse._ArgumentGroup:
    """The windowing overrides (clip length, temporal stride, crop size, window stride); returns their group."""
    g = p.add_argument_group("clips")
    g.add_argument("--clip-length", type=int, help="frames per clip (default: the checkpoint's)")
    g.add_argument("--t-stride", type=int, help="temporal stride between a clip's frames (default: the checkpoint's)")
    g.add_argument("--input-size", type=int, help="crop size in pixels (default: the checkpoint's)")
    g.add_argument("--stride", type=int, help=stride_help)
    return g


def add_inference_args(p: argparse.ArgumentParser, *, stride_help: str) -> None:
    """Options shared by predict, features and eval: windowing overrides, batching, precision, device."""
    add_clip_args(p, stride_help=stride_help)
    g = p.add_argument_group("speed")
    g.add_argument("--batch-size", type=int, default=8, help="clips per forward pass (default: 8; keep >= 2 on CPU)")
    g.add_argument("--precision", default="auto", choices=list(PRECISIONS),
                   help="auto: bf16 on AMX / AVX-512 BF16 CPUs and bf16 GPUs, fp32 on other CPUs, fp16 on "
                        "older GPUs; the banner says why (default: auto)")
    g.add_argument("--compile", nargs="?", const="on", default=None, choices=COMPILE_CHOICES,
                   help="torch.compile with inductor freezing, a few seconds once per input shape; auto (the "
                        "default) compiles when the clips left would take over 2 minutes eagerly (a live input "
                        "stays eager)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available, else cpu)")
    model_options.add_arguments(p)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict", help="classify video files with sliding windows (no annotation file needed)",
        description="Predict actions in video files: per-window top-k with start/end times, and a whole-video top-k "
                    "(softmax averaged over windows). Videos shorter than one clip are loop-padded; long videos are "
                    "streamed; a broken file is reported in one line and the others still run.")
    p.add_argument("checkpoint", help="model checkpoint (resnet3d, the original's .pth, or a state dict)")
    p.add_argument("videos", nargs="+", help="video files, JPEG frame folders, folders of videos (every video under "
                                             "them), or one live SOURCE (see below)")
    p.add_argument("--labels", help="text file with one class name per line (default: the checkpoint's names)")
    p.add_argument("--top-k", type=int, default=5, help="classes listed per window and per video (default: 5)")
    p.add_argument("--format", choices=["json", "csv"], help="output format (default: from --output's suffix, else json)")
    p.add_argument("-o", "--output", help="output file (default: standard output)")
    p.add_argument("--fps", type=float, help="frame rate for frame folders, which do not store one")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    g = p.add_argument_group("live input (one SOURCE: '-' for standard input, an rtsp/http/udp/tcp URL, a named "
                             "pipe, /dev/video0)")
    g.add_argument("--timeout", type=float, default=10.0,
                   help="seconds without a frame after which a live input is stalled and closed (default: 10)")
    g.add_argument("--duration", type=float, help="stop a live input after this many seconds of stream time")
    g.add_argument("--frames", type=int, help="stop a live input after this many frames")
    add_inference_args(p, stride_help="frames between window starts (default: the clip span, no overlap)")
    return p


def run(args: argparse.Namespace) -> int:
    from resnet3d.data.locate import video_inputs
    from resnet3d.data.stream import is_stream
    from resnet3d.inference import banner
    from resnet3d.inference import predict as engine
    from resnet3d.io import atomic_write_text

    args.videos = video_inputs(args.videos)

    setup = engine.InferenceSetup.from_checkpoint(
        args.checkpoint, mode="probs", device=args.device, precision=args.precision, compile=args.compile or "auto",
        clip_length=args.clip_length, t_stride=args.t_stride, input_size=args.input_size, stride=args.stride,
        labels=args.labels, model_options=model_options.load_kwargs(args))
    if args.top_k < 1:
        raise Resnet3dError(f"--top-k must be >= 1, got {args.top_k}")
    if not args.quiet:
        print(banner.format_banner("resnet3d predict", banner.setup_facts(setup, args.checkpoint, args.precision,
                                                                          {"files": len(args.videos)})), file=sys.stderr)
    fmt = args.format or ("csv" if args.output and Path(args.output).suffix.lower() == ".csv" else "json")
    live = [v for v in args.videos if is_stream(v)]
    if live:
        if len(args.videos) > 1:
            raise Resnet3dError(f"a live input ({live[0]}) must be the only input of predict")
        if fmt == "csv":
            raise Resnet3dError("a live input is written as JSON lines, not CSV")
        from resnet3d.cli.predict_stream import run_stream

        return run_stream(args, setup, live[0])
    records, errors, cost = engine.predict_videos(setup, args.videos, batch_size=args.batch_size, fps=args.fps,
                                                  top_k=args.top_k, progress=not args.quiet)
    text = engine.predictions_text(args.checkpoint, setup, records, errors, cost, fmt)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    if not args.quiet:
        for r in records:
            best = r["top"][0]
            print(f"{r['video']}: {best['label']} ({best['score']:.3f}), {len(r['windows'])} windows", file=sys.stderr)
        print(engine.format_cost(cost) + (f"; {len(errors)} file(s) failed" if errors else ""), file=sys.stderr)
    return 1 if errors else 0
