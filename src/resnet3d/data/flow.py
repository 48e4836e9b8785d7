"""Dense optical flow (OpenCV Farneback), quantised like the two-stream papers, in the original's HDF5 layout.

A flow file holds datasets `video_u` and `video_v`: one greyscale JPEG per flow frame, as variable-length uint8
arrays (what the original's `VideoLoaderFlowHDF5` reads). Flow frame i is the motion from frame i to frame i + 1,
so a video of N frames has N - 1 flow frames. Each component is clipped to +-bound pixels per frame and mapped
linearly to 0..255 (0 px -> 127.5), the TSN / I3D convention.
"""

from __future__ import annotations

import io
import os
from typing import Iterator

import numpy as np

from resnet3d.data.index import VideoIndex
from resnet3d.data.frames import _ImageSource, open_hdf5
from resnet3d.data.video import VideoError
from resnet3d.errors import Resnet3dError

FLOW_BOUND = 20.0
FLOW_DATASETS = ("video_u", "video_v")


def farneback(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """Dense flow (H, W, 2) float32 in pixels from one uint8 grey frame to the next (u: right, v: down)."""
    import cv2

    return cv2.calcOpticalFlowFarneback(prev, nxt, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3,
                                        poly_n=5, poly_sigma=1.2, flags=0)


def quantize(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Pixels clipped to [-bound, bound], mapped linearly to uint8 0..255."""
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))
    return np.round(scaled).astype(np.uint8)


def dequantize(q: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Inverse of `quantize` (up to its rounding): uint8 to pixels, float32."""
    return q.astype(np.float32) * (2 * bound / 255.0) - bound


def flow_frames(frames: Iterator[np.ndarray], bound: float = FLOW_BOUND) -> Iterator[np.ndarray]:
    """Quantised flow (H, W, 2) uint8 between each pair of consecutive RGB frames (N frames give N - 1)."""
    import cv2

    prev = None
    for frame in frames:
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if prev is not None:
            yield quantize(farneback(prev, grey), bound)
        prev = grey


def _encode_grey(plane: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(plane), mode="L").save(buf, format="JPEG", quality=quality)
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


def write_flow_hdf5(dst: str | os.PathLike, frames: Iterator[np.ndarray], quality: int, fps: float,
                    bound: float = FLOW_BOUND) -> int:
    """Compute the flow of RGB `frames` and write it atomically as `video_u` / `video_v`; returns the flow frames."""
    from resnet3d.data.prepare import write_jpeg_hdf5

    us, vs = [], []
    for f in flow_frames(frames, bound):
        us.append(_encode_grey(f[..., 0], quality))
        vs.append(_encode_grey(f[..., 1], quality))
    if not us:
        raise VideoError(dst, "a video needs at least 2 frames for optical flow")
    write_jpeg_hdf5(dst, {"video_u": us, "video_v": vs}, {"fps": fps, "flow_bound": bound})
    return len(us)


def is_flow_hdf5(path: str | os.PathLike) -> bool:
    """True for an HDF5 file with `video_u` or `video_v` and no `video` dataset (False if unreadable)."""
    import h5py

    try:
        with h5py.File(path, "r") as h:
            keys = set(h.keys())
    except OSError:
        return False
    return "video" not in keys and bool(keys & set(FLOW_DATASETS))


class FlowHDF5Source(_ImageSource):
    """A flow file: frame i is (H, W, 2) uint8, u then v (the original's flow clip before its PickFirstChannels)."""

    channels = 2

    def __init__(self, path: str, fps: float | None = None):
        self.path = path
        self._file = open_hdf5(path)
        try:
            self._u, self._v = self._components()
        except BaseException:
            self._file.close()
            raise
        self.num_frames = len(self._u)
        stored = self._file.attrs.get("fps")
        self.fps = fps if fps is not None else (float(stored) if stored is not None else None)

    def _components(self) -> tuple:
        found = sorted(self._file.keys())
        missing = [k for k in FLOW_DATASETS if k not in self._file]
        if missing:
            raise VideoError(self.path, f"optical flow needs datasets {list(FLOW_DATASETS)}; {missing[0]!r} is "
                                        f"missing (found {found})")
        u, v = (self._file[k] for k in FLOW_DATASETS)
        if len(u) != len(v):
            raise VideoError(self.path, f"'video_u' has {len(u)} frames but 'video_v' has {len(v)}; they must match")
        if len(u) == 0:
            raise VideoError(self.path, "no frames in 'video_u' / 'video_v'")
        return u, v

    def _plane(self, data, name: str, i: int) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        where = f"{self.path}[{name}][{i}]"
        try:
            blob = np.asarray(data[i], dtype=np.uint8).tobytes()
            with Image.open(io.BytesIO(blob)) as im:
                return np.asarray(im.convert("L"))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise VideoError(where, f"not a decodable image ({e.__class__.__name__})") from None

    def _load(self, i: int) -> np.ndarray:
        u, v = self._plane(self._u, "video_u", i), self._plane(self._v, "video_v", i)
        if u.shape != v.shape:
            raise VideoError(self.path, f"flow frame {i}: 'video_u' is {u.shape} but 'video_v' is {v.shape}")
        return np.stack([u, v], axis=-1)

    def close(self) -> None:
        self._file.close()


def index_channels(index: VideoIndex) -> int:
    """Input channels of an index's videos: 2 when they are optical flow, 3 (RGB) otherwise."""
    kinds = {r.kind for r in index.records}
    if "flow" in kinds and len(kinds) > 1:
        raise Resnet3dError(f"the index mixes optical flow and RGB videos (kinds {sorted(kinds)}); use one per index")
    first = index.records[0]
    return 2 if first.kind == "flow" or (first.kind == "hdf5" and is_flow_hdf5(first.path)) else 3
