"""`resnet3d data index|doctor|prepare|synth`: build an index from any annotation format, check, convert videos."""

from __future__ import annotations

import argparse

from resnet3d.data.index import SUBSETS
from importlib import import_module
from pathlib import Path

from resnet3d.errors import Resnet3dError

FORMATS = ("hara-json", "list", "folders", "kinetics-csv", "ucf101", "hmdb51", "activitynet", "mit", "resnet3d")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `data` and its sub-commands."""
    p = subparsers.add_parser("data", help="video data: build an index, check videos, prepare fast copies",
                              description="Video data tools. Any annotation source (the original's JSON, "
                                          "'path label' lists, class folders, Kinetics CSVs, UCF-101/HMDB-51 "
                                          "splits, ActivityNet, Moments in Time) becomes one index.")
    sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND")

    q = sub.add_parser("index", help="read an annotation source and write our index or the original's JSON",
                       description="Read SOURCE and write an index. --out ending in .hara.json (or --hara) writes "
                                   "the original's annotation JSON instead of our index.")
    q.add_argument("source", help="annotation file or folder")
    _add_source_args(q)
    q.add_argument("--out", required=True, help="output file (.json)")
    q.add_argument("--hara", action="store_true", help="write the original's annotation JSON")
    q.set_defaults(_data_run=run_index)

    q = sub.add_parser("doctor", help="decode every video: frame counts, codecs, keyframes, broken files",
                       description="Decode every video of INDEX_OR_ROOT in parallel. Prints a summary, writes a "
                                   "JSON report and an index without the broken files (real frame counts filled in).")
    q.add_argument("source", metavar="INDEX_OR_ROOT", help="index, annotation file or video folder")
    _add_source_args(q)
    q.add_argument("--report", help="JSON report (default: doctor_report.json)")
    q.add_argument("--out", help="cleaned index (default: <report stem>_clean_index.json)")
    q.add_argument("--jobs", type=int, help="processes (default: all cores)")
    q.add_argument("--quick", action="store_true", help="index each file without decoding every frame")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(_data_run=run_doctor)

    q = sub.add_parser("prepare", help="re-encode small with short keyframe intervals, extract JPEG / HDF5, or flow",
                       description="Convert every video of INDEX_OR_ROOT into OUT_DIR/<label>/<id>: H.264 MP4 at "
                                   "--short-side with a keyframe every --gop frames (the cheapest loading "
                                   "speed-up), JPEG frame folders, HDF5 files, or optical flow (Farneback, clipped "
                                   "to +-FLOW_BOUND px, as the original's HDF5 video_u/video_v). Parallel and "
                                   "resumable (finished files are skipped); writes OUT_DIR/index.json.")
    q.add_argument("source", metavar="INDEX_OR_ROOT", help="index, annotation file or video folder")
    _add_source_args(q)
    q.add_argument("--out-dir", required=True, help="output folder")
    q.add_argument("--to", dest="mode", choices=["video", "frames", "hdf5", "flow"], default="video",
                   help="output kind (default: video)")
    q.add_argument("--short-side", type=int, default=128, help="short side in pixels, 0 = keep (default: 128)")
    q.add_argument("--gop", type=int, default=16, help="keyframe interval for --to video (default: 16)")
    q.add_argument("--quality", type=int, default=90, help="JPEG quality for frames/hdf5/flow (default: 90)")
    q.add_argument("--flow-bound", type=float, default=20.0, help="--to flow: clip at +-this many px (default: 20)")
    q.add_argument("--jobs", type=int, help="processes (default: all cores)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(_data_run=run_prepare)

    synth = import_module("resnet3d.cli.data_synth")
    synth.add_parser(sub).set_defaults(_data_run=synth.run)
    p.set_defaults(_data_parser=p)
    return p


def _add_source_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("--format", choices=FORMATS, help="annotation format (default: detected)")
    q.add_argument("--videos", metavar="ROOT", help="folder holding the videos (default: next to the annotation)")
    q.add_argument("--split", type=int, default=1, help="UCF-101 / HMDB-51 split number (default: 1)")
    q.add_argument("--subset", default="training", choices=list(SUBSETS),
                   help="subset of the videos of a list file (default: training)")
    q.add_argument("--classes", metavar="FILE", help="class names, one per line (list files with integer labels)")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen data sub-command."""
    if not getattr(args, "_data_run", None):
        args._data_parser.print_help()
        return 1
    return int(args._data_run(args) or 0)


def _read(args: argparse.Namespace):
    from resnet3d.data.annotations import read_index

    classes = None
    if args.classes:
        try:
            classes = [s.strip() for s in Path(args.classes).read_text(encoding="utf-8").splitlines() if s.strip()]
        except FileNotFoundError:
            raise Resnet3dError(f"{args.classes}: class list not found") from None
    return read_index(args.source, args.format, videos=args.videos, split=args.split, subset=args.subset,
                      classes=classes)


def _describe(index) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in index.subset_counts().items() if n)
    return f"{len(index)} videos ({counts or 'none'}), {len(index.classes)} classes"


def run_index(args: argparse.Namespace) -> int:
    """`resnet3d data index`."""
    from resnet3d.data.annotations import write_hara_json

    index = _read(args)
    if args.hara or args.out.endswith(".hara.json"):
        write_hara_json(index, args.out)
        kind = "the original's annotation JSON"
    else:
        index.save(args.out)
        kind = "resnet3d index"
    print(f"{_describe(index)} -> {args.out} ({kind})")
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    """`resnet3d data doctor`."""
    from resnet3d.data.doctor import cleaned_index, diagnose, is_truncated, report
    from resnet3d.io import atomic_write_json

    index = _read(args)
    checks = diagnose(index, args.jobs, full=not args.quick, progress=not args.quiet)
    rep = report(checks)
    report_path = Path(args.report or "doctor_report.json")
    out = Path(args.out or report_path.with_name(report_path.stem + "_clean_index.json"))
    atomic_write_json(report_path, rep)
    clean = cleaned_index(index, checks)
    s = rep["summary"]
    print(f"{s['ok'] - s['truncated']} of {s['videos']} files fine, {s['truncated']} truncated, {s['broken']} broken")
    for c in checks.values():
        if not c.ok:
            print(f"  broken: {c.path}: {c.reason}")
        elif is_truncated(c):
            print(f"  truncated: {c.path}: the header says {c.header_frames} frames, {c.num_frames} decode")
    if s["ok"]:
        print(f"  codecs {s['codecs']}; short side {s['short_side']}; frames {s['frames']}; "
              f"median keyframe interval {s['keyframe_interval_median']}")
    for tip in rep["advice"]:
        print(f"  advice: {tip}")
    if len(clean):
        clean.save(out)
        print(f"report -> {report_path}; cleaned index ({_describe(clean)}) -> {out}")
    else:
        print(f"report -> {report_path}; no usable video, so no cleaned index")
    return 0 if s["broken"] == 0 else 1


def run_prepare(args: argparse.Namespace) -> int:
    """`resnet3d data prepare`."""
    from resnet3d.data.prepare import PrepareOptions, prepare

    index = _read(args)
    opts = PrepareOptions(mode=args.mode, short_side=args.short_side or None, gop=args.gop, quality=args.quality,
                          flow_bound=args.flow_bound)
    new_index, counts = prepare(index, args.out_dir, opts, args.jobs, progress=not args.quiet)
    out = Path(args.out_dir) / "index.json"
    if len(new_index):
        new_index.save(out)
    for line in counts["failures"]:
        print(f"  failed: {line}")
    print(f"{counts['converted']} converted, {counts['already_done']} already done, {counts['failed']} failed"
          + (f"; index -> {out}" if len(new_index) else ""))
    return 0 if counts["failed"] == 0 else 1
