"""How numbers are shown to people: one percent format for summaries, reports and banners."""

from __future__ import annotations

import math


def percent(v: float | None) -> str:
    """0.1234 -> '12.34%'; None or NaN -> '-'."""
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}%"
