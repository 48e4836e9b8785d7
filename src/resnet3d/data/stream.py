"""Live inputs ('-', URLs, pipes, cameras): a background thread opens and decodes, frames come as they arrive."""

from __future__ import annotations

import os
import queue
import re
import stat
import threading
from typing import Iterator

import numpy as np

from resnet3d.data.video import StreamStall, VideoError, _reason, _rgb


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
        """(RGB uint8 (H, W, 3), seconds since the first frame) as decoded, until the stream ends; stalls raise.

        Frames keep the first frame's size: an adaptive stream that switches resolution is scaled back to it, so a
        window never mixes sizes and a long watch does not stop there.
        """
        first, size = None, None
        index = 0
        while (item := self._next("reading")) is not _END:
            frame, t = item
            if t is None:  # no timestamps: count frames at the nominal rate
                t = index / (self.fps or 1.0)
            first = t if first is None else first
            size = frame.shape[:2] if size is None else size
            if frame.shape[:2] != size:
                from PIL import Image

                frame = np.asarray(Image.fromarray(frame).resize(size[::-1], Image.BILINEAR))
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
