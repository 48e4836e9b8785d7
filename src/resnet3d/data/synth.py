"""A built-in synthetic action data set whose classes differ only in motion, written as real H.264 videos.

Every class has a twin that is its exact time reversal (move left / move right, grow / shrink, ...). A video of
class A played backwards is a video of its twin drawn with the same scene parameters, so a single frame (or an
unordered bag of frames) carries no information beyond the twin pair: any model blind to temporal order is capped
at 50% by construction, while a spatiotemporal model can reach ~100%.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from resnet3d.data.index import SUBSETS, VideoIndex, VideoRecord
from resnet3d.errors import Resnet3dError
from resnet3d.io import atomic_write_json

SYNTH_VERSION = 1
MANIFEST = "synth.json"
INDEX_FILE = "index.json"
HARA_FILE = "annotations.json"
_SHORT_SUBSET = {"training": "train", "validation": "val", "testing": "test"}
_SS = 4  # supersampling factor of the polygon rasteriser (anti-aliased edges)


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


# ----------------------------------------------------------------------------------------------- scene sampling

# Unit shapes (x right, y down), radius about 1. Rotational symmetry is at most 5-fold, and rotation speeds stay
# far below half the symmetry angle, so the spin direction is never ambiguous between frames.
def _regular(n: int, phase: float = -math.pi / 2) -> np.ndarray:
    a = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([np.cos(a), np.sin(a)], 1)


def _star(n: int = 5, inner: float = 0.45) -> np.ndarray:
    a = -math.pi / 2 + math.pi * np.arange(2 * n) / n
    r = np.where(np.arange(2 * n) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


SHAPES: dict[str, np.ndarray] = {
    "triangle": _regular(3),
    "square": _regular(4, math.pi / 4),
    "pentagon": _regular(5),
    "star": _star(),
    "cross": np.array([[-.3, -1], [.3, -1], [.3, -.3], [1, -.3], [1, .3], [.3, .3], [.3, 1], [-.3, 1], [-.3, .3],
                       [-1, .3], [-1, -.3], [-.3, -.3]]),
    "arrow": np.array([[-1, -.3], [.2, -.3], [.2, -.8], [1, 0], [.2, .8], [.2, .3], [-1, .3]]),
    "ell": np.array([[-.8, -1], [-.2, -1], [-.2, .4], [.8, .4], [.8, 1], [-.8, 1]]),
}
_SHAPE_NAMES = tuple(SHAPES)


@dataclass
class Scene:
    """Sampled parameters of one video; `state(k)` gives the main object's pose at time step k."""

    motion: str
    height: int
    width: int
    num_frames: int
    background: np.ndarray  # (H + 2P, W + 2P, 3) float32 texture, larger than the frame for panning and jitter
    pan: np.ndarray  # (T, 2) integer background offsets (y, x) per time step, camera jitter included
    jitter: np.ndarray  # (T, 2) integer camera offsets (y, x) per time step
    shape: np.ndarray  # (N, 2) unit polygon of the main object, aspect-stretched
    colour: np.ndarray  # (3,) float32 RGB of the main object
    start: dict  # the pose at the first time step: cx, cy, radius, angle, alpha, gap, axis
    end: dict  # the pose at the last time step
    geometric: bool  # interpolate radius geometrically (scale), others linearly
    distractors: list  # [(unit polygon, colour, radius, start (y, x), velocity (y, x) per step)]
    noise_seed: int
    noise_sigma: float

    def state(self, k: int) -> dict:
        """The main object's pose at time step k (0 .. T-1): cx, cy, radius, angle, alpha, gap, axis."""
        s = k / max(self.num_frames - 1, 1)
        out = {}
        for key, a in self.start.items():
            b = self.end[key]
            if key == "radius" and self.geometric:
                out[key] = a * (b / a) ** s
            else:
                out[key] = a + (b - a) * s
        return out


def sample_scene(rng: np.random.Generator, motion: str, height: int, width: int, num_frames: int) -> Scene:
    """Draw the random scene of one video (shape, colours, background, distractors, motion amount)."""
    short = min(height, width)
    steps = max(num_frames - 1, 1)
    dark_bg = rng.random() < 0.5
    bg_value = rng.uniform(0.15, 0.4) if dark_bg else rng.uniform(0.6, 0.85)
    obj_value = rng.uniform(0.75, 1.0) if dark_bg else rng.uniform(0.1, 0.35)
    colour = _hsv(rng.random(), rng.uniform(0.5, 1.0), obj_value)

    shape = SHAPES[_SHAPE_NAMES[rng.integers(len(_SHAPE_NAMES))]] * np.array([1.0, rng.uniform(0.65, 1.0)])
    radius = rng.uniform(0.17, 0.25) * short
    angle = rng.uniform(0, 2 * math.pi)
    pose = {"cx": width / 2, "cy": height / 2, "radius": radius, "angle": angle, "alpha": 1.0, "gap": 0.0,
            "axis": rng.uniform(0, math.pi)}
    start, end = dict(pose), dict(pose)
    margin = 0.05 * short
    if motion in ("translate_x", "translate_y"):
        # Slide across most of the free range; the perpendicular coordinate is anywhere that fits.
        along, across = ("cx", "cy") if motion == "translate_x" else ("cy", "cx")
        extent_along, extent_across = (width, height) if motion == "translate_x" else (height, width)
        free = extent_along - 2 * (radius + margin)
        dist = rng.uniform(0.55, 0.95) * free
        first = rng.uniform(radius + margin + dist, extent_along - radius - margin)
        start[along], end[along] = first, first - dist  # forwards: towards smaller x (left) / smaller y (up)
        start[across] = end[across] = rng.uniform(radius + margin, extent_across - radius - margin)
    elif motion == "rotate":
        # Image y points down, so a growing angle turns clockwise on screen.
        start["radius"] = end["radius"] = radius = rng.uniform(0.22, 0.28) * short
        speed = math.radians(rng.uniform(12.0, 22.0))
        end["angle"] = angle + speed * steps
        _jitter_centre(rng, start, end, width, height, radius + margin)
    elif motion == "scale":
        small = rng.uniform(0.07, 0.1) * short
        start["radius"], end["radius"] = small, small * rng.uniform(2.0, 2.6)
        _jitter_centre(rng, start, end, width, height, end["radius"] + margin)
    elif motion == "fade":
        start["alpha"], end["alpha"] = rng.uniform(0.0, 0.1), rng.uniform(0.9, 1.0)
        _jitter_centre(rng, start, end, width, height, radius + margin)
    elif motion == "split":
        start["radius"] = end["radius"] = radius = rng.uniform(0.14, 0.2) * short
        end["gap"] = min(rng.uniform(0.8, 1.2) * radius * 2, min(width, height) - 2 * (radius + margin))
        _jitter_centre(rng, start, end, width, height, radius + margin + end["gap"] / 2)
    else:
        raise ValueError(f"unknown motion kind {motion!r}")

    jitter = _camera_jitter(rng, num_frames, max(1, round(short / 32)))
    pan_speed = rng.uniform(0.0, 0.35) * short / 32
    pan_dir = rng.uniform(0, 2 * math.pi)
    pan_total = pan_speed * steps
    pad = int(math.ceil(pan_total / 2 + np.abs(jitter).max())) + 1
    drift = np.array([math.sin(pan_dir), math.cos(pan_dir)]) * pan_speed
    t = np.arange(num_frames)[:, None]
    pan = np.rint(pad + drift * (t - steps / 2)).astype(int) + jitter
    background = _texture(rng, height + 2 * pad, width + 2 * pad, bg_value)

    distractors = []
    for _ in range(rng.integers(1, 4)):
        d_radius = rng.uniform(0.04, 0.07) * short
        d_shape = SHAPES[_SHAPE_NAMES[rng.integers(len(_SHAPE_NAMES))]]
        d_colour = _hsv(rng.random(), rng.uniform(0.3, 1.0), rng.uniform(0.2, 1.0))
        d_pos = np.array([rng.uniform(0, height), rng.uniform(0, width)])
        d_dir = rng.uniform(0, 2 * math.pi)
        d_vel = np.array([math.sin(d_dir), math.cos(d_dir)]) * rng.uniform(0.0, 0.3) * short / 32
        distractors.append((d_shape * d_radius, d_colour, d_pos - d_vel * steps / 2, d_vel))

    return Scene(motion, height, width, num_frames, background, pan, jitter, shape, colour, start, end,
                 motion == "scale", distractors, int(rng.integers(2**31)), float(rng.uniform(2.0, 6.0)))


def _jitter_centre(rng: np.random.Generator, start: dict, end: dict, width: int, height: int, reach: float) -> None:
    cx = rng.uniform(min(reach, width / 2), max(width - reach, width / 2))
    cy = rng.uniform(min(reach, height / 2), max(height - reach, height / 2))
    start["cx"] = end["cx"] = cx
    start["cy"] = end["cy"] = cy


def _camera_jitter(rng: np.random.Generator, num_frames: int, amplitude: int) -> np.ndarray:
    """A small random walk of whole-pixel camera offsets, clipped to +-amplitude; symmetric in time."""
    steps = rng.choice([-1, 0, 0, 0, 1], size=(num_frames, 2))
    steps[0] = 0
    return np.clip(np.cumsum(steps, axis=0), -amplitude, amplitude)


def _texture(rng: np.random.Generator, height: int, width: int, value: float) -> np.ndarray:
    """A smooth low-contrast colour texture around `value` (0..1), float32 in 0..255."""
    from PIL import Image

    base = _hsv(rng.random(), rng.uniform(0.0, 0.6), value)
    contrast = rng.uniform(0.04, 0.12) * 255
    cells = rng.integers(3, 7)
    coarse = rng.standard_normal((cells, cells, 3)).astype(np.float32)
    smooth = np.stack([np.asarray(Image.fromarray(coarse[..., c], mode="F").resize((width, height), Image.BICUBIC))
                       for c in range(3)], -1)
    fine = rng.standard_normal((height, width, 1)).astype(np.float32) * 0.3
    return np.clip(base + contrast * (smooth + fine), 0, 255).astype(np.float32)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """RGB (0..255, float32) of a hue/saturation/value triple in 0..1."""
    import colorsys

    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32) * 255


# ----------------------------------------------------------------------------------------------------- rendering

def render_video(scene: Scene, reverse: bool = False) -> np.ndarray:
    """All frames (T, H, W, 3) uint8; `reverse` plays the scene backwards, frame t showing time step T-1-t."""
    steps = range(scene.num_frames - 1, -1, -1) if reverse else range(scene.num_frames)
    return np.stack([render_frame(scene, k) for k in steps])


def render_frame(scene: Scene, k: int) -> np.ndarray:
    """The frame at time step k: background, distractors, main object, sensor noise."""
    h, w = scene.height, scene.width
    oy, ox = scene.pan[k]
    frame = scene.background[oy:oy + h, ox:ox + w].copy()
    shift = scene.jitter[k][::-1].astype(np.float64)  # (x, y)
    for poly, colour, pos0, vel in scene.distractors:
        y, x = pos0 + vel * k
        _paint(frame, poly + np.array([x, y]) + shift, colour, 1.0)
    for poly, alpha in object_polygons(scene, k):
        _paint(frame, poly + shift, scene.colour, alpha)
    noise = np.random.default_rng([scene.noise_seed, k]).standard_normal(frame.shape, dtype=np.float32)
    frame += noise * scene.noise_sigma
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def object_polygons(scene: Scene, k: int) -> list[tuple[np.ndarray, float]]:
    """The main object at step k as pixel-space polygons with their opacity (two halves once split)."""
    p = scene.state(k)
    c, s = math.cos(p["angle"]), math.sin(p["angle"])
    poly = scene.shape @ np.array([[c, s], [-s, c]]) * p["radius"]
    centre = np.array([p["cx"], p["cy"]])
    if scene.motion != "split":
        return [(poly + centre, p["alpha"])]
    normal = np.array([math.cos(p["axis"]), math.sin(p["axis"])])
    halves = []
    for side in (1.0, -1.0):
        half = _clip_half_plane(poly, side * normal)
        if len(half) >= 3:
            halves.append((half + centre + side * normal * p["gap"] / 2, p["alpha"]))
    return halves


def _clip_half_plane(poly: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """The part of a polygon (centred at 0) on the side where dot(point, normal) >= 0 (Sutherland-Hodgman)."""
    out = []
    d = poly @ normal
    for i in range(len(poly)):
        j = (i + 1) % len(poly)
        if d[i] >= 0:
            out.append(poly[i])
        if (d[i] >= 0) != (d[j] >= 0):
            t = d[i] / (d[i] - d[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.array(out).reshape(-1, 2)


def _paint(frame: np.ndarray, poly: np.ndarray, colour: np.ndarray, alpha: float) -> None:
    """Alpha-blend a filled polygon (pixel coordinates, x right / y down) into a float frame in place."""
    if alpha <= 0:
        return
    from PIL import Image, ImageDraw

    h, w = frame.shape[:2]
    x0, y0 = np.floor(poly.min(0)).astype(int) - 1
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x0 >= x1 or y0 >= y1:
        return
    canvas = Image.new("L", ((x1 - x0) * _SS, (y1 - y0) * _SS), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in ((poly - [x0, y0]) * _SS).tolist()], fill=255)
    mask = np.asarray(canvas.reduce(_SS), dtype=np.float32)[..., None] * (alpha / 255.0)
    region = frame[y0:y1, x0:x1]
    region += (colour - region) * mask


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


def object_box(scene: Scene, k: int) -> tuple[float, float, float, float]:
    """The main object's bounding box (x0, y0, x1, y1) in pixels at step k, camera jitter included."""
    points = np.concatenate([poly for poly, _ in object_polygons(scene, k)]) + scene.jitter[k][::-1]
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    return float(x0), float(y0), float(x1), float(y1)


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
