"""Shared fixtures for the inference tests: tiny generated videos."""

import numpy as np
import pytest

from resnet3d.data.writer import write_video

from inference_helpers import CLASSES, save_tiny_checkpoint


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


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A resnet10 (widen 0.125, 3 classes, 8-frame 32x32 clips) saved as a resnet3d checkpoint."""
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pth", seed=0)


@pytest.fixture(scope="session")
def tiny_index(tmp_path_factory):
    """A resnet3d index of 6 labelled validation videos (12-33 frames, 15 fps) over CLASSES."""
    from resnet3d.data.index import VideoIndex, VideoRecord

    root = tmp_path_factory.mktemp("dataset")
    records = []
    for c, name in enumerate(CLASSES):
        for i in range(2):
            path = root / f"{name}_{i}.mp4"
            write_video(path, moving_square_frames(12 + 7 * i + 4 * c, seed=10 * c + i), fps=15)
            records.append(VideoRecord(f"{name}_{i}", str(path), label=c, subset="validation"))
    VideoIndex(CLASSES, records).save(root / "index.json")
    return root / "index.json"
