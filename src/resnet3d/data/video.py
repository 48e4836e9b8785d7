"""Frame sources behind one interface (`open_video`): video files (pyav_source.py), JPEG frame folders and HDF5
files (frames.py), optical flow (flow.py); live inputs are in stream.py.

Frame index i is the i-th frame that really decodes, in presentation order.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from resnet3d.errors import Resnet3dError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv",
                  ".ts", ".mts", ".m2ts", ".vob", ".mxf", ".asf")  # MPEG-TS: broadcast and camcorders (AVCHD)
_CACHE_SIZE = 2048


class VideoError(Resnet3dError):
    """A video that cannot be opened or decoded; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class StreamStall(VideoError):
    """A live input that delivered nothing for longer than its timeout."""


@dataclass(frozen=True)
class VideoInfo:
    """What the index of one video file holds: frame timestamps, keyframe positions and stream facts."""

    pts: np.ndarray        # presentation timestamps of the decodable frames, sorted; frame i has pts[i]
    keyframes: np.ndarray  # sorted frame indices that start a group of pictures
    fps: float
    codec: str
    time_base: float  # seconds per pts unit

    @property
    def num_frames(self) -> int:
        return len(self.pts)


class VideoSource:
    """Frames of one video, addressed by 0-based index. Use as a context manager."""

    path: str
    num_frames: int
    fps: float | None
    width: int
    height: int

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at `indices` (any order, repeats allowed) as uint8 (T, H, W, 3)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise ValueError(f"{self.path}: no frame indices to read")
        if idx.min() < 0 or idx.max() >= self.num_frames:
            raise IndexError(f"{self.path}: frame index out of range [0, {self.num_frames}): {idx.min()}..{idx.max()}")
        wanted = np.unique(idx)
        got = self._read_sorted(wanted)
        for i, frame in zip(wanted.tolist(), got):
            check_frame_size(self.path, i, frame, got[0], int(wanted[0]))
        if len(wanted) == len(idx) and np.array_equal(wanted, idx):
            return np.stack(got)
        pos = np.searchsorted(wanted, idx)
        return np.stack([got[p] for p in pos])

    @property
    def frame_pixels(self) -> int:
        """Pixels in one frame (width x height), for size estimates; video files tell it without decoding."""
        return self.width * self.height

    def frame_times(self) -> np.ndarray | None:
        """(num_frames + 1,) seconds from the first frame: each frame's start, then the end of the last one (None
        without a frame rate). Video files give their timestamps, so variable-rate (phone) videos are timed right."""
        return np.arange(self.num_frames + 1) / self.fps if self.fps else None

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Every frame in order as uint8 (H, W, 3), streamed (for long videos)."""
        for start in range(0, self.num_frames, 64):
            yield from self.read(np.arange(start, min(start + 64, self.num_frames)))

    def _read_sorted(self, wanted: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_frame_size(path: str, index: int, frame: np.ndarray, first: np.ndarray, first_index: int) -> None:
    """Raise a VideoError when frame `index` is not the size of frame `first_index` (a clip needs one size)."""
    if frame.shape[:2] != first.shape[:2]:
        raise VideoError(path, f"frame {index} is {frame.shape[1]}x{frame.shape[0]} but frame {first_index} is "
                               f"{first.shape[1]}x{first.shape[0]}: the frame size changes within the video")


def open_video(path: str | os.PathLike, kind: str | None = None, *, fps: float | None = None,
               threads: int | None = None) -> VideoSource:
    """Open a video file (`kind="video"`), a JPEG frame folder (`"frames"`), an HDF5 file (`"hdf5"`) or an HDF5
    optical-flow file (`"flow"`, frames (H, W, 2)); `kind=None` tells them apart with `guess_kind`.

    `fps` overrides the rate for frame folders and HDF5 files, which do not store one. `threads` is the decoder
    thread count (None: 1 inside DataLoader workers, FFmpeg's choice otherwise).
    """
    path = os.path.abspath(path)
    kind = kind or guess_kind(path)
    if kind == "video":
        from resnet3d.data.pyav_source import PyAVSource

        return PyAVSource(path, threads=threads)
    if kind in ("frames", "hdf5"):
        from resnet3d.data.frames import FrameFolderSource, HDF5Source

        return (FrameFolderSource if kind == "frames" else HDF5Source)(path, fps=fps)
    if kind == "flow":
        from resnet3d.data.flow import FlowHDF5Source

        return FlowHDF5Source(path, fps=fps)
    raise ValueError(f"unknown video kind {kind!r}; expected 'video', 'frames', 'hdf5' or 'flow'")


def guess_kind(path: str | os.PathLike) -> str:
    """'frames' for a folder, 'flow' or 'hdf5' for .h5/.hdf5 files (by their datasets), 'video' otherwise."""
    p = Path(path)
    if p.is_dir():
        return "frames"
    if p.suffix.lower() not in (".h5", ".hdf5"):
        return "video"
    from resnet3d.data.flow import is_flow_hdf5

    return "flow" if p.is_file() and is_flow_hdf5(p) else "hdf5"


# --------------------------------------------------------------------------------------------- video files

class _LRU(OrderedDict):
    def get_or(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        if len(self) > _CACHE_SIZE:
            self.popitem(last=False)
        return value


_INFO_CACHE = _LRU()


def _file_key(path: str) -> tuple:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VideoError(path, "file not found") from None
    except OSError as e:
        raise VideoError(path, f"cannot read ({e.strerror})") from None
    if not os.path.isfile(path):
        raise VideoError(path, "not a file")
    if st.st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    return path, st.st_size, st.st_mtime_ns


def _in_worker() -> bool:
    try:
        from torch.utils.data import get_worker_info
    except ImportError:
        return False
    return get_worker_info() is not None


def _rgb(frame) -> np.ndarray:
    # threads=1: swscale's own auto-threading makes conversion ~2.4x slower on a busy 2-core machine.
    return upright(frame.to_ndarray(format="rgb24", threads=1), display_turn(frame))


def display_turn(frame) -> tuple[int, bool]:
    """Quarter turns counter-clockwise, then whether to mirror, that show `frame` as its display matrix says.

    Phones store portrait video as landscape frames plus a rotation; ffmpeg (whose extracted frames the original
    trains on) turns them upright, and so do we. Matrices that are not a right angle are ignored.
    """
    from av.sidedata.sidedata import Type

    side = frame.side_data.get(Type.DISPLAYMATRIX)
    if side is None:
        return 0, False
    m = np.frombuffer(bytes(side), dtype=np.int32)[[0, 1, 3, 4]] / 65536.0  # 16.16 fixed point, row-major 3x3
    if not np.allclose(m, np.round(m), atol=1e-3) or abs(round(m[0] * m[3] - m[1] * m[2])) != 1:
        return 0, False
    mirror = m[0] * m[3] - m[1] * m[2] < 0
    a, c = (-m[0], -m[2]) if mirror else (m[0], m[2])
    return int(round(np.degrees(np.arctan2(c, a)) / 90)) % 4, bool(mirror)


def upright(rgb: np.ndarray, turn: tuple[int, bool]) -> np.ndarray:
    """`rgb` (H, W, C) turned `turn[0]` quarter turns counter-clockwise and then mirrored left-right if `turn[1]`."""
    quarters, mirror = turn
    if not quarters and not mirror:
        return rgb
    rgb = np.rot90(rgb, quarters)
    return np.ascontiguousarray(rgb[:, ::-1] if mirror else rgb)


def _stamp(obj) -> int | None:
    return obj.pts if obj.pts is not None else obj.dts


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e) or e.__class__.__name__

