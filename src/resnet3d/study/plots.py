"""The study's PNG plots: accuracy vs depth, train/validation curves of every cell, scratch vs fine-tuned bars."""

from __future__ import annotations

from pathlib import Path

from resnet3d.plots import pyplot, save_png
from resnet3d.study.findings import SCRATCH, scratch_pairs

DEPTH_PNG = "accuracy_vs_depth.png"
CURVES_PNG = "curves.png"
FINETUNE_PNG = "scratch_vs_finetuned.png"


def plot_depth(rows: list[dict], archs: list[str], path: Path) -> bool:
    """Validation video top-1 against the architectures (shallow to deep), one line per data set and size."""
    scratch = [r for r in rows if r["init"] == SCRATCH and r["arch"] in archs]
    series = list(dict.fromkeys((r["data"], r["size"]) for r in scratch))
    if not series:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for data, size in series:
        points = [(i, r["val_video_top1"]) for i, a in enumerate(archs) for r in scratch
                  if (r["arch"], r["data"], r["size"]) == (a, data, size)]
        ax.plot([p[0] for p in points], [100 * p[1] for p in points], marker="o", label=f"{data} {size}")
    ax.set_xticks(range(len(archs)), archs, rotation=20)
    ax.set(title="Accuracy vs depth (from scratch)", ylabel="validation video top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_png(fig, path, dpi=110, bbox_inches="tight")
    return True


def plot_curves(rows: list[dict], path: Path) -> bool:
    """Train clip top-1 (dashed) and validation video top-1 (solid) per epoch, every cell on one figure."""
    if not rows:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 5.0))
    for i, r in enumerate(rows):
        colour = plt.cm.tab20(i % 20)
        epochs = [c["epoch"] for c in r["curves"]]
        ax.plot(epochs, [100 * (c["train_clip_top1"] or 0) for c in r["curves"]], "--", color=colour, lw=1)
        ax.plot(epochs, [100 * (c["val_video_top1"] or 0) for c in r["curves"]], "-", color=colour, lw=1.5,
                label=r["name"])
    ax.set(title="Train (dashed) and validation (solid) top-1 of every cell", xlabel="epoch", ylabel="top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_png(fig, path, dpi=110, bbox_inches="tight")
    return True


def plot_finetune(rows: list[dict], path: Path) -> bool:
    """Bars of validation video top-1, scratch beside fine-tuned, per (data, arch, size) that has both."""
    pairs = [(f"{r['data']} {r['arch']} {r['size']}\n{r['init']}", base["val_video_top1"], r["val_video_top1"])
             for r, base in scratch_pairs(rows) if base is not None]
    if not pairs:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 2.2 * len(pairs)), 4.2))
    x = range(len(pairs))
    ax.bar([i - 0.2 for i in x], [100 * p[1] for p in pairs], width=0.4, label="scratch")
    ax.bar([i + 0.2 for i in x], [100 * p[2] for p in pairs], width=0.4, label="fine-tuned")
    ax.set_xticks(list(x), [p[0] for p in pairs], fontsize=8)
    ax.set(title="Scratch vs fine-tuned", ylabel="validation video top-1 (%)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    save_png(fig, path, dpi=110, bbox_inches="tight")
    return True


def write_plots(rows: list[dict], depth_archs: list[str], out: Path) -> list[str]:
    """Every plot that has data; returns the file names written."""
    archs = depth_archs or list(dict.fromkeys(r["arch"] for r in rows if r["init"] == SCRATCH))
    done = [plot_depth(rows, archs, out / DEPTH_PNG), plot_curves(rows, out / CURVES_PNG),
            plot_finetune(rows, out / FINETUNE_PNG)]
    return [name for name, ok in zip((DEPTH_PNG, CURVES_PNG, FINETUNE_PNG), done) if ok]
