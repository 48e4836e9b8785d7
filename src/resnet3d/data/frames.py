"""JPEG frame folders and HDF5 files of encoded frames, read through the `VideoSource` interface."""

from __future__ import annotations

import os
import re

import numpy as np

from resnet3d.data.video import VideoError, VideoSource, _file_key, _LRU

_FRAME_NAME = re.compile(r"^(?:image|img|frame)_?(\d+)\.(?:jpg|jpeg|png)$", re.IGNORECASE)


def decode_jpeg(data: bytes, where: str) -> np.ndarray:
    """JPEG (or PNG) bytes to RGB uint8 (H, W, 3); simplejpeg when installed, Pillow otherwise."""
    try:
        import simplejpeg
    except ImportError:
        simplejpeg = None
    if simplejpeg is not None and data[:2] == b"\xff\xd8":
        try:
            return simplejpeg.decode_jpeg(data, colorspace="RGB")
        except ValueError:
            pass  # let Pillow try (and name the problem)
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise VideoError(where, f"not a decodable image ({e.__class__.__name__})") from None


_FOLDER_CACHE = _LRU()


def _list_frames(path: str) -> list[str]:
    try:
        mtime = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        raise VideoError(path, "frame folder not found") from None

    def scan() -> list[str]:
        numbered = {}
        for entry in os.scandir(path):
            m = _FRAME_NAME.match(entry.name)
            if m:
                numbered[int(m.group(1))] = entry.name
        if not numbered:
            raise VideoError(path, "no frame images (expected image_00001.jpg, image_00002.jpg, ...)")
        first = min(numbered)
        names = []
        while first + len(names) in numbered:  # frames up to the first gap
            names.append(numbered[first + len(names)])
        return names

    if not os.path.isdir(path):
        raise VideoError(path, "not a frame folder")
    return _FOLDER_CACHE.get_or((path, mtime), scan)


class _ImageSource(VideoSource):
    """Sources that store one image per frame; the frame size is read from the first frame when asked."""

    def _load(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def _read_sorted(self, wanted: np.ndarray) -> list[np.ndarray]:
        return [self._load(int(i)) for i in wanted]

    @property
    def height(self) -> int:
        return self._load(0).shape[0]

    @property
    def width(self) -> int:
        return self._load(0).shape[1]


class FrameFolderSource(_ImageSource):
    """The original's layout: a folder of image_00001.jpg, image_00002.jpg, ... (1-based on disk, 0-based here)."""

    def __init__(self, path: str, fps: float | None = None):
        self.path = path
        self._names = _list_frames(path)
        self.num_frames = len(self._names)
        self.fps = fps

    def _load(self, i: int) -> np.ndarray:
        file = os.path.join(self.path, self._names[i])
        try:
            with open(file, "rb") as f:
                data = f.read()
        except OSError as e:
            raise VideoError(file, f"cannot read ({e.strerror})") from None
        return decode_jpeg(data, file)


def open_hdf5(path: str):
    """An HDF5 file opened for reading (h5py.File), or a `VideoError` naming it."""
    import h5py

    _file_key(path)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise VideoError(path, f"not a readable HDF5 file ({e})") from None


class HDF5Source(_ImageSource):
    """The original's HDF5 layout: one file per video, dataset `video` holding one JPEG byte string per frame."""

    def __init__(self, path: str, fps: float | None = None):
        self.path = path
        self._file = open_hdf5(path)
        if "video" not in self._file:
            found = sorted(self._file.keys())
            self._file.close()
            raise VideoError(path, f"no 'video' dataset (found {found})")
        self._data = self._file["video"]
        self.num_frames = len(self._data)
        if self.num_frames == 0:
            self._file.close()
            raise VideoError(path, "no frames in the 'video' dataset")
        stored = self._file.attrs.get("fps")
        self.fps = fps if fps is not None else (float(stored) if stored is not None else None)

    def _load(self, i: int) -> np.ndarray:
        try:
            data = self._data[i]
        except (OSError, ValueError) as e:
            raise VideoError(self.path, f"frame {i} unreadable ({e})") from None
        return decode_jpeg(np.asarray(data, dtype=np.uint8).tobytes(), f"{self.path}[video][{i}]")

    def close(self) -> None:
        self._file.close()
