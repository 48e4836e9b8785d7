"""Data loading speed per CPU core: MP4 decoded on the fly vs JPEG folders vs HDF5, on the same videos.

Each source goes through the real training path (`ClipDataset`: open, sample a 16-frame clip, decode, random
resized crop to 112, flip, normalise) pinned to one core. Run: python benchmarks/bench_data.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def make_videos(folder: Path, count: int, frames: int, width: int, height: int) -> list[Path]:
    """Panning smooth random texture plus a moving square and mild noise (like cpu-performance.md §5)."""
    from resnet3d.data.transforms import resize
    from resnet3d.data.writer import write_video

    rng = np.random.default_rng(0)
    paths = []
    for v in range(count):
        small = rng.integers(0, 256, (1, height // 8, width // 4, 3), dtype=np.uint8)
        texture = resize(small, height, width * 2)[0]

        def gen():
            for i in range(frames):
                x = i * width // frames
                f = texture[:, x:x + width].astype(np.int16) + rng.integers(-4, 5, (height, width, 1))
                s = (i * 3) % (width - 40)
                f[height // 3:height // 3 + 40, s:s + 40] = 240
                yield np.clip(f, 0, 255).astype(np.uint8)

        path = folder / "videos" / f"c{v % 2}" / f"v{v}.mp4"
        write_video(path, gen(), fps=30, crf=23)
        paths.append(path)
    return paths


def clips_per_second(index, clips: int, reps: int) -> list[float]:
    from resnet3d.data.datasets import ClipDataset
    from resnet3d.data.transforms import build_train_transform

    ds = ClipDataset(index, clip_length=16, transform=build_train_transform(112), seed=0)
    ds[0]  # warm caches (file index, imports)
    rates = []
    for r in range(reps):
        ds.set_epoch(r + 1)
        t = time.perf_counter()
        for k in range(clips):
            clip, _ = ds[k % len(ds)]
        rates.append(clips / (time.perf_counter() - t))
    assert clip.shape == (3, 16, 112, 112)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few small videos, one repetition (a smoke test)")
    parser.add_argument("--out-dir", help="keep the generated data here (default: a temporary folder)")
    args = parser.parse_args()
    import torch

    from resnet3d.data.index import VideoIndex, VideoRecord
    from resnet3d.data.prepare import PrepareOptions, prepare

    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    count, frames, clips, reps = (2, 60, 10, 1) if args.quick else (4, 300, 40, 3)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out_dir or tmp)
        paths = make_videos(root, count, frames, 320, 240)
        index = VideoIndex(["c0", "c1"], [VideoRecord(p.stem, str(p), label=i % 2) for i, p in enumerate(paths)])
        sources = [("MP4 H.264 320x240, x264 default keyframes, on the fly", index)]
        variants = [("MP4 H.264 short side 128, keyframe every 16 (data prepare)", "mp4_128", PrepareOptions("video", 128, 16)),
                    ("JPEG folders 320x240", "jpg", PrepareOptions("frames", None)),
                    ("JPEG folders short side 128", "jpg_128", PrepareOptions("frames", 128)),
                    ("HDF5 (JPEG bytes) 320x240", "hdf5", PrepareOptions("hdf5", None)),
                    ("HDF5 (JPEG bytes) short side 128", "hdf5_128", PrepareOptions("hdf5", 128))]
        for name, folder, opts in variants:
            prepared, _ = prepare(index, root / folder, opts, jobs=1, progress=False)
            sources.append((name, prepared))
        print(f"{count} videos x {frames} frames, 16-frame clips -> (3, 16, 112, 112) float, 1 core, "
              f"{clips} clips x {reps} reps (median)")
        print(f"{'source':62s} {'clips/s':>8s} {'ms/clip':>8s}")
        for name, idx in sources:
            rate = statistics.median(clips_per_second(idx, clips, reps))
            print(f"{name:62s} {rate:8.1f} {1000 / rate:8.1f}", flush=True)


if __name__ == "__main__":
    main()
