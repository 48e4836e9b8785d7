"""`resnet3d features CHECKPOINT VIDEO...|--data INDEX`: pooled features per window and per video, resumable."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from resnet3d.cli import model_options
from resnet3d.data.index import SUBSETS
from resnet3d.cli.predict import add_inference_args
from resnet3d.errors import Resnet3dError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "features", help="extract pooled features per window and per video (.npy or HDF5, resumable)",
        description="Globally pooled features (before the classifier: 512 for R18/R34, 2048 for R50 and deeper) "
                    "for every sliding window and their mean per video. Videos already written are skipped, so an "
                    "interrupted run continues where it stopped.")
    p.add_argument("checkpoint", help="model checkpoint")
    p.add_argument("videos", nargs="*", help="video files (or JPEG frame folders)")
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
    from resnet3d.data.video import guess_kind
    from resnet3d.inference import banner
    from resnet3d.inference import features as engine
    from resnet3d.inference.predict import InferenceSetup

    items = [engine.VideoItem(key, str(path), guess_kind(path), args.fps)
             for key, path in zip(engine.unique_keys(args.videos), args.videos)]
    if args.data:
        from resnet3d.data.annotations import read_index

        index = read_index(args.data, videos=args.root, subset=args.subset or "training")
        if args.subset:
            index = index.subset(args.subset)
        items += [engine.VideoItem(r.video_id, r.path, r.kind, r.fps) for r in index]
    if not items:
        raise Resnet3dError("no videos: give video files and/or --data INDEX")
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise Resnet3dError(f"two videos would be written under the same name {dup!r}")

    setup = InferenceSetup.from_checkpoint(
        args.checkpoint, mode="features", device=args.device, precision=args.precision, compile=args.compile,
        clip_length=args.clip_length, t_stride=args.t_stride, input_size=args.input_size, stride=args.stride,
        model_options=model_options.load_kwargs(args))
    if not args.quiet:
        print(banner.format_banner("resnet3d features", banner.setup_facts(setup, args.checkpoint, args.precision,
                                                                           {"videos": len(items)})), file=sys.stderr)
    out = Path(args.out)
    hdf5 = out.suffix.lower() in (".h5", ".hdf5")
    writer = engine.HDF5Writer(out) if hdf5 else engine.NpyWriter(out)
    start = time.perf_counter()
    try:
        result = engine.extract_features(setup.model, items, setup.windowing, setup.transform, writer,
                                         batch_size=args.batch_size, progress=not args.quiet)
    finally:
        writer.close()
    seconds = time.perf_counter() - start
    dim = getattr(setup.network, "num_features", "?")
    print(f"features        {dim} per window and per video -> {out} ({'HDF5' if hdf5 else '.npy folders'})\n"
          f"videos          {len(result.written)} written, {len(result.skipped)} already done, "
          f"{len(result.failed)} failed, {seconds:.1f} s", file=sys.stderr)
    for line in result.failed:
        print(f"resnet3d: failed {line}", file=sys.stderr)
    return 1 if result.failed else 0
