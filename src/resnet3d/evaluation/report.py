"""Pictures and summaries: learning curves from a run folder, confusion matrices, Markdown and HTML reports."""

from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from resnet3d.errors import Resnet3dError
from resnet3d.formatting import percent
from resnet3d.io import atomic_write_text
from resnet3d.plots import pyplot, save_png

EVAL_FORMAT = "resnet3d-eval"

# A report is a list of blocks rendered to both Markdown and HTML:
#   ("h", level, text) | ("p", text) | ("table", header, rows) | ("img", caption, file name)
Block = tuple


def read_log(path: Path) -> list[dict[str, float]]:
    """Rows of a training CSV log as floats (empty or non-numeric cells become NaN); [] when the file is missing."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: _float(v) for k, v in row.items() if k} for row in csv.DictReader(f)]


def _float(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _series(rows: list[dict[str, float]], x: str, y: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(x, y) points where both exist; None when the column is absent or empty."""
    pts = [(r.get(x, math.nan), r.get(y, math.nan)) for r in rows]
    pts = [(a, b) for a, b in pts if not (math.isnan(a) or math.isnan(b))]
    return (np.array([p[0] for p in pts]), np.array([p[1] for p in pts])) if pts else None


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if len(y) < 3 * window or window < 2:
        return y
    kernel = np.ones(window) / window
    return np.convolve(np.pad(y, (window // 2, window - 1 - window // 2), mode="edge"), kernel, mode="valid")


def plot_lines(path: Path, title: str, xlabel: str, ylabel: str,
               lines: Sequence[tuple[str, tuple[np.ndarray, np.ndarray] | None, dict]], *, log_y: bool = False,
               percent: bool = False) -> bool:
    """One PNG line chart; lines without data are left out. False (no file) when no line has data."""
    lines = [(label, data, style) for label, data, style in lines if data is not None]
    if not lines:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for label, (x, y), style in lines:
        ax.plot(x, 100 * y if percent else y, label=label, **style)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel + (" (%)" if percent else ""))
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # epochs and steps are whole numbers
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_png(fig, path)
    return True


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], path: Path, title: str = "Confusion matrix") -> None:
    """Row-normalised confusion matrix as a PNG (rows: true class, columns: predicted); labels shown up to 40 classes."""
    plt = pyplot()
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(cm)
    side = min(12.0, 3.0 + 0.35 * n)
    fig, ax = plt.subplots(figsize=(side + 1.5, side), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if n <= 40:
        ax.set_xticks(range(n), labels=class_names, rotation=90, fontsize=8)
        ax.set_yticks(range(n), labels=class_names, fontsize=8)
    if n <= 15:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    fig.tight_layout()
    save_png(fig, path)


def write_confusion_csv(cm: np.ndarray, class_names: Sequence[str], path: Path) -> None:
    """Confusion matrix as CSV: a header of predicted classes, one row per true class."""
    lines = [",".join(["true\\predicted", *(_csv_cell(c) for c in class_names)])]
    lines += [",".join([_csv_cell(name), *(str(int(v)) for v in row)]) for name, row in zip(class_names, cm)]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_confusion_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Inverse of `write_confusion_csv`."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0][1:], np.array([[int(v) for v in r[1:]] for r in rows[1:]], dtype=np.int64)


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


# ---------------------------------------------------------------------------------------------- run reports

def learning_curves(run_dir: Path, out_dir: Path) -> list[tuple[str, str]]:
    """Loss, accuracy and learning-rate PNGs from train_epochs.csv / train_steps.csv: [(caption, file name)]."""
    epochs = read_log(run_dir / "train_epochs.csv")
    steps = read_log(run_dir / "train_steps.csv")
    made = []
    step_loss = _series(steps, "step", "loss")
    if step_loss is not None:
        step_loss = (step_loss[0], _smooth(step_loss[1], max(1, len(step_loss[1]) // 50)))
    # Epoch rows are drawn at the epoch's last step when steps are known, so both share one axis.
    x = "step" if _series(epochs, "step", "train_loss") is not None and step_loss is not None else "epoch"
    if plot_lines(out_dir / "loss.png", "Loss", x, "cross-entropy", [
        ("train (steps, smoothed)", step_loss if x == "step" else None, {"alpha": 0.5, "lw": 1}),
        ("train (epoch mean)", _series(epochs, x, "train_loss"), {"marker": "o"}),
        ("validation", _series(epochs, x, "val_loss"), {"marker": "s"}),
    ]):
        made.append(("Loss", "loss.png"))
    if plot_lines(out_dir / "accuracy.png", "Accuracy", "epoch", "accuracy", [
        ("train clip top-1", _series(epochs, "epoch", "train_clip_top1"), {"marker": "o"}),
        ("val clip top-1", _series(epochs, "epoch", "val_clip_top1"), {"marker": "s"}),
        ("val video top-1", _series(epochs, "epoch", "val_video_top1"), {"marker": "^", "lw": 2}),
        ("val video top-5", _series(epochs, "epoch", "val_video_top5"), {"marker": "v", "ls": "--"}),
    ], percent=True):
        made.append(("Accuracy (video accuracy averages the softmax over each video's clips)", "accuracy.png"))
    lr = _series(steps, "step", "lr") or _series(epochs, "epoch", "lr")
    if plot_lines(out_dir / "lr.png", "Learning rate", "step" if _series(steps, "step", "lr") else "epoch", "lr",
                  [("lr", lr, {})], log_y=lr is not None and bool(np.all(lr[1] > 0))):
        made.append(("Learning rate", "lr.png"))
    return made


def find_eval_results(run_dir: Path) -> Path | None:
    """The newest `resnet3d eval` results.json inside the run folder, if any."""
    found = [p for p in run_dir.glob("**/results.json") if _is_eval(p)]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _is_eval(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == EVAL_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def eval_blocks(results: dict, results_path: Path, out_dir: Path) -> list[Block]:
    """Report blocks for one evaluation: protocol, metrics, cost, confusion matrix, per-class table."""
    m, p, v, c = results["metrics"], results["protocol"], results["videos"], results.get("cost", {})
    blocks: list[Block] = [("h", 2, "Evaluation"), ("p", f"Checkpoint `{results.get('checkpoint', '?')}`, "
                           f"subset `{p.get('subset', '?')}`, results `{results_path}`.")]
    views = f"{p['clips']} clips × {p['crops']} crop{'s' if p['crops'] > 1 else ''}"
    blocks.append(("table", ["protocol", "value"], [
        ["views per video", views], ["clip length × temporal stride", f"{p['clip_length']} × {p['t_stride']}"],
        ["window stride", str(p.get("window_stride") or "-")], ["input size", str(p["input_size"])],
        ["frame rate", str(p.get("fps") or "source")],
        ["videos evaluated / listed", f"{v['evaluated']} / {v['listed']}"], ["video list sha256", f"`{v['sha256'][:16]}…`"],
    ]))
    blocks.append(("table", ["metric", "value"], [
        ["video top-1", percent(m["video_top1"])], ["video top-5", percent(m["video_top5"])],
        ["mean class accuracy", percent(m["mean_class_accuracy"])],
        ["clip top-1", percent(m["clip_top1"])], ["clip top-5", percent(m["clip_top5"])],
        ["video top-1, missing videos counted wrong", percent(m.get("video_top1_all"))],
    ]))
    if c:
        blocks.append(("p", f"Cost: {c['params'] / 1e6:.2f} M parameters, {c['gmacs_per_view']:.2f} GMACs per view, "
                            f"{c['gmacs_per_video']:.2f} GMACs per video ({c['views_per_video']} views), "
                            f"{c['clips_per_second']:.1f} clips/s measured ({c['precision']}, {c['device']})."))
    confusion = results_path.parent / results.get("files", {}).get("confusion_csv", "confusion.csv")
    if confusion.exists():
        names, cm = read_confusion_csv(confusion)
        plot_confusion(cm, names, out_dir / "confusion.png")
        blocks.append(("img", "Confusion matrix (rows: true class, normalised per row)", "confusion.png"))
    per_class = results.get("per_class", [])
    if per_class:
        blocks.append(("h", 3, "Per-class accuracy (video level)"))
        blocks.append(("table", ["class", "videos", "top-1", "most confused with"],
                       [[r["class"], str(r["videos"]), percent(r["top1"]), r.get("confused_with") or "-"] for r in per_class]))
    return blocks


def run_blocks(run_dir: Path, curves: list[tuple[str, str]]) -> list[Block]:
    """Report blocks for a training run: status, best epoch, final numbers, learning curves."""
    blocks: list[Block] = [("h", 1, f"Run report: {run_dir.name}")]
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        s = json.loads(summary_path.read_text(encoding="utf-8"))
        final = s.get("final") or {}
        blocks.append(("table", ["", "value"], [
            ["status", f"{s.get('status', '?')} after {s.get('epochs_done', '?')}/{s.get('epochs', '?')} epochs, "
                       f"{s.get('steps_done', '?')} steps"],
            ["best epoch", f"{s.get('best_epoch') or '-'} (val video top-1 {percent(s.get('best_video_top1'))})"],
            ["last epoch val", f"clip top-1 {percent(final.get('val_clip_top1'))}, video top-1 "
                               f"{percent(final.get('val_video_top1'))}, video top-5 {percent(final.get('val_video_top5'))}"],
            ["training speed", f"{s['train_clips_per_s']:.1f} clips/s" if s.get("train_clips_per_s") else "-"],
            ["wall time", f"{s.get('wall_time_s', 0) / 60:.1f} min"],
            ["broken files replaced", str(s.get("bad_files", 0))],
        ]))
    else:
        blocks.append(("p", "No summary.json (the run may still be going): curves only."))
    if curves:
        blocks.append(("h", 2, "Learning curves"))
        blocks += [("img", caption, name) for caption, name in curves]
    return blocks


def write_run_report(run_dir: str | Path, out_dir: str | Path | None = None,
                     eval_results: str | Path | None = None) -> dict[str, Path]:
    """Write curves, confusion matrix, report.md and report.html for a run folder; returns the written files."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise Resnet3dError(f"{run_dir}: not a run folder")
    out_dir = Path(out_dir) if out_dir else run_dir / "report"
    if not any((run_dir / f).exists() for f in ("train_epochs.csv", "train_steps.csv", "summary.json")) and not eval_results:
        raise Resnet3dError(f"{run_dir}: no train_epochs.csv, train_steps.csv or summary.json (not a resnet3d run folder?)")
    curves = learning_curves(run_dir, out_dir)
    blocks = run_blocks(run_dir, curves)
    results_path = Path(eval_results) if eval_results else find_eval_results(run_dir)
    if results_path is not None:
        if not _is_eval(results_path):
            raise Resnet3dError(f"{results_path}: not a resnet3d eval results.json")
        blocks += eval_blocks(json.loads(results_path.read_text(encoding="utf-8")), results_path, out_dir)
    else:
        blocks.append(("p", f"No evaluation results found; run `resnet3d eval {run_dir}/checkpoints/best.pth "
                            f"--data INDEX` and report again for the confusion matrix and per-class table."))
    md, page = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(md, render_markdown(blocks))
    atomic_write_text(page, render_html(blocks, f"resnet3d report: {run_dir.name}"))
    files = {name: out_dir / name for _, name in curves}
    if (out_dir / "confusion.png").exists() and results_path is not None:
        files["confusion.png"] = out_dir / "confusion.png"
    return {**files, "report.md": md, "report.html": page}


# ---------------------------------------------------------------------------------------------- rendering

def render_markdown(blocks: list[Block]) -> str:
    """Blocks as Markdown."""
    out = []
    for b in blocks:
        if b[0] == "h":
            out.append("#" * b[1] + " " + b[2])
        elif b[0] == "p":
            out.append(b[1])
        elif b[0] == "table":
            header, rows = b[1], b[2]
            out.append("\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                                 + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]))
        elif b[0] == "img":
            out.append(f"![{b[1]}]({b[2]})")
    return "\n\n".join(out) + "\n"


def render_html(blocks: list[Block], title: str) -> str:
    """Blocks as a self-contained HTML page (images referenced next to it)."""
    e = html.escape
    body = []
    for b in blocks:
        if b[0] == "h":
            body.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
        elif b[0] == "p":
            body.append(f"<p>{_code(e(b[1]))}</p>")
        elif b[0] == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{_code(e(c))}</td>" for c in r) + "</tr>" for r in b[2])
            body.append(f"<table><tr>{head}</tr>{rows}</table>")
        elif b[0] == "img":
            body.append(f'<figure><img src="{e(b[2])}" alt="{e(b[1])}"><figcaption>{e(b[1])}</figcaption></figure>')
    style = ("body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
             "img{max-width:100%}code{background:#f3f3f3;padding:0 3px}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{e(title)}</title><style>{style}</style></head>"
            f"<body>\n" + "\n".join(body) + "\n</body></html>\n")


def _code(text: str) -> str:
    """`inline code` spans (already HTML-escaped text) to <code>."""
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
