"""Shared fixtures for the inference tests: tiny generated videos."""

import numpy as np
import pytest

from resnet3d.data.writer import write_video


def moving_square_frames(n: int, height: int = 36, width: int = 48, seed: int = 0) -> list[np.ndarray]:
    """`n` RGB frames of a bright square moving over a noisy background."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        f = rng.integers(0, 60, size=(height, width, 3), dtype=np.uint8)
        x = (3 * i) % (width - 10)
        f[10:20, x:x + 10] = (230, 200, 40)
        frames.append(f)
    return frames


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory):
    """A folder with a 45-frame and a 5-frame video at 15 fps, and a broken file."""
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "long.mp4", moving_square_frames(45), fps=15, gop=8)
    write_video(root / "short.mp4", moving_square_frames(5, seed=1), fps=15)
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    return root
