"""Helpers shared by the data tests (a module with a unique name: `conftest` names clash across test folders)."""

from __future__ import annotations

import numpy as np

H, W, N = 48, 64, 40


def make_frames(n: int = N, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """Smooth background plus a bright square moving 3 px per frame: neighbouring frames differ clearly."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 3, yy * 4, (xx + yy) * 2], axis=-1).astype(np.float32) + rng.integers(0, 60, 3)
    frames = np.repeat(np.clip(base, 0, 255).astype(np.uint8)[None], n, axis=0)
    for i in range(n):
        x = (3 * i) % (w - 12)
        y = (i // ((w - 12) // 3)) * 14 % (h - 12)
        frames[i, y:y + 12, x:x + 12] = (250, 240, 40)
    return frames


def nearest_frames(decoded: np.ndarray, encoded: np.ndarray) -> np.ndarray:
    """For each decoded frame, the index of the encoded frame it is closest to (mean absolute error)."""
    d = decoded.astype(np.int16)[:, None] - encoded.astype(np.int16)[None]
    return np.abs(d).mean(axis=(2, 3, 4)).argmin(axis=1)


def mae(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute error between two uint8 arrays."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
