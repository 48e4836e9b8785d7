"""`resnet3d features CHECKPOINT VIDEO...|--data INDEX`: pooled features per window and per video, resumable."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from resnet3d.cli import model_options
from resnet3d.data.index import SUBSETS
from resnet3d.cli.predict import add_inference_args


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "features", help="extract pooled features per window and per video (.npy or HDF5, resumable)",
        description="Globally pooled features (before the classifier: 512 for R18/R34, 2048 for R50 and deeper) "
                    "for every sliding window and their mean per video. Videos already written are skipped, so an "
                    "interrupted run continues where it stopped.")
    p.add_argument("checkpoint", help="model checkpoint")
    p.add_argument("videos", nargs="*",
                   help="video files, JPEG frame folders or folders of videos (every video under them)")
    p.add_argument("--data", help="annotation or index file instead of (or besides) video files")
    p.add_argument("--root", help="folder the annotation's relative video paths are resolved against")
    p.add_argument("--subset", choices=list(SUBSETS), help="only this subset of --data")
    p.add_argument("-o", "--out", required=True,
                   help="output: a folder (one sub-folder of .npy files per video) or a .h5/.hdf5 file")
    p.add_argument("--fps", type=float, help="frame rate for frame folders, which do not store one")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_inference_args(p, stride_help="frames between window starts (default: the clip span, no overlap)")
    return p


def run(args: argparse.Namespace) -> int:
    from resnet3d.data.locate import video_inputs
    from resnet3d.inference import banner
    from resnet3d.inference import features as engine
    from resnet3d.inference.predict import InferenceSetup

    items = engine.video_items(video_inputs(args.videos), args.fps, data=args.data, root=args.root, subset=args.subset)
    setup = InferenceSetup.from_checkpoint(
        args.checkpoint, mode="features", device=args.device, precision=args.precision, compile=args.compile or "auto",
        clip_length=args.clip_length, t_stride=args.t_stride, input_size=args.input_size, stride=args.stride,
        model_options=model_options.load_kwargs(args))
    if not args.quiet:
        print(banner.format_banner("resnet3d features", banner.setup_facts(setup, args.checkpoint, args.precision,
                                                                           {"videos": len(items)})), file=sys.stderr)
    out = Path(args.out)
    start = time.perf_counter()
    result = engine.extract_to(out, setup, items, batch_size=args.batch_size, progress=not args.quiet)
    seconds = time.perf_counter() - start
    dim = getattr(setup.network, "num_features", "?")
    layout = "HDF5" if engine.is_hdf5(out) else ".npy folders"
    print(f"features        {dim} per window and per video -> {out} ({layout})\n"
          f"videos          {len(result.written)} written, {len(result.skipped)} already done, "
          f"{len(result.failed)} failed, {seconds:.1f} s", file=sys.stderr)
    for line in result.failed:
        print(f"resnet3d: failed {line}", file=sys.stderr)
    return 1 if result.failed else 0
