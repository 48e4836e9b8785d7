"""Matplotlib without a display, and atomic PNG writes: shared by the report, the study and the explanation strip."""

from __future__ import annotations

import warnings
from pathlib import Path

from resnet3d.io import atomic_path


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported only when a plot is drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # one warning per PNG instead (`missing_glyphs`), not one per character the font lacks
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
    return plt


def save_png(fig, path: Path, **savefig: object) -> None:
    """Write a figure as a PNG atomically and close it; one warning if its text has characters the font lacks."""
    from matplotlib.text import Text

    missing = missing_glyphs(text.get_text() for text in fig.findobj(Text))
    if missing:
        warnings.warn(f"{path.name}: the plot font has no glyph for {missing}, drawn as boxes in the PNG (the CSV, "
                      "JSON and Markdown files have the names right)", stacklevel=2)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", **savefig)
    pyplot().close(fig)


def missing_glyphs(texts) -> str:
    """The characters of `texts` that matplotlib's default font cannot draw, sorted and joined ("" when none)."""
    from matplotlib import font_manager, ft2font

    font = ft2font.FT2Font(font_manager.findfont(font_manager.FontProperties()))
    chars = {c for text in texts for c in text if not c.isspace()}
    return "".join(sorted(c for c in chars if font.get_char_index(ord(c)) == 0))

