"""The study folder's result files: study.json, study.csv, study.md, study.html and the PNG plots."""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path

from resnet3d.io import atomic_write_json, atomic_write_text
from resnet3d.study.findings import all_findings
from resnet3d.study.plots import write_plots
from resnet3d.study.spec import StudySpec
from resnet3d.study.tables import COLUMNS, study_tables, to_html, to_markdown

STUDY_JSON, STUDY_CSV, STUDY_MD, STUDY_HTML = "study.json", "study.csv", "study.md", "study.html"
VERDICT = {True: "holds", False: "does not hold", None: "not measured"}


def csv_text(rows: list[dict]) -> str:
    """study.csv: one line per cell, the columns of `tables.COLUMNS` (accuracies as fractions, like the logs)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([key for key, _ in COLUMNS])
    writer.writerows([[("" if r[key] is None else r[key]) for key, _ in COLUMNS] for r in rows])
    return buf.getvalue()


def findings_markdown(findings: list[dict]) -> str:
    """The findings section: each claim, whether it holds here, and the numbers that decide it."""
    lines = ["## Findings", "", "Decided from this study's numbers (validation video top-1 and the train - validation "
             "clip top-1 gap, in points):", ""]
    lines += [f"- **({f['id']}) {VERDICT[f['holds']]}**: {f['claim']}. {f['detail']}." for f in findings]
    return "\n".join(lines)


def write_outputs(spec: StudySpec, rows: list[dict], study_dir: Path, *, write: bool = True
                  ) -> tuple[list[dict], dict[str, str]]:
    """Decide the findings and (when `write`, i.e. on rank 0) write every result file; returns both."""
    findings = all_findings(rows, spec.findings)
    files = {name: str(study_dir / name) for name in (STUDY_JSON, STUDY_CSV, STUDY_MD, STUDY_HTML)}
    if not write:
        return findings, files
    atomic_write_json(study_dir / STUDY_JSON, {"study": spec.name, "source": spec.where, "seed": spec.seed,
                                               "cells": rows, "findings": findings})
    atomic_write_text(study_dir / STUDY_CSV, csv_text(rows))
    plots = write_plots(rows, spec.findings.depth, study_dir)
    tables = study_tables(rows, spec.findings.reference)
    intro = (f"Study `{spec.name}` ({spec.where}, seed {spec.seed}): {len(rows)} cells. Every cell is a training run "
             "in runs/<cell>/; its scores are the last epoch's video-level validation.")
    md = [f"# Study {spec.name}", intro, findings_markdown(findings), *map(to_markdown, tables),
          "## Plots", *[f"![{p}]({p})" for p in plots]]
    atomic_write_text(study_dir / STUDY_MD, "\n\n".join(md) + "\n")
    atomic_write_text(study_dir / STUDY_HTML, _html(spec.name, intro, findings, tables, plots))
    files.update({p: str(study_dir / p) for p in plots})
    return findings, files


def _html(name: str, intro: str, findings: list[dict], tables: list, plots: list[str]) -> str:
    items = "".join(f"<li><b>({html.escape(f['id'])}) {VERDICT[f['holds']]}</b>: {html.escape(f['claim'])}. "
                    f"{html.escape(f['detail'])}.</li>" for f in findings)
    body = [f"<h1>Study {html.escape(name)}</h1>", f"<p>{html.escape(intro)}</p>", f"<h2>Findings</h2><ul>{items}</ul>",
            *map(to_html, tables), "<h2>Plots</h2>", *[f'<p><img src="{p}" alt="{p}"></p>' for p in plots]]
    style = "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}" \
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Study {html.escape(name)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def format_plan(planned: list) -> str:
    """The --dry-run listing: cells in training order, data sizes, init, epochs, GMACs per clip, estimated cost."""
    lines = [f"{'#':>3}  {'cell':<44} {'status':<8} {'train':>7} {'eval':>6} {'epochs':>6} {'GMACs/clip':>10} "
             f"{'cost (MACs)':>12}"]
    total = 0.0
    for i, p in enumerate(planned, 1):
        cost = p.cost_gmacs
        total += cost or 0.0
        lines.append(f"{i:>3}  {p.cell.name:<44} {p.status:<8} {_count(p.train_videos):>7} {_count(p.val_videos):>6} "
                     f"{p.config.schedule.epochs:>6} {p.gmacs_per_clip:>10.3f} "
                     f"{_macs(cost):>12}")
    lines.append(f"{len(planned)} cells; estimated cost {_macs(total)}MACs (GMACs/clip x clips x epochs, forward "
                 "passes; fine-tune cells after the cells they start from)")
    return "\n".join(lines)


def _count(n: int | None) -> str:
    return "?" if n is None else str(n)


def _macs(gmacs: float | None) -> str:
    """A number of GMACs with a readable prefix: 512 G, 3.1 T, 12.4 P, 1.2 E."""
    if gmacs is None:
        return "?"
    for prefix, scale in (("E", 1e9), ("P", 1e6), ("T", 1e3)):
        if gmacs >= scale:
            return f"{gmacs / scale:.1f} {prefix}"
    return f"{gmacs:.1f} G"


def format_outcome(outcome) -> str:
    """The closing summary: what was trained, the findings, where the files are."""
    skipped = sum(p.status == "done" and p.cell.name not in outcome.trained for p in outcome.cells)
    left = sum(p.status != "done" for p in outcome.cells)
    lines = [f"study {outcome.status}: {len(outcome.trained)} cell(s) trained this time, {skipped} skipped as done, "
             f"{left} left; {outcome.wall_time_s:.0f} s"]
    if outcome.status == "interrupted":
        lines.append("run the same command again to continue (the stopped cell resumes where it was)")
    lines += [f"({f['id']}) {VERDICT[f['holds']]}: {f['detail']}" for f in outcome.findings]
    lines += [f"{name}: {path}" for name, path in outcome.files.items()]
    return "\n".join(lines)
