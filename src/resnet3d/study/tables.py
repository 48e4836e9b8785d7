"""The study's tables (all cells, overfitting, accuracy vs depth, scratch vs fine-tuned) as data, Markdown and HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass

from resnet3d.study.findings import SCRATCH, scratch_pairs

# study.csv columns: (key in a cell's results, header)
COLUMNS = (("name", "cell"), ("data", "data"), ("arch", "arch"), ("params", "params"),
           ("gmacs_per_clip", "GMACs/clip"), ("size", "size"), ("train_videos", "train videos"),
           ("init", "init"), ("epochs", "epochs"), ("train_clip_top1", "train clip top-1"),
           ("val_clip_top1", "val clip top-1"), ("val_clip_top5", "val clip top-5"),
           ("val_video_top1", "val video top-1"), ("val_video_top5", "val video top-5"),
           ("gap", "train - val gap"), ("best_epoch", "best epoch"), ("wall_time_s", "wall time (s)"))
PERCENT = {"train_clip_top1", "val_clip_top1", "val_clip_top5", "val_video_top1", "val_video_top5", "gap"}


@dataclass
class Table:
    """A titled table: what it shows, a header and rows of already formatted cells."""

    title: str
    about: str
    header: list[str]
    rows: list[list[str]]


def fmt(key: str, value) -> str:
    """A cell value as the tables show it (accuracies in %, parameters in millions)."""
    if value is None:
        return "-"
    if key in PERCENT:
        return f"{100 * value:.1f}"
    if key == "params":
        return f"{value / 1e6:.2f} M"
    if key == "gmacs_per_clip":
        return f"{value:.3f}"
    if key == "wall_time_s":
        return f"{value:.0f}"
    return str(value)


def cells_table(rows: list[dict]) -> Table:
    """Every cell, as in study.csv (accuracies in %)."""
    return Table("All cells", "Every training run of the study (accuracies and gap in %, validation = the last "
                 "epoch's video-level evaluation).", [h for _, h in COLUMNS],
                 [[fmt(k, r[k]) for k, _ in COLUMNS] for r in rows])


def overfitting_table(rows: list[dict], reference: str) -> Table:
    """Train vs validation accuracy of the reference net from scratch, per data set and size (the paper's Table 2)."""
    mine = [r for r in rows if r["arch"] == reference and r["init"] == SCRATCH]
    return Table(f"Overfitting: {reference} from scratch", "Train clip top-1 (during the last epoch, with "
                 "augmentation) against validation top-1; a large gap means the data set is too small for the net.",
                 ["data", "size", "train videos", "train clip top-1", "val clip top-1", "val video top-1", "gap"],
                 [[r["data"], r["size"], str(r["train_videos"]), fmt("train_clip_top1", r["train_clip_top1"]),
                   fmt("val_clip_top1", r["val_clip_top1"]), fmt("val_video_top1", r["val_video_top1"]),
                   fmt("gap", r["gap"])] for r in mine])


def depth_table(rows: list[dict]) -> Table:
    """Validation video top-1 of every scratch architecture, one column per data set and size."""
    scratch = [r for r in rows if r["init"] == SCRATCH]
    archs = list(dict.fromkeys(r["arch"] for r in scratch))
    columns = list(dict.fromkeys((r["data"], r["size"]) for r in scratch))
    value = {(r["arch"], r["data"], r["size"]): r["val_video_top1"] for r in scratch}
    return Table("Accuracy vs depth", "Validation video top-1 (%) of each architecture trained from scratch, per "
                 "data set and training-set size.", ["arch", "params", *[f"{d} {s}" for d, s in columns]],
                 [[a, fmt("params", next(r["params"] for r in scratch if r["arch"] == a)),
                   *[fmt("val_video_top1", value.get((a, d, s))) for d, s in columns]] for a in archs])


def finetune_table(rows: list[dict]) -> Table:
    """Each fine-tuned cell beside the same net trained from scratch on the same data and size."""
    out = []
    for r, scratch in scratch_pairs(rows):
        base = scratch["val_video_top1"] if scratch else None
        gain = None if base is None else r["val_video_top1"] - base
        out.append([r["data"], r["arch"], r["size"], r["source"] or r["init"], fmt("val_video_top1", base),
                    fmt("val_video_top1", r["val_video_top1"]), fmt("gap", gain)])
    return Table("Scratch vs fine-tuned", "Validation video top-1 (%) from scratch and after fine-tuning (the "
                 "finetune recipe, with its frozen layers) from a pre-trained cell or checkpoint.",
                 ["data", "arch", "size", "fine-tuned from", "scratch", "fine-tuned", "gain (points)"], out)


def study_tables(rows: list[dict], reference: str) -> list[Table]:
    """The tables of study.md / study.html, in order."""
    return [overfitting_table(rows, reference), depth_table(rows), finetune_table(rows), cells_table(rows)]


def to_markdown(table: Table) -> str:
    """A Markdown section: title, one line about it, the table."""
    lines = [f"## {table.title}", "", table.about, "", "| " + " | ".join(table.header) + " |",
             "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows] or ["| (no cells) |"]
    return "\n".join(lines)


def to_html(table: Table) -> str:
    """An HTML section with the same content as `to_markdown`."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return (f"<h2>{html.escape(table.title)}</h2>\n<p>{html.escape(table.about)}</p>\n"
            f"<table>\n<tr>{head}</tr>\n{body}\n</table>")

