"""Video files decoded on the fly with PyAV.

The frame index is built once per file (and cached per process) from the packet timestamps, and its tail is
checked by decoding the last group of pictures, because the frame count in a container header is wrong for
truncated files.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from resnet3d.data.video import (_INFO_CACHE, VideoError, VideoInfo, VideoSource, _file_key, _in_worker, _reason,
                                 _rgb, _stamp, check_frame_size)


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
        self._size: tuple[int, int] | None = None

    def frame_times(self) -> np.ndarray | None:
        """Seconds from the first frame by the frame timestamps (see `VideoSource.frame_times`); the last frame
        lasts one frame at the average rate."""
        info = self.info
        if not info.time_base or not info.fps:
            return super().frame_times()
        starts = (info.pts - info.pts[0]) * info.time_base
        return np.append(starts, starts[-1] + 1 / info.fps)

    @property
    def frame_pixels(self) -> int:
        """Pixels in one frame from the stream header: a display rotation does not change them."""
        ctx = self._stream.codec_context
        return ctx.width * ctx.height

    @property
    def width(self) -> int:
        """Frame width as decoded frames have it (after the display rotation)."""
        return self._upright_size()[0]

    @property
    def height(self) -> int:
        """Frame height as decoded frames have it (after the display rotation)."""
        return self._upright_size()[1]

    def _upright_size(self) -> tuple[int, int]:
        # The rotation is only known from a decoded frame; decode the first one only when the size is asked for.
        if self._size is None:
            height, width = self.read([0])[0].shape[:2]
            self._size = width, height
        return self._size

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
                    if keys and t < keys[-1]:
                        raise VideoError(self.path, self._restart_reason(keys[-1], t))
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
        return VideoInfo(pts=pts, keyframes=keyframes, fps=fps, codec=stream.codec_context.name,
                         time_base=float(stream.time_base or 0))

    def _restart_reason(self, before: int, after: int) -> str:
        """Why a file whose keyframe timestamps go back cannot be indexed (frames are found by timestamp)."""
        tb = float(self._stream.time_base or 0)
        return (f"timestamps start again ({after * tb:.2f} s after {before * tb:.2f} s: files joined end to end?); "
                "remux it first, e.g. ffmpeg -i IN -c copy OUT.mp4")

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
            decoded = self._decode_stamps_covering(pts, keyframes, first)
            decoded = decoded[decoded >= pts[first]]
            if len(decoded):
                last = int(np.searchsorted(pts, decoded.max(), side="right"))
                return pts[:last], keyframes[keyframes < last]
            pts = pts[:first]
            keyframes = keyframes[:-1]
            if not len(pts) or not len(keyframes):
                break
        raise VideoError(self.path, "no decodable video frames")

    def _decode_stamps_covering(self, pts: np.ndarray, keyframes: np.ndarray, first: int) -> np.ndarray:
        """Timestamps decoded from a seek that lands at or before frame `first`; a seek that lands after it (MPEG-TS
        seeks by decoding time, and can land a group of pictures late) is retried from up to 3 keyframes earlier."""
        decoded = np.empty(0, dtype=np.int64)
        for k in keyframes[keyframes <= first][::-1][:4].tolist():
            decoded = self._decode_stamps_from(int(pts[k]) if k else min(int(pts[0]), 0))
            if len(decoded) and decoded.min() <= pts[first]:
                break
        return decoded

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
                    self._seek(0 if from_start else key)
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

    def _seek(self, index: int) -> None:
        """Seek to the keyframe of frame `index`; to the file's start for the first one."""
        # Not pts[0] for the first: MPEG-TS seeks by decoding time, and the first frame's dts is below its pts.
        target = int(self.info.pts[index]) if index > 0 else min(int(self.info.pts[0]), 0)
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)

    def iter_frames(self) -> Iterator[np.ndarray]:
        import av

        try:
            self._seek(0)
            expected, first = 0, None
            for frame in self._container.decode(self._stream):
                i = self._index_of(frame)
                if i < expected:
                    continue
                if i > expected:
                    raise VideoError(self.path, f"frame {expected} of {self.num_frames} did not decode")
                rgb = _rgb(frame)
                first = rgb if first is None else first
                check_frame_size(self.path, i, rgb, first, 0)
                yield rgb
                expected += 1
                if expected == self.num_frames:
                    return
        except av.error.FFmpegError as e:
            raise VideoError(self.path, f"decoding failed ({_reason(e)})") from None
        if expected < self.num_frames:
            raise VideoError(self.path, f"frame {expected} of {self.num_frames} did not decode")


class _Missing(Exception):
    pass
