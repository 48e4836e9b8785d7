"""The synthetic videos' scenes: one random scene per video (shape, colours, textured background, distractors,
camera pan and jitter, the class motion), rendered frame by frame with anti-aliased polygons."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_SS = 4  # supersampling factor of the polygon rasteriser (anti-aliased edges)


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
    start, end = _motion_poses(rng, motion, pose, width, height, steps)
    pan, jitter, background = _camera(rng, height, width, num_frames, bg_value)
    distractors = _distractors(rng, height, width, steps)

    return Scene(motion, height, width, num_frames, background, pan, jitter, shape, colour, start, end,
                 motion == "scale", distractors, int(rng.integers(2**31)), float(rng.uniform(2.0, 6.0)))


def _motion_poses(rng: np.random.Generator, motion: str, pose: dict, width: int, height: int, steps: int
                  ) -> tuple[dict, dict]:
    """The object's first and last pose for one motion kind."""
    short, radius, angle = min(height, width), pose["radius"], pose["angle"]
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
    return start, end


def _camera(rng: np.random.Generator, height: int, width: int, num_frames: int, bg_value: float) -> tuple:
    """Per-frame camera offsets (slow pan plus jitter), the jitter alone, and the padded background texture."""
    short, steps = min(height, width), max(num_frames - 1, 1)
    jitter = _camera_jitter(rng, num_frames, max(1, round(short / 32)))
    pan_speed = rng.uniform(0.0, 0.35) * short / 32
    pan_dir = rng.uniform(0, 2 * math.pi)
    pan_total = pan_speed * steps
    pad = int(math.ceil(pan_total / 2 + np.abs(jitter).max())) + 1
    drift = np.array([math.sin(pan_dir), math.cos(pan_dir)]) * pan_speed
    t = np.arange(num_frames)[:, None]
    pan = np.rint(pad + drift * (t - steps / 2)).astype(int) + jitter
    background = _texture(rng, height + 2 * pad, width + 2 * pad, bg_value)
    return pan, jitter, background


def _distractors(rng: np.random.Generator, height: int, width: int, steps: int) -> list:
    """One to three small shapes drifting independently of the class motion."""
    short = min(height, width)
    distractors = []
    for _ in range(rng.integers(1, 4)):
        d_radius = rng.uniform(0.04, 0.07) * short
        d_shape = SHAPES[_SHAPE_NAMES[rng.integers(len(_SHAPE_NAMES))]]
        d_colour = _hsv(rng.random(), rng.uniform(0.3, 1.0), rng.uniform(0.2, 1.0))
        d_pos = np.array([rng.uniform(0, height), rng.uniform(0, width)])
        d_dir = rng.uniform(0, 2 * math.pi)
        d_vel = np.array([math.sin(d_dir), math.cos(d_dir)]) * rng.uniform(0.0, 0.3) * short / 32
        distractors.append((d_shape * d_radius, d_colour, d_pos - d_vel * steps / 2, d_vel))
    return distractors


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


def object_box(scene: Scene, k: int) -> tuple[float, float, float, float]:
    """The main object's bounding box (x0, y0, x1, y1) in pixels at step k, camera jitter included."""
    points = np.concatenate([poly for poly, _ in object_polygons(scene, k)]) + scene.jitter[k][::-1]
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    return float(x0), float(y0), float(x1), float(y1)
