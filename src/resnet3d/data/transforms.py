"""Spatial transforms on uint8 clips (T, H, W, C), one random draw per clip, and the train/eval pipelines.

The geometric functions accept a numpy array or a torch tensor and return the same type. Pipelines are called as
`transform(frames, rng)` and return float (C, T, H, W), or (crops, C, T, H, W) for multi-crop evaluation.
Resizing uses OpenCV when it is installed (fastest measured) and torch's antialiased interpolation otherwise.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from resnet3d.normalization import Normalization, get_normalization

# The CVPR-2018 multi-scale corner crop: scales 1, 2^-1/4, ..., 2^-1 of the short side; five positions.
CORNER_SCALES = tuple(2.0 ** (-k / 4) for k in range(5))
CORNER_POSITIONS = ("c", "tl", "tr", "bl", "br")


def _same_type(fn: Callable[..., np.ndarray]) -> Callable[..., Any]:
    """Run `fn` on a numpy view of a torch clip and hand back a tensor; numpy stays numpy."""
    @functools.wraps(fn)
    def wrapper(clip, *args, **kwargs):
        if isinstance(clip, torch.Tensor):
            return torch.from_numpy(np.ascontiguousarray(fn(clip.numpy(), *args, **kwargs)))
        return fn(np.asarray(clip), *args, **kwargs)
    return wrapper


@functools.lru_cache(maxsize=1)
def _cv2():
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(1)  # clips are small; DataLoader workers provide the parallelism
    return cv2


@_same_type
def resize(clip: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize every frame to (height, width): bilinear, area averaging when shrinking below half size."""
    t, h, w, c = clip.shape
    if (h, w) == (height, width):
        return clip
    cv2 = _cv2()
    if cv2 is not None:
        # Bilinear is ~5x faster than area averaging and alias-free enough down to half size.
        mode = cv2.INTER_AREA if 2 * height < h or 2 * width < w else cv2.INTER_LINEAR
        out = np.empty((t, height, width, c), dtype=clip.dtype)
        for i in range(t):
            out[i] = cv2.resize(clip[i], (width, height), interpolation=mode).reshape(height, width, c)
        return out
    x = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False,
                                        antialias=height * width < h * w)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) after scaling so that the shorter side equals `size`, keeping the aspect ratio."""
    if height <= width:
        return size, max(1, round(width * size / height))
    return max(1, round(height * size / width)), size


def resize_short_side(clip, size: int):
    """Scale so that the shorter side equals `size`."""
    return resize(clip, *short_side_size(clip.shape[1], clip.shape[2], size))


@_same_type
def crop(clip: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """The box [top, top + height) x [left, left + width) of every frame (a view, no copy)."""
    h, w = clip.shape[1:3]
    if top < 0 or left < 0 or top + height > h or left + width > w:
        raise ValueError(f"crop box ({top}, {left}, {height}, {width}) is outside a {h}x{w} frame")
    return clip[:, top:top + height, left:left + width]


def center_box(height: int, width: int, crop_h: int, crop_w: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the centred box."""
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def center_crop(clip, size: int):
    """The centred size x size box."""
    return crop(clip, *center_box(clip.shape[1], clip.shape[2], size, size))


def three_crop_boxes(height: int, width: int, size: int) -> list[tuple[int, int, int, int]]:
    """Three size x size boxes along the longer side: start, centre, end (for multi-crop testing)."""
    if height > width:
        tops = (0, (height - size) // 2, height - size)
        return [(t, (width - size) // 2, size, size) for t in tops]
    lefts = (0, (width - size) // 2, width - size)
    return [((height - size) // 2, l, size, size) for l in lefts]


@_same_type
def hflip(clip: np.ndarray) -> np.ndarray:
    """Mirror every frame left-right."""
    return clip[:, :, ::-1]


def corner_crop_box(height: int, width: int, scale: float, position: str) -> tuple[int, int, int, int]:
    """Square box of side `scale` x the short side at position c, tl, tr, bl or br."""
    side = max(1, int(min(height, width) * scale))
    tops = {"c": (height - side) // 2, "tl": 0, "tr": 0, "bl": height - side, "br": height - side}
    lefts = {"c": (width - side) // 2, "tl": 0, "tr": width - side, "bl": 0, "br": width - side}
    if position not in tops:
        raise ValueError(f"unknown crop position {position!r}; expected one of {list(CORNER_POSITIONS)}")
    return tops[position], lefts[position], side, side


def random_corner_box(height: int, width: int, rng: np.random.Generator,
                      scales: Sequence[float] = CORNER_SCALES,
                      positions: Sequence[str] = CORNER_POSITIONS) -> tuple[int, int, int, int]:
    """The paper's multi-scale corner crop: a random scale and a random position."""
    scale = scales[int(rng.integers(len(scales)))]
    return corner_crop_box(height, width, scale, positions[int(rng.integers(len(positions)))])


def random_resized_box(height: int, width: int, rng: np.random.Generator, scale: tuple[float, float] = (0.25, 1.0),
                       ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """Inception-style box: area fraction in `scale`, aspect (w/h) log-uniform in `ratio`; 10 tries, then centre."""
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    aspect = width / height  # fall back to the largest centred box with the aspect clamped into range
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return center_box(height, width, min(h, height), min(w, width))


def to_float(clip, normalization: Normalization) -> torch.Tensor:
    """uint8 (T, H, W, C) to normalised float (C, T, H, W): x / 255 * value_scale, then (x - mean) / std."""
    arr = clip.numpy() if isinstance(clip, torch.Tensor) else np.asarray(clip)
    x = torch.from_numpy(np.ascontiguousarray(arr.transpose(3, 0, 1, 2))).float()  # transpose the uint8 copy
    c = x.shape[0]
    norm = normalization.channels(c)
    std = torch.tensor(norm.std, dtype=torch.float32).view(c, 1, 1, 1)
    mean = torch.tensor(norm.mean, dtype=torch.float32).view(c, 1, 1, 1)
    return x.mul_(norm.value_scale / 255.0 / std).sub_(mean / std)


def to_uint8(x: torch.Tensor, normalization: Normalization) -> np.ndarray:
    """Inverse of `to_float`: normalised (C, T, H, W) back to uint8 (T, H, W, C)."""
    c = x.shape[0]
    norm = normalization.channels(c)
    std = torch.tensor(norm.std, dtype=torch.float32).view(c, 1, 1, 1)
    mean = torch.tensor(norm.mean, dtype=torch.float32).view(c, 1, 1, 1)
    pixels = (x.float() * std + mean) * (255.0 / norm.value_scale)
    return pixels.round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 3, 0).numpy()


def color_jitter(clip, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation, each a factor in [1 - strength, 1 + strength]; uint8 out."""
    x = np.asarray(clip, dtype=np.float32)
    lo, hi = max(0.0, 1.0 - strength), 1.0 + strength
    brightness, contrast, saturation = rng.uniform(lo, hi, size=3)
    x = x * brightness
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = (x - grey.mean()) * contrast + grey.mean()
    grey = (grey - grey.mean()) * contrast + grey.mean()
    x = (x - grey[..., None]) * saturation + grey[..., None]
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class TrainTransform:
    """Training pipeline: crop (random-resized, multi-scale corner or centre) -> flip -> colour jitter -> float."""

    input_size: int = 112
    crop: str = "random"
    normalization: Normalization = field(default_factory=lambda: get_normalization("kinetics"))
    hflip: bool = True
    color_jitter: float = 0.0
    min_scale: float = 0.25
    min_ratio: float = 0.75

    def __post_init__(self) -> None:
        if self.crop not in ("random", "corner", "center"):
            raise ValueError(f"unknown crop {self.crop!r}; expected 'random', 'corner' or 'center'")

    def __call__(self, frames, rng: np.random.Generator) -> torch.Tensor:
        clip = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        h, w = clip.shape[1:3]
        size = self.input_size
        if self.crop == "center":
            clip = center_crop(resize_short_side(clip, size), size)
        else:
            if self.crop == "random":
                box = random_resized_box(h, w, rng, (self.min_scale, 1.0), (self.min_ratio, 1.0 / self.min_ratio))
            else:
                box = random_corner_box(h, w, rng)
            clip = resize(crop(clip, *box), size, size)
        if self.hflip and rng.random() < 0.5:
            clip = hflip(clip)
            if clip.shape[-1] == 2:  # optical flow (u, v): a mirrored frame moves the other way horizontally
                clip = np.concatenate([255 - clip[..., :1], clip[..., 1:]], axis=-1)
        if self.color_jitter > 0:
            clip = color_jitter(clip, self.color_jitter, rng)
        return to_float(clip, self.normalization)


@dataclass(frozen=True)
class EvalTransform:
    """Evaluation pipeline: resize the short side, then one centre crop or three crops along the long side."""

    input_size: int = 112
    normalization: Normalization = field(default_factory=lambda: get_normalization("kinetics"))
    crops: int = 1
    resize: int | None = None  # short side before cropping; None = input_size (the original's choice)

    def __post_init__(self) -> None:
        if self.crops not in (1, 3):
            raise ValueError(f"crops must be 1 or 3, got {self.crops}")

    def __call__(self, frames, rng: np.random.Generator | None = None) -> torch.Tensor:
        clip = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        size = self.input_size
        clip = resize_short_side(clip, self.resize or size)
        if self.crops == 1:
            return to_float(center_crop(clip, size), self.normalization)
        boxes = three_crop_boxes(clip.shape[1], clip.shape[2], size)
        return torch.stack([to_float(crop(clip, *b), self.normalization) for b in boxes])


def build_train_transform(input_size: int = 112, crop: str = "random", normalization: Normalization | str = "kinetics",
                          hflip: bool = True, color_jitter: float = 0.0, min_scale: float = 0.25,
                          min_ratio: float = 0.75) -> TrainTransform:
    """The training transform; `normalization` is a Normalization or a preset name."""
    return TrainTransform(input_size, crop, _norm(normalization), hflip, color_jitter, min_scale, min_ratio)


def build_eval_transform(input_size: int = 112, normalization: Normalization | str = "kinetics", crops: int = 1,
                         resize: int | None = None) -> EvalTransform:
    """The evaluation transform (crops = 1 or 3); `normalization` is a Normalization or a preset name."""
    return EvalTransform(input_size, _norm(normalization), crops, resize)


def _norm(normalization: Normalization | str) -> Normalization:
    return get_normalization(normalization) if isinstance(normalization, str) else normalization
