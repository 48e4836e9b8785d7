"""`resnet3d eval CHECKPOINT --data INDEX`: multi-view testing with clip- and video-level metrics and the protocol;
`resnet3d eval RGB FLOW --data INDEX --flow-data FLOW_INDEX`: two-stream evaluation with late fusion."""

from __future__ import annotations

import argparse
from pathlib import Path

from resnet3d.cli import model_options
from resnet3d.data.index import SUBSETS
from resnet3d.cli.predict import add_inference_args


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval", help="evaluate a checkpoint: clip and video accuracy, per-class accuracy, confusion matrix",
        description="Multi-view testing: N clips (evenly spaced, or all sliding windows) x 1 or 3 crops per video. "
                    "Video scores are the softmax averaged over a video's views. Writes results.json (numbers, "
                    "protocol, hash of the videos evaluated, cost), per_class.csv, confusion.csv/.png, "
                    "predictions.csv and the original's results format (results_original.json). With two "
                    "checkpoints (RGB, then optical flow) each stream is evaluated into OUT/rgb and OUT/flow and "
                    "OUT/results.json holds the fusion: (1 - w) x RGB + w x flow video scores.")
    p.add_argument("checkpoint", nargs="+", help="model checkpoint; or an RGB and a flow checkpoint (two-stream)")
    p.add_argument("--data", required=True, help="annotation or index file (any format resnet3d reads)")
    p.add_argument("--root", help="folder the annotation's relative video paths are resolved against")
    p.add_argument("--subset", default="validation", choices=list(SUBSETS),
                   help="which subset to evaluate (default: validation)")
    p.add_argument("--clips", default="10", help="clips per video, evenly spaced, or 'all' for sliding windows "
                                                 "every --stride frames (default: 10)")
    p.add_argument("--crops", type=int, default=1, choices=[1, 3], help="spatial crops per clip (default: 1)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (default: 2)")
    p.add_argument("--top-k", type=int, default=5, help="classes per video in results_original.json (default: 5)")
    p.add_argument("-o", "--out", help="output folder (default: RUN/eval for RUN/checkpoints/X.pth, else eval-X)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("two-stream")
    g.add_argument("--flow-data", help="index of the flow videos (e.g. OUT/index.json of `data prepare --to flow`; "
                                       "default: --data), matched to --data by video id")
    g.add_argument("--flow-root", help="folder the flow index's relative paths are resolved against")
    g.add_argument("--fusion-weight", type=float, default=0.5, help="flow stream's share w in [0, 1] (default: 0.5)")
    add_inference_args(p, stride_help="with --clips all: frames between window starts (default: the clip span)")
    return p


def run(args: argparse.Namespace) -> int:
    from resnet3d.evaluation.run import EvalRequest, parse_clips, run_eval

    request = EvalRequest(subset=args.subset, clips=parse_clips(args.clips), crops=args.crops, workers=args.workers,
                          top_k=args.top_k, quiet=args.quiet, batch_size=args.batch_size, device=args.device,
                          precision=args.precision, compile=args.compile or "auto", clip_length=args.clip_length,
                          t_stride=args.t_stride, input_size=args.input_size, stride=args.stride,
                          model_options=model_options.load_kwargs(args))
    out = Path(args.out) if args.out else _default_out(Path(args.checkpoint[0]))
    run_eval(args.checkpoint, args.data, out, request, root=args.root, flow_data=args.flow_data,
             flow_root=args.flow_root, fusion_weight=args.fusion_weight)
    return 0


def _default_out(checkpoint: Path) -> Path:
    if checkpoint.parent.name == "checkpoints":
        return checkpoint.parent.parent / "eval"
    return Path(f"eval-{checkpoint.stem}")
