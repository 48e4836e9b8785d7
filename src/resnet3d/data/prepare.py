"""`resnet3d data prepare`: re-encode videos small with short keyframe intervals, extract JPEG frames / HDF5, or
compute optical flow (HDF5 `video_u` / `video_v`, see data/flow.py).

Every output is written atomically, so a run that is stopped can be started again and skips what is done.
Frame indices are unchanged (every decodable frame is kept), so segments in the index stay valid.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from resnet3d.data.index import VideoIndex, VideoRecord
from resnet3d.data.video import VideoError, open_video
from resnet3d.io import atomic_path

MODES = ("video", "frames", "hdf5", "flow")


@dataclass(frozen=True)
class PrepareOptions:
    """How to prepare: output kind, short side in pixels (None: keep; never enlarged), keyframe interval, quality,
    and for flow the clipping bound in pixels per frame."""

    mode: str = "video"
    short_side: int | None = 128
    gop: int = 16
    quality: int = 90
    crf: int = 20
    flow_bound: float = 20.0


def encode_jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    """RGB uint8 (H, W, 3) to JPEG bytes; simplejpeg when installed, Pillow otherwise."""
    try:
        import simplejpeg
    except ImportError:
        simplejpeg = None
    if simplejpeg is not None:
        return simplejpeg.encode_jpeg(np.ascontiguousarray(frame), quality=quality, colorspace="RGB")
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def output_path(record: VideoRecord, classes: list[str], out_dir: Path, mode: str) -> Path:
    """`out_dir/<label or 'test'>/<video_id>` plus .mp4 / .hdf5 (a folder for frames; flow is .hdf5 too), always
    inside `out_dir`."""
    folder = out_dir / (safe_name(classes[record.label]) if record.label >= 0 else "test")
    name = safe_name(Path(record.path).stem if record.kind != "frames" else Path(record.path).name)
    return folder / {"video": name + ".mp4", "frames": name, "hdf5": name + ".hdf5", "flow": name + ".hdf5"}[mode]


def safe_name(name: str) -> str:
    """`name` as a single file name: path separators and NUL become '_'; '', '.' and '..' get a '_' in front."""
    name = name.replace("/", "_").replace("\\", "_").replace("\0", "_")
    return "_" + name if name in ("", ".", "..") else name


def _resized(frames: Iterator[np.ndarray], short_side: int | None, even: bool) -> Iterator[np.ndarray]:
    from resnet3d.data.transforms import resize, short_side_size

    for f in frames:
        h, w = f.shape[:2]
        th, tw = short_side_size(h, w, short_side) if short_side and min(h, w) > short_side else (h, w)
        if even:  # yuv420p needs even sizes
            th, tw = max(2, th - th % 2), max(2, tw - tw % 2)
        yield resize(f[None], th, tw)[0] if (th, tw) != (h, w) else f


def prepare_one(src_path: str, kind: str, dst: str, opts: PrepareOptions) -> tuple[str, int | None, str]:
    """Convert one video; returns (dst, frame count or None when skipped as done, error reason or '')."""
    from resnet3d.data.writer import write_video

    dst_path = Path(dst)
    if dst_path.exists():
        return dst, None, ""
    try:
        with open_video(src_path, kind, threads=1) as src:
            fps = src.fps or 25.0
            frames = _resized(src.iter_frames(), opts.short_side, even=opts.mode == "video")
            if opts.mode == "video":
                n = write_video(dst_path, frames, fps=fps, gop=opts.gop, crf=opts.crf)
            elif opts.mode == "frames":
                n = _write_frame_folder(dst_path, frames, opts.quality)
            elif opts.mode == "flow":
                from resnet3d.data.flow import write_flow_hdf5

                n = write_flow_hdf5(dst_path, frames, opts.quality, fps, opts.flow_bound)
            else:
                n = _write_hdf5(dst_path, frames, opts.quality, fps)
        return dst, n, ""
    except VideoError as e:
        return dst, None, e.reason


def _write_frame_folder(dst: Path, frames: Iterator[np.ndarray], quality: int) -> int:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        n = 0
        for n, f in enumerate(frames, 1):
            (tmp / f"image_{n:05d}.jpg").write_bytes(encode_jpeg(f, quality))
        os.replace(tmp, dst)
        return n
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_hdf5(dst: Path, frames: Iterator[np.ndarray], quality: int, fps: float) -> int:
    blobs = [np.frombuffer(encode_jpeg(f, quality), dtype=np.uint8) for f in frames]
    write_jpeg_hdf5(dst, {"video": blobs}, {"fps": fps})
    return len(blobs)


def write_jpeg_hdf5(dst: str | os.PathLike, datasets: dict[str, list[np.ndarray]], attrs: dict) -> None:
    """Write the original's HDF5 layout atomically: each dataset a list of JPEG byte arrays (vlen uint8)."""
    import h5py

    with atomic_path(dst) as tmp, h5py.File(tmp, "w") as h:
        for name, blobs in datasets.items():
            data = h.create_dataset(name, (len(blobs),), dtype=h5py.vlen_dtype(np.uint8))
            for i, b in enumerate(blobs):
                data[i] = b
        h.attrs.update(attrs)


def _task(args: tuple) -> tuple[str, int | None, str]:
    return prepare_one(*args)


def prepare(index: VideoIndex, out_dir: str | Path, opts: PrepareOptions, jobs: int | None = None,
            progress: bool = True) -> tuple[VideoIndex, dict]:
    """Convert every distinct file in parallel; returns the index of the outputs and counts (done/skipped/failed)."""
    from tqdm import tqdm

    if opts.mode not in MODES:
        raise ValueError(f"unknown mode {opts.mode!r}; expected one of {list(MODES)}")
    out_dir = Path(out_dir).resolve()
    targets = {r.path: (r.kind, str(output_path(r, index.classes, out_dir, opts.mode))) for r in index}
    tasks = [(p, kind, dst, opts) for p, (kind, dst) in targets.items()]
    results: dict[str, tuple[str, int | None, str]] = {}
    jobs = max(1, jobs or os.cpu_count() or 1)
    with tqdm(total=len(tasks), desc=f"preparing ({opts.mode})", unit="video", disable=not progress) as bar:
        if jobs == 1:
            outs = map(_task, tasks)
        else:
            pool = ProcessPoolExecutor(jobs)
            outs = pool.map(_task, tasks, chunksize=2)
        for (path, *_), out in zip(tasks, outs):
            results[path] = out
            bar.update()
        if jobs > 1:
            pool.shutdown()
    counts = {"converted": 0, "already_done": 0, "failed": 0}
    failures = []
    records = []
    for r in index:
        dst, n, reason = results[r.path]
        if reason:
            failures.append(f"{r.path}: {reason}")
            continue
        records.append(replace(r, path=dst, kind=opts.mode, num_frames=n if n is not None else r.num_frames))
    for dst, n, reason in results.values():
        counts["failed" if reason else "converted" if n is not None else "already_done"] += 1
    counts["failures"] = failures
    return VideoIndex(list(index.classes), records), counts
