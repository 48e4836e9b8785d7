"""Map-style datasets: training clips and multi-view evaluation, deterministic and robust to broken files.

Which frames and crops a sample gets is a pure function of (seed, epoch, sample index), so results do not depend
on the number of DataLoader workers. A video that fails to load is replaced by another sample chosen from
(seed, epoch, index, attempt), reported once (path and reason) and counted in `bad_files`, shared by all workers.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from resnet3d.data import sampling
from resnet3d.data.sampling import TEMPORAL_MODES
from resnet3d.data.cache import FrameCache
from resnet3d.data.index import VideoIndex, VideoRecord
from resnet3d.data.replacement import BadFileLog, load_or_replace
from resnet3d.data.video import VideoError, VideoSource, open_video
from resnet3d.errors import Resnet3dError


Transform = Callable[[np.ndarray, np.random.Generator], torch.Tensor]


def frame_range(record: VideoRecord, source: VideoSource) -> tuple[int, int]:
    """The record's part of the video as a 0-based [start, end) frame range, clamped to the decodable frames."""
    n = source.num_frames
    if record.segment is not None:
        start, end = record.segment
    elif record.time_segment is not None:
        fps = record.fps or source.fps
        if not fps:
            raise VideoError(record.path, "a time segment needs an fps, and neither the index nor the file has one")
        start, end = math.floor(record.time_segment[0] * fps), math.ceil(record.time_segment[1] * fps)
    else:
        return 0, n
    start = min(max(0, int(start)), n - 1)
    return start, min(max(int(end), start + 1), n)


class _RobustDataset(Dataset):
    """Shared parts: records, seed/epoch, deterministic replacement of broken samples."""

    max_attempts = 10

    def __init__(self, index: VideoIndex, transform: Transform, seed: int, cache: FrameCache | None):
        if len(index) == 0:
            raise Resnet3dError("the data set is empty: the index has no videos (check the subset and the annotation file)")
        self.index = index
        self.records = list(index.records)
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        self.bad_files = BadFileLog()
        self.cache = cache

    def _open(self, record: VideoRecord) -> VideoSource:
        def open_record() -> VideoSource:
            return open_video(record.path, record.kind, fps=record.fps)

        return open_record() if self.cache is None else self.cache.open(record.path, open_record)

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Draw other clips and crops for the next epoch (call before iterating)."""
        self.epoch = int(epoch)

    def _rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, i])

    def _robust(self, i: int, load: Callable[[int], tuple]) -> tuple:
        return load_or_replace(i, load, self.records, self.bad_files, (self.seed, self.epoch), self.max_attempts)


class ClipDataset(_RobustDataset):
    """Training: one clip per video per epoch; `__getitem__` gives (clip float (C, T, H, W), label int).

    `temporal`: "random" (any valid start), "center", or "segments" (TSN: `clip_length` segments, one random frame
    each; `t_stride` does not apply).
    """

    def __init__(self, index: VideoIndex, *, clip_length: int = 16, t_stride: int = 1, temporal: str = "random",
                 transform: Transform, seed: int = 0, cache: FrameCache | None = None):
        if temporal not in TEMPORAL_MODES:
            raise ValueError(f"unknown temporal sampling {temporal!r}; expected one of {list(TEMPORAL_MODES)}")
        sampling.clip_span(clip_length, t_stride)  # validates both
        super().__init__(index, transform, seed, cache)
        self.clip_length = clip_length
        self.t_stride = t_stride
        self.temporal = temporal

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self._robust(i, self._load)

    def clip_indices(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        """The frame indices (relative to the record's range) of one training clip."""
        if self.temporal == "random":
            return sampling.random_clip(num_frames, self.clip_length, self.t_stride, rng)
        if self.temporal == "center":
            return sampling.center_clip(num_frames, self.clip_length, self.t_stride)
        return sampling.uniform_segments(num_frames, self.clip_length, rng)

    def _load(self, j: int) -> tuple[torch.Tensor, int]:
        record = self.records[j]
        rng = self._rng(j)
        with self._open(record) as source:
            start, end = frame_range(record, source)
            frames = source.read(start + self.clip_indices(end - start, rng))
        return self.transform(frames, rng), record.label


class MultiViewDataset(_RobustDataset):
    """Evaluation: every view (clips x crops) of a video; `__getitem__` gives (views (V, C, T, H, W), label, index).

    `num_clips` clips are spread evenly over the video; `num_clips=None` takes sliding windows every
    `window_stride` frames instead (default: the clip span, i.e. adjacent non-overlapping clips, plus one window
    ending at the last frame when the tail is not covered). A broken video is replaced like in training, and the
    replacement's own index is returned, so the broken one is absent from per-video results (and counted).
    """

    # Decoded frames are read in chunks of about this many, to bound memory on long untrimmed videos.
    chunk_frames = 512

    def __init__(self, index: VideoIndex, *, clip_length: int = 16, t_stride: int = 1, num_clips: int | None = 3,
                 window_stride: int | None = None, transform: Transform, seed: int = 0,
                 cache: FrameCache | None = None):
        sampling.clip_span(clip_length, t_stride)
        if num_clips is not None and num_clips < 1:
            raise ValueError(f"num_clips must be >= 1 or None, got {num_clips}")
        super().__init__(index, transform, seed, cache)
        self.clip_length = clip_length
        self.t_stride = t_stride
        self.num_clips = num_clips
        self.window_stride = window_stride
        self.video_ids = [r.video_id for r in self.records]

    def clip_indices(self, num_frames: int) -> np.ndarray:
        """Frame indices (relative to the record's range) of every clip, shape (clips, clip_length)."""
        if self.num_clips is None:
            return sampling.sliding_windows(num_frames, self.clip_length, self.t_stride, self.window_stride)
        return sampling.even_clips(num_frames, self.clip_length, self.t_stride, self.num_clips)

    def windows(self, i: int) -> list[tuple[int, int]]:
        """[first, last + 1) absolute frame range of each clip of video i (for reports)."""
        record = self.records[i]
        with self._open(record) as source:
            start, end = frame_range(record, source)
        clips = self.clip_indices(end - start) + start
        return [(int(c.min()), int(c.max()) + 1) for c in clips]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        return self._robust(i, self._load)

    def _load(self, j: int) -> tuple[torch.Tensor, int, int]:
        record = self.records[j]
        rng = self._rng(j)
        views: list[torch.Tensor] = []
        with self._open(record) as source:
            start, end = frame_range(record, source)
            clips = self.clip_indices(end - start) + start
            per_chunk = max(1, self.chunk_frames // self.clip_length)
            for k in range(0, len(clips), per_chunk):
                part = clips[k:k + per_chunk]
                frames = source.read(part.reshape(-1))
                frames = frames.reshape(len(part), self.clip_length, *frames.shape[1:])
                for clip in frames:
                    out = self.transform(clip, rng)
                    views.extend(out if out.dim() == 5 else [out])
        return torch.stack(views), record.label, j


def collate_views(batch: Sequence[tuple[torch.Tensor, int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flatten a batch of multi-view samples: (clips (sum V, C, T, H, W), clip labels, clip's dataset index)."""
    clips = torch.cat([views for views, _, _ in batch])
    labels = torch.cat([torch.full((len(views),), int(label), dtype=torch.long) for views, label, _ in batch])
    videos = torch.cat([torch.full((len(views),), int(i), dtype=torch.long) for views, _, i in batch])
    return clips, labels, videos
