"""`resnet3d data synth OUT`: write the built-in synthetic motion data set (real H.264 videos plus both indexes)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `synth` under `resnet3d data`."""
    from resnet3d.data.synth import SIZES

    sizes = ", ".join(f"{s.name}: {sum(s.per_class)} videos per class, {s.num_frames[0]}-{s.num_frames[1]} frames"
                      for s in SIZES.values())
    p = subparsers.add_parser(
        "synth", help="write the built-in synthetic motion data set (12 classes, twin classes are time reversals)",
        description="Write a deterministic synthetic action data set to OUT: H.264 MP4 videos under "
                    "OUT/videos/<class>/, our index (OUT/index.json) and the original's annotation JSON "
                    f"(OUT/annotations.json), with training/validation/testing splits. Sizes: {sizes}. "
                    "Classes differ only in motion, and every class has a twin that is its time reversal, so a "
                    "model blind to temporal order is capped at 50%.")
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--size", choices=sorted(SIZES), default="default", help="data-set size (default: default)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files (default: 0)")
    p.add_argument("--jobs", type=int, help="processes (default: all cores)")
    p.add_argument("--force", action="store_true", help="write again even if OUT already holds this data set")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    """Generate the data set (or say it is already there) and print where everything went."""
    from resnet3d.data.synth import CLASSES, HARA_FILE, INDEX_FILE, generate_dataset, is_generated

    if not args.force and is_generated(args.out, args.size, args.seed):
        print(f"{args.out}: already holds the {args.size} data set with seed {args.seed} (use --force to rewrite)")
        return 0
    index = generate_dataset(args.out, args.size, args.seed, workers=args.jobs, progress=not args.quiet)
    counts = index.subset_counts()
    print(f"wrote {len(index)} videos of {len(CLASSES)} classes to {args.out}: "
          + ", ".join(f"{n} {s}" for s, n in counts.items()))
    print("classes (twin = time reversal): " + ", ".join(f"{c.name}<->{c.twin}" for c in CLASSES if not c.reverse))
    print(f"index: {args.out}/{INDEX_FILE}   original's JSON: {args.out}/{HARA_FILE}")
    return 0
