"""Pooled features per window and per video, written to .npy files or one HDF5 file, resumable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from resnet3d.data.transforms import EvalTransform
from resnet3d.data.video import VideoError
from resnet3d.inference.predict import InferenceModel, VideoOutput, Windowing, expected_clips, run_video
from resnet3d.errors import Resnet3dError
from resnet3d.io import atomic_path


@dataclass(frozen=True)
class VideoItem:
    """One video to process: the output key (unique, may contain '/'), the file and how to open it."""

    key: str
    path: str
    kind: str = "video"
    fps: float | None = None


@dataclass
class FeatureRun:
    """What an extraction did."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already done by an earlier run
    failed: list[str] = field(default_factory=list)  # "path: reason" lines


class NpyWriter:
    """OUT/<key>/{windows.npy (W, D), frames.npy (W, 2) [start, end), seconds.npy (W, 2), video.npy (D,)}.

    video.npy is written last, so its presence marks a finished video.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def done(self, key: str) -> bool:
        return (self.root / key / "video.npy").exists()

    def write(self, key: str, out: VideoOutput) -> None:
        folder = self.root / key
        arrays = {"windows": out.values.numpy().astype(np.float32), "frames": out.frames,
                  "seconds": _seconds(out), "video": out.values.mean(dim=0).numpy().astype(np.float32)}
        for name, array in arrays.items():  # dict order: video last
            with atomic_path(folder / f"{name}.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, array)

    def close(self) -> None:
        pass


class HDF5Writer:
    """One HDF5 file, one group per key with datasets windows, frames, seconds, video and attributes path, fps.

    The group's `complete` attribute is set last; an unfinished group left by a crash is replaced.
    """

    def __init__(self, path: str | Path):
        import h5py

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.file = h5py.File(path, "a")
        except OSError as e:
            raise Resnet3dError(f"{path}: cannot open as HDF5 for writing ({e})") from None

    def done(self, key: str) -> bool:
        return key in self.file and bool(self.file[key].attrs.get("complete", False))

    def write(self, key: str, out: VideoOutput) -> None:
        if key in self.file:
            del self.file[key]
        group = self.file.create_group(key)
        group.create_dataset("windows", data=out.values.numpy().astype(np.float32))
        group.create_dataset("frames", data=out.frames)
        group.create_dataset("seconds", data=_seconds(out))
        group.create_dataset("video", data=out.values.mean(dim=0).numpy().astype(np.float32))
        group.attrs["path"] = out.path
        group.attrs["fps"] = out.fps or float("nan")
        group.attrs["num_frames"] = out.num_frames
        group.attrs["complete"] = True
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _seconds(out: VideoOutput) -> np.ndarray:
    seconds = out.seconds
    return np.full(out.frames.shape, np.nan) if seconds is None else seconds.astype(np.float64)


def unique_keys(paths: Iterable[str | Path]) -> list[str]:
    """Output keys for video files: the file name without suffix, or the path below the common folder if names clash."""
    paths = [Path(os.path.abspath(p)) for p in paths]  # not resolve(): a folder of symlinks keeps the links' names
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    common = Path(os.path.commonpath([str(p.parent) for p in paths]))
    return [p.relative_to(common).with_suffix("").as_posix() for p in paths]


def check_key(key: str) -> str:
    """Reject keys that would write outside the output folder."""
    parts = Path(key).parts
    if not key or Path(key).is_absolute() or ".." in parts:
        raise Resnet3dError(f"video id {key!r} cannot be used as an output name (absolute or contains '..')")
    return key


def extract_features(model: InferenceModel, items: list[VideoItem], windowing: Windowing, transform: EvalTransform,
                     writer: NpyWriter | HDF5Writer, *, batch_size: int = 8, progress: bool = True) -> FeatureRun:
    """Features of every window of every item; videos the writer already has are skipped, broken ones reported."""
    from tqdm import tqdm

    run = FeatureRun()
    windows = 0
    done = [writer.done(check_key(item.key)) for item in items]
    to_do = done.count(False)
    bar = tqdm(items, desc="features", unit="video", disable=not progress, dynamic_ncols=True)
    for item, already in zip(bar, done):
        if already:
            run.skipped.append(item.key)
            continue
        to_do -= 1
        try:
            out = run_video(item.path, model, windowing, transform, batch_size=batch_size, kind=item.kind, fps=item.fps,
                            clips_after=expected_clips(windows, len(run.written), to_do))
        except VideoError as e:
            run.failed.append(str(e))
            bar.write(f"skipped: {e}")
            continue
        writer.write(item.key, out)
        run.written.append(item.key)
        windows += len(out.frames)
        bar.set_postfix(done=len(run.written), skipped=len(run.skipped), failed=len(run.failed))
    return run


def video_items(videos: list[str], fps: float | None = None, *, data: str | None = None, root: str | None = None,
                subset: str | None = None) -> list[VideoItem]:
    """The videos to extract: files (keyed by unique names) and/or an index's records (keyed by video id)."""
    from resnet3d.data.video import guess_kind

    items = [VideoItem(key, str(path), guess_kind(path), fps) for key, path in zip(unique_keys(videos), videos)]
    if data:
        from resnet3d.data.annotations import read_index

        index = read_index(data, videos=root, subset=subset or "training")
        if subset:
            index = index.subset(subset)
        items += [VideoItem(r.video_id, r.path, r.kind, r.fps) for r in index]
    if not items:
        raise Resnet3dError("no videos: give video files and/or --data INDEX")
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise Resnet3dError(f"two videos would be written under the same name {dup!r}")
    return items


def is_hdf5(out: Path) -> bool:
    """Whether `out` names one HDF5 file (else a folder of .npy files)."""
    return out.suffix.lower() in (".h5", ".hdf5")


def extract_to(out: Path, setup: Any, items: list[VideoItem], *, batch_size: int = 8, progress: bool = True) -> Any:
    """`resnet3d features`: extract every item with `setup` (an InferenceSetup) into `out` (HDF5 or .npy folders)."""
    writer = HDF5Writer(out) if is_hdf5(out) else NpyWriter(out)
    try:
        return extract_features(setup.model, items, setup.windowing, setup.transform, writer,
                                batch_size=batch_size, progress=progress)
    finally:
        writer.close()
