"""Matplotlib without a display, and atomic PNG writes: shared by the report and the explanation strip."""

from __future__ import annotations

from pathlib import Path

from resnet3d.io import atomic_path


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported only when a plot is drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path) -> None:
    """Write a figure as a PNG atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    pyplot().close(fig)
