"""Frame sources behind one interface: video files decoded on the fly (PyAV), JPEG frame folders, HDF5 files.

Frame index i is the i-th frame that really decodes, in presentation order. For video files the index is built
once per file (and cached per process) from the packet timestamps, and its tail is checked by decoding the last
group of pictures, because the frame count in a container header is wrong for truncated files.
"""

from __future__ import annotations

import os
import queue
import re
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from resnet3d.errors import Resnet3dError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv")
_FRAME_NAME = re.compile(r"^(?:image|img|frame)_?(\d+)\.(?:jpg|jpeg|png)$", re.IGNORECASE)
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
    width: int
    height: int
    codec: str

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
        if len(wanted) == len(idx) and np.array_equal(wanted, idx):
            return np.stack(got)
        pos = np.searchsorted(wanted, idx)
        return np.stack([got[p] for p in pos])

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


def open_video(path: str | os.PathLike, kind: str = "video", *, fps: float | None = None,
               threads: int | None = None) -> VideoSource:
    """Open a video file (`kind="video"`), a JPEG frame folder (`"frames"`), an HDF5 file (`"hdf5"`) or an HDF5
    optical-flow file (`"flow"`, frames (H, W, 2)).

    `fps` overrides the rate for frame folders and HDF5 files, which do not store one. `threads` is the decoder
    thread count (None: 1 inside DataLoader workers, FFmpeg's choice otherwise).
    """
    path = os.path.abspath(path)
    if kind == "video":
        return PyAVSource(path, threads=threads)
    if kind == "frames":
        return FrameFolderSource(path, fps=fps)
    if kind == "hdf5":
        return HDF5Source(path, fps=fps)
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
    return frame.to_ndarray(format="rgb24", threads=1)


def _stamp(obj) -> int | None:
    return obj.pts if obj.pts is not None else obj.dts


class PyAVSource(VideoSource):
    """A video file decoded on the fly: seek to the keyframe before the wanted frames, decode only what is needed."""

    def __init__(self, path: str, threads: int | None = None):
        import av

        self.path = path
        key = _file_key(path)
        try:
            self._container = av.open(path, metadata_errors="ignore")
        except av.error.FFmpegError as e:
            raise VideoError(path, f"not a readable video ({_reason(e)})") from None
        try:
            if not self._container.streams.video:
                raise VideoError(path, "no video stream (not a video, or truncated before the stream header)")
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "SLICE"
            self._stream.thread_count = threads if threads is not None else (1 if _in_worker() else 0)
            self.info = _INFO_CACHE.get_or(key, lambda: self._build_info())
        except BaseException:
            self._container.close()
            raise
        self.num_frames = self.info.num_frames
        self.fps = self.info.fps
        self.width, self.height = self.info.width, self.info.height

    def close(self) -> None:
        self._container.close()

    def _build_info(self) -> VideoInfo:
        import av

        stream = self._stream
        stamps: list[int] = []
        keys: list[int] = []
        damaged = False
        try:
            for packet in self._container.demux(stream):
                t = _stamp(packet)
                damaged |= packet.is_corrupt
                if packet.size == 0 or t is None or packet.is_corrupt or getattr(packet, "is_discard", False):
                    continue
                stamps.append(t)
                if packet.is_keyframe:
                    keys.append(t)
        except av.error.FFmpegError:
            damaged = True  # truncated or damaged tail: keep the packets read so far
        if not stamps:
            raise VideoError(self.path, "no decodable video frames")
        pts = np.unique(np.asarray(stamps, dtype=np.int64))
        keyframes = np.unique(np.searchsorted(pts, np.asarray(keys or [pts[0]], dtype=np.int64)))
        keyframes = np.union1d(keyframes, [0])
        if damaged or not self._ends_as_declared(pts):
            pts, keyframes = self._check_tail(pts, keyframes)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if fps <= 0 and len(pts) > 1 and stream.time_base:
            fps = float((len(pts) - 1) / ((pts[-1] - pts[0]) * stream.time_base))
        ctx = stream.codec_context
        return VideoInfo(pts=pts, keyframes=keyframes, fps=fps, width=ctx.width, height=ctx.height, codec=ctx.name)

    def _ends_as_declared(self, pts: np.ndarray) -> bool:
        """True when the packets end where the header says the video ends, so the tail need not be decoded."""
        stream = self._stream
        if stream.frames:
            return stream.frames == len(pts)
        if self._container.duration is None or not stream.time_base or len(pts) < 2:
            return False
        step = float(np.median(np.diff(pts))) * float(stream.time_base)
        start = (self._container.start_time or 0) / 1e6
        return float(pts[-1] * stream.time_base) + 2 * step >= start + self._container.duration / 1e6

    def _check_tail(self, pts: np.ndarray, keyframes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Drop trailing frames that do not decode, walking back one group of pictures at a time."""
        for _ in range(4):
            first = int(keyframes[-1])
            decoded = self._decode_stamps_from(int(pts[first]))
            decoded = decoded[decoded >= pts[first]]
            if len(decoded):
                last = int(np.searchsorted(pts, decoded.max(), side="right"))
                return pts[:last], keyframes[keyframes < last]
            pts = pts[:first]
            keyframes = keyframes[:-1]
            if not len(pts) or not len(keyframes):
                break
        raise VideoError(self.path, "no decodable video frames")

    def _decode_stamps_from(self, start: int) -> np.ndarray:
        import av

        out: list[int] = []
        try:
            self._container.seek(start, stream=self._stream, backward=True, any_frame=False)
            for frame in self._container.decode(self._stream):
                t = _stamp(frame)
                if t is not None:
                    out.append(t)
        except av.error.FFmpegError:
            pass
        return np.asarray(out, dtype=np.int64)

    def _index_of(self, frame) -> int:
        t = _stamp(frame)
        if t is None:
            return -1
        pts = self.info.pts
        i = int(np.searchsorted(pts, t))
        if i < len(pts) and pts[i] == t:
            return i
        if i == 0:
            return -1  # before the first indexed frame
        if i == len(pts):
            return i  # after the last one (e.g. a frame from a corrupt packet at the end)
        # A timestamp the demuxer did not report: take the nearest frame.
        if t - pts[i - 1] < pts[i] - t:
            return i - 1
        return i

    def _read_sorted(self, wanted: np.ndarray) -> list[np.ndarray]:
        try:
            return self._decode(wanted, from_start=False)
        except _Missing:
            pass  # the seek landed after the wanted frame (imprecise index): decode from the start instead
        try:
            return self._decode(wanted, from_start=True)
        except _Missing as e:
            raise VideoError(self.path, f"frame {e.args[0]} of {self.num_frames} did not decode") from None

    def _decode(self, wanted: np.ndarray, from_start: bool) -> list[np.ndarray]:
        import av

        keyframes = self.info.keyframes
        out: list[np.ndarray] = []
        frames = None
        pos = -1  # index of the last frame the running decoder produced
        try:
            for target in wanted.tolist():
                key = int(keyframes[np.searchsorted(keyframes, target, side="right") - 1])
                if frames is None or target <= pos or (key > pos + 1 and not from_start):
                    start = 0 if from_start else key
                    self._container.seek(int(self.info.pts[start]), stream=self._stream, backward=True, any_frame=False)
                    frames = self._container.decode(self._stream)
                    pos = -1
                for frame in frames:
                    i = self._index_of(frame)
                    if i < target:
                        pos = max(pos, i)
                        continue
                    if i > target:
                        raise _Missing(target)
                    out.append(_rgb(frame))
                    pos = i
                    break
                else:
                    raise _Missing(target)
        except av.error.FFmpegError as e:
            raise VideoError(self.path, f"decoding failed ({_reason(e)})") from None
        return out

    def iter_frames(self) -> Iterator[np.ndarray]:
        import av

        try:
            # Not pts[0]: MPEG-TS seeks by decoding time, and the first frame's dts is below its pts.
            self._container.seek(min(int(self.info.pts[0]), 0), stream=self._stream, backward=True, any_frame=False)
            expected = 0
            for frame in self._container.decode(self._stream):
                i = self._index_of(frame)
                if i < expected:
                    continue
                if i > expected:
                    raise VideoError(self.path, f"frame {expected} of {self.num_frames} did not decode")
                yield _rgb(frame)
                expected += 1
                if expected == self.num_frames:
                    return
        except av.error.FFmpegError as e:
            raise VideoError(self.path, f"decoding failed ({_reason(e)})") from None
        if expected < self.num_frames:
            raise VideoError(self.path, f"frame {expected} of {self.num_frames} did not decode")


class _Missing(Exception):
    pass


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e) or e.__class__.__name__


# --------------------------------------------------------------------------------------------- JPEG frames

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


class HDF5Source(_ImageSource):
    """The original's HDF5 layout: one file per video, dataset `video` holding one JPEG byte string per frame."""

    def __init__(self, path: str, fps: float | None = None):
        import h5py

        self.path = path
        _file_key(path)
        try:
            self._file = h5py.File(path, "r")
        except OSError as e:
            raise VideoError(path, f"not a readable HDF5 file ({e})") from None
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


# --------------------------------------------------------------------------------------------- live streams

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_END = object()  # the decoder's end-of-stream marker


def is_stream(path: str | os.PathLike) -> bool:
    """True for inputs read as they arrive: '-' (standard input), URLs, named pipes and devices (/dev/video0)."""
    text = str(path)
    if text == "-" or _URL.match(text):
        return True
    try:
        mode = os.stat(text).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


class StreamSource:
    """A live input opened and decoded as it arrives by a background thread: `frames()` yields frames with times.

    `timeout` bounds the wait for the stream to open and any gap between two frames: a longer wait is a stall,
    raised as `VideoError`. Use as a context manager; closing stops the decoder.
    """

    def __init__(self, path: str, *, timeout: float = 10.0, fps: float | None = None):
        self.path = path
        self.timeout = timeout
        self._container = None
        self._queue: queue.Queue = queue.Queue(maxsize=64)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, name=f"decode {path}", daemon=True)
        self._thread.start()
        try:
            rate = self._next("opening")
        except VideoError:
            self.close()
            raise
        self.fps = fps or rate

    def _decode(self) -> None:
        import av

        url = "pipe:0" if self.path == "-" else self.path
        fmt = "v4l2" if self.path.startswith("/dev/video") else None
        try:
            self._container = av.open(url, format=fmt, timeout=self.timeout, metadata_errors="ignore")
            if not self._container.streams.video:
                raise VideoError(self.path, "no video stream")
            stream = self._container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            self._put(float(rate) if rate else None)
            for frame in self._container.decode(stream):
                if not self._put((_rgb(frame), frame.time)):
                    return
            self._put(_END)
        except VideoError as e:
            self._put(e)
        except (av.error.FFmpegError, OSError) as e:
            self._put(VideoError(self.path, f"cannot read the stream ({_reason(e)})"))

    def _next(self, doing: str) -> object:
        try:
            item = self._queue.get(timeout=self.timeout)
        except queue.Empty:
            raise StreamStall(self.path, f"stream stalled: nothing for {self.timeout:g} s while {doing}") from None
        if isinstance(item, VideoError):
            raise item
        return item

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def frames(self) -> Iterator[tuple[np.ndarray, float]]:
        """(RGB uint8 (H, W, 3), seconds since the first frame) as decoded, until the stream ends; stalls raise."""
        first = None
        index = 0
        while (item := self._next("reading")) is not _END:
            frame, t = item
            if t is None:  # no timestamps: count frames at the nominal rate
                t = index / (self.fps or 1.0)
            first = t if first is None else first
            yield frame, t - first
            index += 1

    def close(self) -> None:
        """Stop the decoder; the container is closed once the decoder thread has let go of it."""
        self._stop.set()
        self._thread.join(timeout=1.0)
        if not self._thread.is_alive() and self._container is not None:
            self._container.close()  # else the thread is blocked in a read of a silent pipe: it holds it until exit

    def __enter__(self) -> "StreamSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_stream(path: str | os.PathLike, *, timeout: float = 10.0, fps: float | None = None) -> StreamSource:
    """Open a live input: '-' for standard input, any URL PyAV reads (rtsp, http, udp, tcp), a pipe or a camera."""
    return StreamSource(str(path), timeout=timeout, fps=fps)
