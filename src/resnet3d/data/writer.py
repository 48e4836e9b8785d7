"""Encode frames to a real video file with PyAV (used by synth, prepare, tests and the demo)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from resnet3d.io import atomic_path

# Container suffix -> default codec.
DEFAULT_CODECS = {".mp4": "libx264", ".mkv": "libx264", ".ts": "libx264", ".avi": "mpeg4", ".webm": "libvpx-vp9"}


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 25.0, *, codec: str | None = None,
                gop: int | None = None, crf: int = 18, bit_rate: int = 2_000_000,
                options: Mapping[str, str] | None = None) -> int:
    """Encode RGB uint8 frames (H, W, 3), all the same size, to `path` atomically; returns the frame count.

    `gop` is the keyframe interval (None: codec default). H.264 uses `crf` and the `veryfast` preset;
    other codecs use `bit_rate`. `options` are extra codec options, e.g. {"x264-params": "mbtree=0"}.
    """
    import av

    path = Path(path)
    codec = codec or DEFAULT_CODECS.get(path.suffix.lower(), "libx264")
    count = 0
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format=_container_format(path)) as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast", **({"g": str(gop), "keyint_min": str(gop)} if gop else {})}
        else:
            stream.bit_rate = bit_rate
            if gop:
                stream.gop_size = gop
        if options:
            stream.options = {**stream.options, **options}
        for frame in frames:
            if count == 0:
                stream.height, stream.width = frame.shape[:2]
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame, dtype=np.uint8), format="rgb24")
            out.mux(stream.encode(video_frame))
            count += 1
        out.mux(stream.encode())
    return count


def _container_format(path: Path) -> str:
    formats = {".mp4": "mp4", ".mkv": "matroska", ".avi": "avi", ".webm": "webm", ".mov": "mov", ".ts": "mpegts"}
    return formats.get(path.suffix.lower(), "mp4")
