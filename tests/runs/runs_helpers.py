"""Helpers for the run-folder tests: a few tiny videos, a seconds-long training command line, file snapshots."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from resnet3d.data.index import VideoIndex, VideoRecord
from resnet3d.data.writer import write_video

CLASSES = ["red", "green", "blue"]


def make_videos(folder: Path, per_class: dict[str, int], frames: int = 8, size: int = 24) -> Path:
    """Noisy videos whose class is their dominant colour; returns the index file."""
    rng = np.random.default_rng(0)
    records = []
    for subset, count in per_class.items():
        for label, name in enumerate(CLASSES):
            for k in range(count):
                tint = np.eye(3)[label] * 160 + 40
                clip = tint * rng.uniform(0.6, 1.0) + rng.normal(0, 30, size=(frames, size, size, 3))
                path = folder / f"{subset}_{name}_{k}.avi"
                write_video(path, np.clip(clip, 0, 255).astype(np.uint8), fps=10, gop=4)
                records.append(VideoRecord(f"{subset}_{name}_{k}", str(path), label, subset))
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "index.json"
    VideoIndex(list(CLASSES), records).save(index)
    return index


def tiny_overrides(index: str | Path, out: str | Path, *extra: str) -> list[str]:
    """`key=value` overrides for a one-epoch ResNet-10 at 1/8 width on 4x16x16 clips (2 steps per epoch)."""
    return [f"data.index={index}", "model.arch=resnet10", "model.options={widen_factor: 0.125}", "data.input_size=16",
            "data.clip_length=4", "data.batch_size=3", "data.workers=0", "data.val_clips=1", "optim.lr=0.05",
            "schedule.epochs=1", "schedule.milestones=[5]", "run.precision=fp32", "run.progress=false",
            "run.tensorboard=false", "run.keep_last=5", f"run.out_dir={out}", *extra]


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 (or 'dir') of everything under `folder`."""
    return {str(p.relative_to(folder)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}
