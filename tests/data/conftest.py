"""Shared fixtures for the data tests: tiny real videos made with PyAV, their frames, and broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from resnet3d.data.writer import write_video

from data_helpers import make_frames


@pytest.fixture(scope="session")
def frames() -> np.ndarray:
    return make_frames()


@pytest.fixture(scope="session")
def videos(tmp_path_factory, frames) -> dict[str, Path]:
    """H.264 MP4 (keyframe every 8), MPEG-4 AVI, H.264 MP4 with one keyframe only, H.264 MKV, H.264 MPEG-TS (keyframe
    every 8, and one keyframe only: it seeks by decoding time)."""
    root = tmp_path_factory.mktemp("videos")
    specs = {"h264.mp4": {"gop": 8}, "mpeg4.avi": {"gop": 12}, "longgop.mp4": {"gop": 250}, "h264.mkv": {"gop": 10},
             "h264.ts": {"gop": 8}, "longgop.ts": {"gop": 250}}
    out = {}
    for name, kw in specs.items():
        write_video(root / name, frames, fps=25, **kw)
        out[name] = root / name
    return out
