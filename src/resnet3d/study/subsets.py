"""Nested, class-stratified training subsets: deterministic given the seed, each size a prefix of a larger one."""

from __future__ import annotations

import hashlib
from resnet3d.data.index import VideoIndex, VideoRecord
from resnet3d.study.spec import StudyError

TRAINING = "training"


def class_orders(index: VideoIndex, seed: int) -> dict[int, list[VideoRecord]]:
    """Per class, its training videos in a fixed pseudo-random order (by a hash of seed and video id)."""
    orders: dict[int, list[VideoRecord]] = {}
    for rec in index.subset(TRAINING):
        if rec.label >= 0:
            orders.setdefault(rec.label, []).append(rec)
    return {label: sorted(recs, key=lambda r: _rank(seed, r)) for label, recs in sorted(orders.items())}


def _rank(seed: int, rec: VideoRecord) -> str:
    key = f"{seed}\0{rec.video_id}\0{rec.segment}"
    return hashlib.sha256(key.encode()).hexdigest()


def per_class_count(available: int, size: float | int) -> int:
    """How many of a class's `available` videos a size keeps: a fraction rounds (at least 1), a count is capped."""
    if isinstance(size, float):
        return max(1, round(size * available))
    return min(size, available)


def training_subset(index: VideoIndex, size: float | int, seed: int) -> VideoIndex:
    """The index with its training videos cut to `size` per class (the first ones of `class_orders`); the other
    subsets (validation, testing) are kept whole."""
    orders = class_orders(index, seed)
    if not orders:
        raise StudyError(f"training subset: the index has no labelled {TRAINING!r} videos")
    kept = {id(r) for recs in orders.values() for r in recs[:per_class_count(len(recs), size)]}
    return VideoIndex(list(index.classes), [r for r in index.records if r.subset != TRAINING or id(r) in kept])


def class_counts(index: VideoIndex, subset: str = TRAINING) -> dict[str, int]:
    """Videos per class name in one subset."""
    counts = {name: 0 for name in index.classes}
    for rec in index.subset(subset):
        if rec.label >= 0:
            counts[index.classes[rec.label]] += 1
    return counts
