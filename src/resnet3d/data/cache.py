"""Decoded videos kept in memory, for data sets small enough that decoding would dominate each epoch."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import numpy as np

from resnet3d.data.video import VideoSource


class MemorySource(VideoSource):
    """Every frame of a video, already decoded, behind the VideoSource interface."""

    def __init__(self, path: str, frames: np.ndarray, fps: float | None):
        self.path = path
        self.frames = frames
        self.num_frames = len(frames)
        self.fps = fps
        self.height, self.width = frames.shape[1:3]

    def _read_sorted(self, wanted: np.ndarray) -> list[np.ndarray]:
        return [self.frames[i] for i in wanted]  # views: `read` makes the one copy


class FrameCache:
    """Least-recently-used decoded videos, at most `max_bytes` of frames; a video larger than that is not kept."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self._videos: OrderedDict[str, MemorySource] = OrderedDict()

    def open(self, key: str, open_source: Callable[[], VideoSource]) -> VideoSource:
        """The cached frames of `key`, or `open_source()` decoded whole and kept if it fits."""
        if key in self._videos:
            self._videos.move_to_end(key)
            return self._videos[key]
        source = open_source()
        if source.num_frames * source.frame_pixels * 3 > self.max_bytes:
            return source
        with source:
            kept = MemorySource(source.path, source.read(np.arange(source.num_frames)), source.fps)
        size = kept.frames.nbytes
        while self.bytes + size > self.max_bytes:
            self.bytes -= self._videos.popitem(last=False)[1].frames.nbytes
        self._videos[key] = kept
        self.bytes += size
        return kept

    def __len__(self) -> int:
        return len(self._videos)


def make_frame_cache(cache_mb: int) -> FrameCache | None:
    """A cache of `cache_mb` MB of decoded frames (`data.cache_mb`), or None for 0."""
    return FrameCache(cache_mb << 20) if cache_mb else None
