"""`resnet3d study`: run a study file (or shipped preset) as a resumable grid of training runs, with its tables."""

from __future__ import annotations

import argparse

from resnet3d.errors import Resnet3dError


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `study` sub-command."""
    p = subparsers.add_parser(
        "study", help="the paper's study: architectures x training-set sizes x pre-training, resumable",
        description="Train every cell of a study (a YAML file or a shipped preset: hara2018, mini) into "
                    "OUT/runs/<cell>/, skipping finished cells and resuming an interrupted one, then write "
                    "study.json, study.csv, study.md/.html and plots with the findings. Overrides: "
                    "<data set>.index=PATH (also .root, .format, .split) or section.key=value for every cell. "
                    "Distributed: torchrun --nproc_per_node 8 -m resnet3d study ... (see docs/study.md).")
    p.add_argument("items", nargs="*", metavar="STUDY|KEY=VALUE",
                   help="a study file or preset name, then overrides, e.g. kinetics.index=kinetics.json")
    p.add_argument("--preset", metavar="NAME", help="a shipped study (same as giving its name first)")
    p.add_argument("--out", "-o", metavar="DIR", help="study folder (default: studies/<study name>)")
    p.add_argument("--dry-run", action="store_true", help="print the cells, their order and cost; train nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def run(args: argparse.Namespace) -> int:
    """Plan or run the study; 0 when every cell is done, 130 when a cell was interrupted."""
    from resnet3d.study.datasets import is_main_process
    from resnet3d.study.outputs import format_outcome, format_plan
    from resnet3d.study.runner import run_study_file

    source = [i for i in args.items if "=" not in i]
    overrides = [i for i in args.items if "=" in i]
    if len(source) + bool(args.preset) != 1:
        raise Resnet3dError("study: give exactly one study file or preset (e.g. --preset mini), then KEY=VALUE "
                            f"overrides; got {source + ([args.preset] if args.preset else [])}")
    outcome = run_study_file(args.preset or source[0], overrides, args.out, dry_run=args.dry_run,
                             progress=not args.quiet)
    if is_main_process():  # under torchrun every rank runs the cells, rank 0 reports
        print(format_plan(outcome.cells) if args.dry_run else format_outcome(outcome))
    return 130 if outcome.status == "interrupted" else 0
