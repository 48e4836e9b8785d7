"""Test-only reference implementations: a CSV log reader and two metrics the library computes another way."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch


def read_csv(path: Path) -> list[dict[str, str]]:
    """All rows of a log file as dicts of strings."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def average_by_video(scores: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean of clip `scores` (N, C) per video id in `video` (N,): (sorted video ids (V,), mean scores (V, C), clip counts (V,)).

    Pass softmax probabilities to get the usual "softmax averaged over views" video score.
    """
    ids, inverse = torch.unique(video, sorted=True, return_inverse=True)
    sums = torch.zeros(len(ids), scores.shape[1], dtype=torch.float64, device=scores.device)
    sums.index_add_(0, inverse, scores.double())
    counts = torch.bincount(inverse, minlength=len(ids))
    return ids, sums / counts[:, None], counts


def ranked_results_accuracy(ranked: dict[str, list[str]], truth: dict[str, str], k: int = 1) -> tuple[float, int]:
    """Top-k video accuracy of ranked label lists against ground truth: (accuracy, videos missing from `ranked`).

    Videos absent from `ranked` count as wrong (the original's `eval_accuracy.py` default); NaN with no truth.
    """
    if not truth:
        return math.nan, 0
    missing = sum(1 for vid in truth if vid not in ranked)
    hits = sum(1 for vid, label in truth.items() if label in ranked.get(vid, [])[:k])
    return hits / len(truth), missing
