"""A built-in synthetic action data set whose classes differ only in motion, written as real H.264 videos.

Every class has a twin that is its exact time reversal (move left / move right, grow / shrink, ...). A video of
class A played backwards is a video of its twin drawn with the same scene parameters, so a single frame (or an
unordered bag of frames) carries no information beyond the twin pair: any model blind to temporal order is capped
at 50% by construction, while a spatiotemporal model can reach ~100%.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from resnet3d.data.index import SUBSETS, VideoIndex, VideoRecord
from resnet3d.data.synth_scene import object_box, render_video, sample_scene
from resnet3d.errors import Resnet3dError
from resnet3d.io import atomic_write_json

SYNTH_VERSION = 1
MANIFEST = "synth.json"
INDEX_FILE = "index.json"
HARA_FILE = "annotations.json"
_SHORT_SUBSET = {"training": "train", "validation": "val", "testing": "test"}


@dataclass(frozen=True)
class MotionClass:
    """One class: a motion kind played forwards or backwards in time; its twin is the same kind reversed."""

    name: str
    motion: str
    reverse: bool
    twin: str
    description: str


# (forward name, backward name, motion kind, forward description, backward description)
_PAIRS = (
    ("move_left", "move_right", "translate_x", "the object slides to the left", "the object slides to the right"),
    ("move_up", "move_down", "translate_y", "the object slides up", "the object slides down"),
    ("rotate_clockwise", "rotate_counterclockwise", "rotate", "the object spins clockwise in place",
     "the object spins counter-clockwise in place"),
    ("grow", "shrink", "scale", "the object grows (approaches)", "the object shrinks (recedes)"),
    ("fade_in", "fade_out", "fade", "the object appears from transparent to opaque",
     "the object disappears from opaque to transparent"),
    ("split", "merge", "split", "the object breaks into two halves that drift apart",
     "two halves drift together and join into one object"),
)

CLASSES: tuple[MotionClass, ...] = tuple(
    c for fwd, bwd, kind, dfwd, dbwd in _PAIRS
    for c in (MotionClass(fwd, kind, False, bwd, dfwd), MotionClass(bwd, kind, True, fwd, dbwd)))
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
_BY_NAME = {c.name: c for c in CLASSES}


@dataclass(frozen=True)
class SynthSize:
    """A data-set size preset: videos per class and subset, frame sizes (width, height), frame-count range, fps."""

    name: str
    per_class: tuple[int, int, int]  # training, validation, testing
    frame_sizes: tuple[tuple[int, int], ...]
    num_frames: tuple[int, int]  # inclusive range
    fps: float = 15.0


SIZES: dict[str, SynthSize] = {
    "tiny": SynthSize("tiny", (4, 1, 2), ((32, 32), (40, 32), (32, 40)), (12, 16)),
    "default": SynthSize("default", (100, 10, 20), ((48, 48), (64, 48), (48, 64)), (24, 32)),
    "large": SynthSize("large", (250, 25, 50), ((128, 128), (160, 120), (120, 160)), (32, 64)),
}


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render and write one video; a pure function of (seed, class, subset, number)."""

    video_id: str
    label: int  # position in the data set's class list
    class_name: str
    subset: str
    width: int
    height: int
    num_frames: int
    seed: tuple[int, ...]

    @property
    def relpath(self) -> str:
        """Path of the file inside the data-set folder (the original's `<label>/<id>` layout)."""
        return f"videos/{self.class_name}/{self.video_id}.mp4"


def get_class(name: str) -> MotionClass:
    """The class called `name`."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown synthetic class {name!r}; expected one of {list(CLASS_NAMES)}") from None


def get_size(name: str) -> SynthSize:
    """The size preset called `name` (tiny, default, large)."""
    try:
        return SIZES[name]
    except KeyError:
        raise Resnet3dError(f"unknown synthetic data-set size {name!r}; expected one of {list(SIZES)}") from None


# ---------------------------------------------------------------------------------------------- the data set

def make_video(class_name: str, seed: int | tuple[int, ...], height: int, width: int, num_frames: int) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of one video of `class_name`; the twin class with the same seed is its reversal."""
    cls = get_class(class_name)
    rng = np.random.default_rng(seed)
    return render_video(sample_scene(rng, cls.motion, height, width, num_frames), reverse=cls.reverse)


def object_boxes(class_name: str, seed: int | tuple[int, ...], height: int, width: int, num_frames: int) -> np.ndarray:
    """(T, 4) pixel boxes x0, y0, x1, y1 of the main object in every frame of `make_video` with the same arguments."""
    cls = get_class(class_name)
    scene = sample_scene(np.random.default_rng(seed), cls.motion, height, width, num_frames)
    steps = range(num_frames - 1, -1, -1) if cls.reverse else range(num_frames)
    return np.array([object_box(scene, k) for k in steps])


def plan_dataset(size: str | SynthSize = "default", seed: int = 0, classes: Sequence[str] | None = None
                 ) -> list[VideoSpec]:
    """Every video of the data set (all classes, or only `classes`), in a fixed order; each is a pure function of
    (seed, class, subset, number), so a class's videos are the same whichever other classes are chosen."""
    preset = get_size(size) if isinstance(size, str) else size
    names = _class_list(classes)
    specs = []
    for s, subset in enumerate(SUBSETS):
        for label, name in enumerate(names):
            for i in range(preset.per_class[s]):
                video_seed = (seed, s, CLASS_NAMES.index(name), i)
                rng = np.random.default_rng(video_seed + (1_000_003,))
                width, height = preset.frame_sizes[rng.integers(len(preset.frame_sizes))]
                num_frames = int(rng.integers(preset.num_frames[0], preset.num_frames[1] + 1))
                specs.append(VideoSpec(f"{name}_{_SHORT_SUBSET[subset]}_{i:04d}", label, name, subset, width,
                                       height, num_frames, video_seed))
    return specs


def _class_list(classes: Sequence[str] | None) -> list[str]:
    """The chosen class names (all by default), checked to be known and distinct."""
    names = list(CLASS_NAMES if classes is None else classes)
    for name in names:
        get_class(name)
    if not names or len(set(names)) != len(names):
        raise Resnet3dError(f"synthetic classes: expected distinct names, got {names}")
    return names


def write_spec(spec: VideoSpec, root: str | Path, fps: float) -> str:
    """Render one planned video and encode it under `root`; returns its relative path."""
    from resnet3d.data.writer import write_video

    frames = make_video(spec.class_name, spec.seed, spec.height, spec.width, spec.num_frames)
    # x264's macroblock-tree rate control is not repeatable on these tiny frames; without it the bytes are.
    write_video(Path(root) / spec.relpath, frames, fps=fps, gop=spec.num_frames, crf=20,
                options={"x264-params": "mbtree=0"})
    return spec.relpath


def _write_spec_star(args: tuple) -> str:
    return write_spec(*args)


def generate_dataset(out: str | Path, size: str | SynthSize = "default", seed: int = 0, *,
                     classes: Sequence[str] | None = None, workers: int | None = None,
                     progress: bool = True) -> VideoIndex:
    """Write the whole data set under `out` (videos, index.json, annotations.json, synth.json); returns the index."""
    preset = get_size(size) if isinstance(size, str) else size
    names = _class_list(classes)
    out = Path(out)
    specs = plan_dataset(preset, seed, names)
    jobs = [(spec, out, preset.fps) for spec in specs]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    for _ in _progress(_run_jobs(jobs, workers), len(jobs), f"synth {preset.name}", progress):
        pass
    index = VideoIndex(names, [
        VideoRecord(video_id=s.video_id, path=str(out.resolve() / s.relpath), label=s.label, subset=s.subset,
                    fps=preset.fps, num_frames=s.num_frames) for s in specs])
    index.save(out / INDEX_FILE)
    from resnet3d.data.annotations import write_hara_json

    write_hara_json(index, out / HARA_FILE)
    atomic_write_json(out / MANIFEST, manifest(preset, seed, names))
    return index


def manifest(size: SynthSize, seed: int, classes: Sequence[str] | None = None) -> dict:
    """What `synth.json` records: enough to tell whether an existing folder holds this exact data set."""
    return {"generator": "resnet3d.data.synth", "version": SYNTH_VERSION, "seed": seed, "size": asdict(size),
            "classes": [asdict(get_class(name)) for name in _class_list(classes)]}


def is_generated(out: str | Path, size: str | SynthSize = "default", seed: int = 0,
                 classes: Sequence[str] | None = None) -> bool:
    """True when `out` already holds the complete data set of this size, seed and classes."""
    out = Path(out)
    try:
        found = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    preset = get_size(size) if isinstance(size, str) else size
    expected = json.loads(json.dumps(manifest(preset, seed, classes)))
    return found == expected and (out / INDEX_FILE).is_file()


def _run_jobs(jobs: list[tuple], workers: int) -> Iterator[str]:
    if workers == 1:
        yield from map(_write_spec_star, jobs)
        return
    import multiprocessing

    # spawn: the caller may already hold torch/OpenMP threads, which do not survive a fork safely.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(_write_spec_star, jobs, chunksize=4)


def _progress(it: Iterator, total: int, desc: str, enabled: bool) -> Iterator:
    from tqdm import tqdm

    return iter(tqdm(it, total=total, desc=desc, unit="video", disable=not enabled, dynamic_ncols=True))
