"""`resnet3d data doctor`: decode every video in parallel, say which are broken and why, write a cleaned index."""

from __future__ import annotations

import collections
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace

import numpy as np

from resnet3d.data.index import VideoIndex, VideoRecord
from resnet3d.data.pyav_source import PyAVSource
from resnet3d.data.video import VideoError, open_video


@dataclass
class VideoCheck:
    """What the doctor found out about one file."""

    path: str
    kind: str
    ok: bool
    reason: str = ""
    num_frames: int = 0
    header_frames: int | None = None
    fps: float | None = None
    width: int = 0
    height: int = 0
    codec: str = ""
    keyframe_interval: float | None = None
    duration_s: float | None = None


def check_video(path: str, kind: str = "video", full: bool = True) -> VideoCheck:
    """Open one video and (with `full`) decode every frame; never raises for a broken file."""
    try:
        with open_video(path, kind, threads=1) as src:
            check = VideoCheck(path, kind, True, num_frames=src.num_frames, fps=src.fps, width=src.width,
                               height=src.height)
            if isinstance(src, PyAVSource):
                check.codec = src.info.codec
                check.header_frames = src._stream.frames or None
                keys = src.info.keyframes
                check.keyframe_interval = float(src.num_frames / len(keys)) if len(keys) else None
            if full:
                count = sum(1 for _ in src.iter_frames())
                if count != src.num_frames:
                    raise VideoError(path, f"only {count} of {src.num_frames} frames decode")
            if check.fps:
                check.duration_s = round(check.num_frames / check.fps, 3)
            return check
    except VideoError as e:
        return VideoCheck(path, kind, False, reason=e.reason)
    except Exception as e:  # noqa: BLE001 - the doctor reports anything a file can do to a decoder
        return VideoCheck(path, kind, False, reason=f"{e.__class__.__name__}: {e}")


def _check_task(args: tuple[str, str, bool]) -> VideoCheck:
    return check_video(*args)


def diagnose(index: VideoIndex, jobs: int | None = None, full: bool = True,
             progress: bool = True) -> dict[str, VideoCheck]:
    """Check every distinct file of the index in `jobs` processes; returns path -> check."""
    from tqdm import tqdm

    tasks = list({(r.path, r.kind): None for r in index})
    jobs = max(1, jobs or os.cpu_count() or 1)
    bar = tqdm(total=len(tasks), desc="checking videos", unit="video", disable=not progress)
    results: dict[str, VideoCheck] = {}
    if jobs == 1:
        for path, kind in tasks:
            results[path] = check_video(path, kind, full)
            bar.update()
    else:
        with ProcessPoolExecutor(jobs) as pool:
            for check in pool.map(_check_task, [(p, k, full) for p, k in tasks], chunksize=4):
                results[check.path] = check
                bar.update()
    bar.close()
    return results


def cleaned_index(index: VideoIndex, checks: dict[str, VideoCheck]) -> VideoIndex:
    """Only the records whose file is fine, with the real frame count and fps filled in."""
    records: list[VideoRecord] = []
    for r in index:
        c = checks[r.path]
        if c.ok:
            records.append(replace(r, num_frames=c.num_frames, fps=r.fps or c.fps))
    return VideoIndex(list(index.classes), records)


def summary(checks: dict[str, VideoCheck]) -> dict:
    """Counts and ranges over all checks, plus the broken files by reason."""
    good = [c for c in checks.values() if c.ok]
    bad = [c for c in checks.values() if not c.ok]
    out: dict = {"videos": len(checks), "ok": len(good), "broken": len(bad),
                 "truncated": sum(1 for c in good if is_truncated(c)),
                 "broken_by_reason": dict(collections.Counter(_reason_kind(c.reason) for c in bad)),
                 "codecs": dict(collections.Counter(c.codec or c.kind for c in good))}
    if good:
        short = np.array([min(c.width, c.height) for c in good])
        frames = np.array([c.num_frames for c in good])
        gops = [c.keyframe_interval for c in good if c.keyframe_interval]
        out.update(short_side={"min": int(short.min()), "median": float(np.median(short)), "max": int(short.max())},
                   frames={"min": int(frames.min()), "median": float(np.median(frames)), "max": int(frames.max())},
                   keyframe_interval_median=float(np.median(gops)) if gops else None,
                   header_frame_count_wrong=sum(1 for c in good if c.header_frames and c.header_frames != c.num_frames))
    return out


def is_truncated(check: VideoCheck) -> bool:
    """The header promises more frames than decode: a cut-off file (usable, with its real frame count)."""
    return bool(check.ok and check.header_frames and check.header_frames > check.num_frames)


def advice(stats: dict) -> list[str]:
    """What to do about slow or broken data, in plain words."""
    tips = []
    if stats.get("broken"):
        tips.append(f"{stats['broken']} broken file(s) are left out of the cleaned index")
    if stats.get("truncated"):
        tips.append(f"{stats['truncated']} truncated file(s) are kept with the frames that decode; re-download them "
                    "for the full videos")
    gop = stats.get("keyframe_interval_median")
    if gop and gop > 32:
        tips.append(f"median keyframe interval is {gop:.0f} frames: `resnet3d data prepare --gop 16` makes random "
                    "access several times cheaper")
    short = stats.get("short_side", {}).get("median")
    if short and short > 256:
        tips.append(f"median short side is {short:.0f} px: `resnet3d data prepare --short-side 128` decodes much faster")
    return tips


def report(checks: dict[str, VideoCheck]) -> dict:
    """The full JSON report: summary, advice and one entry per file."""
    stats = summary(checks)
    return {"summary": stats, "advice": advice(stats), "videos": [asdict(c) for c in checks.values()]}


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0].split(":")[0]
