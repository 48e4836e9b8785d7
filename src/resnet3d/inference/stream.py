"""Live prediction: a sliding window over a stream's last frames, scored as the frames arrive.

A window of `clip_length` frames `t_stride` apart is scored every `stride` frames, as soon as its last frame has
been decoded, so its starts are those of `predict` on the same frames (0, stride, 2 stride, ...). When the stream
ends (or a limit or a stall stops it) the windows `predict` would add on the finished video (the one ending on the
last frame, or a loop-padded one for a stream shorter than a clip) are scored from the frames still held.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from resnet3d.data import sampling
from resnet3d.data.transforms import EvalTransform
from resnet3d.data.video import StreamStall, VideoError
from resnet3d.inference.predict import Windowing, _round, topk_labels


@dataclass
class StreamEnd:
    """Why and where a stream stopped: 'ended', 'frame limit', 'duration limit' or the stall/decoding error."""

    reason: str = "ended"
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class LiveWindow:
    """One scored window: frame range [start, end), stream times of its first and last frame, scores, latency."""

    start: int
    end: int
    start_sec: float
    end_sec: float
    probs: torch.Tensor
    latency: float  # seconds from the arrival of the window's last frame to its scores

    def record(self, source: str, class_names: list[str], k: int) -> dict:
        """One JSONL line's content."""
        return {"source": source, "start_frame": self.start, "end_frame": self.end, "start_sec": _round(self.start_sec),
                "end_sec": _round(self.end_sec), "top": topk_labels(self.probs, class_names, k),
                "latency_ms": round(self.latency * 1000, 2)}


@dataclass
class _Held:
    """The last `span` frames (already shrunk) with their stream times and arrival clock times."""

    span: int
    frames: deque = field(default_factory=deque)
    count: int = 0  # frames seen so far

    def add(self, frame: np.ndarray, t: float, arrived: float) -> None:
        self.frames.append((frame, t, arrived))
        if len(self.frames) > self.span:
            self.frames.popleft()
        self.count += 1

    def clip(self, indices: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """Frames at absolute `indices` (all held), stream times of the first and last, and the last's arrival."""
        first = self.count - len(self.frames)
        picked = [self.frames[int(i) - first] for i in indices]
        last = max(picked, key=lambda p: p[2])  # the latest to arrive (a loop-padded clip repeats earlier frames)
        return np.stack([f for f, _, _ in picked]), picked[0][1], last[1], last[2]


def live_windows(frames: Iterable[tuple[np.ndarray, float]], windowing: Windowing, end: StreamEnd, *,
                 resize: Callable[[np.ndarray], np.ndarray] | None = None, max_frames: int | None = None,
                 duration: float | None = None) -> Iterator[tuple[int, int, np.ndarray, float, float, float]]:
    """Yield `(start, end, clip (T, H, W, 3), first time, last time, arrival)` as windows complete; fills `end`."""
    span, stride = windowing.span, windowing.stride or windowing.span
    held = _Held(span)
    done: set[int] = set()
    try:
        for frame, t in frames:
            if duration is not None and t >= duration:
                end.reason = "duration limit"
                break
            held.add(resize(frame) if resize is not None else frame, t, time.perf_counter())
            end.frames, end.seconds = held.count, t
            start = held.count - span
            if start >= 0 and start % stride == 0:
                done.add(start)
                yield (start, start + span, *held.clip(start + np.arange(windowing.clip_length) * windowing.t_stride))
            if max_frames is not None and held.count >= max_frames:
                end.reason = "frame limit"
                break
    except StreamStall as e:
        end.reason, end.error = "stalled", str(e)
    except VideoError as e:
        end.reason, end.error = "failed", str(e)
    if not held.count:
        return
    n = held.count
    for start in sampling.window_starts(n, windowing.clip_length, windowing.t_stride, windowing.stride).tolist():
        if start not in done:
            idx = sampling.clip_at(start, n, windowing.clip_length, windowing.t_stride)
            yield (start, min(start + span, n), *held.clip(idx))


def score_stream(windows: Iterable[tuple[int, int, np.ndarray, float, float, float]],
                 model: Callable[[torch.Tensor], torch.Tensor], transform: EvalTransform) -> Iterator[LiveWindow]:
    """Score each window alone as it comes (batch of one: live, not throughput)."""
    for start, end, clip, t0, t1, arrived in windows:
        probs = model(transform(clip)[None])[0]
        yield LiveWindow(start, end, t0, t1, probs, time.perf_counter() - arrived)


def latency_summary(windows: list[LiveWindow]) -> dict:
    """Mean, median and largest latency per window in milliseconds."""
    if not windows:
        return {"windows": 0}
    ms = np.array([w.latency for w in windows]) * 1000
    return {"windows": len(windows), "latency_ms_mean": round(float(ms.mean()), 2),
            "latency_ms_median": round(float(np.median(ms)), 2), "latency_ms_max": round(float(ms.max()), 2)}
