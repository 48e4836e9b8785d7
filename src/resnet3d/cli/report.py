"""`resnet3d report RUN_DIR`: learning-curve PNGs and a Markdown/HTML summary of a training run."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report", help="learning curves and a Markdown/HTML summary of a run folder",
        description="Reads train_epochs.csv, train_steps.csv and summary.json of a run folder and, when present, "
                    "the results.json of `resnet3d eval`; writes loss/accuracy/lr PNGs, the confusion matrix, "
                    "report.md and report.html.")
    p.add_argument("run_dir", help="run folder written by `resnet3d train`")
    p.add_argument("--eval", dest="eval_results", help="an eval results.json (default: the newest inside RUN_DIR)")
    p.add_argument("-o", "--out", help="output folder (default: RUN_DIR/report)")
    return p


def run(args: argparse.Namespace) -> int:
    from resnet3d.evaluation.report import write_run_report

    files = write_run_report(args.run_dir, args.out, args.eval_results)
    for name, path in files.items():
        print(f"{name:<16}{path}")
    return 0
