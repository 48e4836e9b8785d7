"""Temporal sampling: pure functions from a frame count to 0-based frame indices.

A clip of `clip_length` frames with temporal stride `t_stride` spans `(clip_length - 1) * t_stride + 1` frames.
Videos shorter than that are loop-padded: the strided frames that exist are repeated cyclically. Every function
honours `t_stride` the same way, so training, validation and inference see the same frame spacing.
"""

from __future__ import annotations

import numpy as np

TEMPORAL_MODES = ("random", "center", "segments")  # how a training clip is placed in its video


def clip_span(clip_length: int, t_stride: int = 1) -> int:
    """Number of frames a clip covers from its first to its last index."""
    _check(clip_length, t_stride)
    return (clip_length - 1) * t_stride + 1


def loop_pad(indices: np.ndarray, length: int) -> np.ndarray:
    """Repeat `indices` cyclically (or cut them) to exactly `length` entries."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        raise ValueError("cannot loop-pad an empty index list")
    return np.resize(indices, length)


def clip_at(start: int, num_frames: int, clip_length: int, t_stride: int = 1) -> np.ndarray:
    """The clip starting at `start`; loop-padded when it would run past the last frame."""
    idx = np.arange(start, num_frames, t_stride, dtype=np.int64)[:clip_length]
    return loop_pad(idx, clip_length)


def random_clip(num_frames: int, clip_length: int, t_stride: int, rng: np.random.Generator) -> np.ndarray:
    """A clip at a uniformly random start; every start in [0, num_frames - span] can be drawn."""
    last = _last_start(num_frames, clip_length, t_stride)
    return clip_at(int(rng.integers(0, last + 1)), num_frames, clip_length, t_stride)


def center_clip(num_frames: int, clip_length: int, t_stride: int = 1) -> np.ndarray:
    """The clip in the middle of the video (start rounded down)."""
    return clip_at(_last_start(num_frames, clip_length, t_stride) // 2, num_frames, clip_length, t_stride)


def even_starts(num_frames: int, clip_length: int, t_stride: int, num_clips: int) -> np.ndarray:
    """Starts of `num_clips` clips spread evenly from the first to the last possible start (1 clip: centred)."""
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    last = _last_start(num_frames, clip_length, t_stride)
    if num_clips == 1:
        return np.array([last // 2], dtype=np.int64)
    return np.floor(np.linspace(0, last, num_clips) + 0.5).astype(np.int64)


def even_clips(num_frames: int, clip_length: int, t_stride: int = 1, num_clips: int = 3) -> np.ndarray:
    """`num_clips` clips spread evenly over the video, shape (num_clips, clip_length)."""
    starts = even_starts(num_frames, clip_length, t_stride, num_clips)
    return np.stack([clip_at(int(s), num_frames, clip_length, t_stride) for s in starts])


def window_starts(num_frames: int, clip_length: int, t_stride: int = 1, window_stride: int | None = None) -> np.ndarray:
    """Starts of sliding windows every `window_stride` frames (default: the clip span, no overlap).

    When the regular windows stop short of the last frame, one more window ending exactly at the last frame
    covers the tail; no window is ever a repeat or a padded copy of another one.
    """
    span = clip_span(clip_length, t_stride)
    window_stride = span if window_stride is None else window_stride
    if window_stride < 1:
        raise ValueError(f"window_stride must be >= 1, got {window_stride}")
    last = _last_start(num_frames, clip_length, t_stride)
    starts = np.arange(0, last + 1, window_stride, dtype=np.int64)
    if starts[-1] != last:
        starts = np.append(starts, last)
    return starts


def sliding_windows(num_frames: int, clip_length: int, t_stride: int = 1,
                    window_stride: int | None = None) -> np.ndarray:
    """Every sliding-window clip of the video, shape (num_windows, clip_length); see `window_starts`."""
    starts = window_starts(num_frames, clip_length, t_stride, window_stride)
    return np.stack([clip_at(int(s), num_frames, clip_length, t_stride) for s in starts])


def uniform_segments(num_frames: int, num_segments: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """TSN sampling: split the video into `num_segments` equal parts and take one frame from each.

    With `rng` the frame is random within its part (training); without, it is the part's middle frame.
    """
    if num_frames < 1 or num_segments < 1:
        raise ValueError(f"need num_frames >= 1 and num_segments >= 1, got {num_frames} and {num_segments}")
    edges = np.arange(num_segments + 1) * num_frames / num_segments
    lo = np.floor(edges[:-1]).astype(np.int64)
    hi = np.maximum(np.floor(edges[1:]).astype(np.int64), lo + 1)  # [lo, hi) is never empty
    if rng is None:
        idx = (lo + hi - 1) // 2
    else:
        idx = lo + (rng.random(num_segments) * (hi - lo)).astype(np.int64)
    return np.minimum(idx, num_frames - 1)


def _last_start(num_frames: int, clip_length: int, t_stride: int) -> int:
    if num_frames < 1:
        raise ValueError(f"cannot sample a clip from {num_frames} frames")
    return max(0, num_frames - clip_span(clip_length, t_stride))


def _check(clip_length: int, t_stride: int) -> None:
    if clip_length < 1 or t_stride < 1:
        raise ValueError(f"clip_length and t_stride must be >= 1, got {clip_length} and {t_stride}")
