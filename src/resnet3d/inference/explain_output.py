"""What `resnet3d explain` writes: a heat-map overlay MP4, a PNG strip of evenly spaced frames, a JSON record.

The overlay shows what the model saw: every window's clip (resized and centre-cropped, `t_stride` apart), one
window after another, with the window's map (scaled to its own maximum) blended in a jet colour map.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from resnet3d.data.transforms import resize
from resnet3d.inference.explain import GradCam, WindowExplanation
from resnet3d.inference.predict import Windowing, _round, topk_labels
from resnet3d.plots import pyplot, save_png

VIEW_SIZE = 224  # overlay frames are scaled up by a whole factor to at least this short side, for viewing


def normalised(cam: np.ndarray) -> np.ndarray:
    """A map scaled to [0, 1] by its maximum (all zeros stays zeros)."""
    peak = float(cam.max())
    return cam / peak if peak > 0 else np.zeros_like(cam)


def overlay(frames: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """uint8 (T, H, W, 3) frames blended with a [0, 1] heat map (T, H, W) in the jet colour map."""
    import matplotlib

    colours = matplotlib.colormaps["jet"](np.clip(heat, 0, 1))[..., :3] * 255
    return np.clip((1 - alpha) * frames + alpha * colours + 0.5, 0, 255).astype(np.uint8)


def _view(frames: np.ndarray) -> np.ndarray:
    """Frames scaled up by a whole factor to at least VIEW_SIZE on the short side, with even sides for H.264."""
    h, w = frames.shape[1:3]
    f = max(1, math.ceil(VIEW_SIZE / min(h, w)))
    while (h * f) % 2 or (w * f) % 2:
        f += 1
    return resize(frames, h * f, w * f)


def window_record(win: WindowExplanation, class_names: list[str], k: int, fps: float | None) -> dict:
    """JSON-ready scores and heat-map statistics of one window."""
    return {"start_frame": win.start, "end_frame": win.end,
            "start_sec": _round(win.start / fps) if fps else None, "end_sec": _round(win.end / fps) if fps else None,
            "target": {"index": win.target, "label": class_names[win.target],
                       "score": round(float(win.probs[win.target]), 6)},
            "top": topk_labels(win.probs, class_names, k), "heatmap": win.stats()}


def write_explanation(windows: Iterable[WindowExplanation], num_windows: int, clip_length: int, *, video: str,
                      overlay_path: Path, strip_path: Path, class_names: list[str], fps: float | None, t_stride: int,
                      k: int = 3, strip_frames: int = 8) -> tuple[list[dict], torch.Tensor]:
    """Write the overlay MP4 and the PNG strip of one video's windows; returns the window records and mean probs."""
    from resnet3d.data.writer import write_video

    total = num_windows * clip_length
    picks = set(np.linspace(0, total - 1, min(strip_frames, total)).round().astype(int).tolist())
    records: list[dict] = []
    probs: list[torch.Tensor] = []
    strip: list[tuple[np.ndarray, np.ndarray, str]] = []

    def frames() -> Iterator[np.ndarray]:
        for w, win in enumerate(windows):
            blended = overlay(win.frames, normalised(win.cam))
            records.append(window_record(win, class_names, k, fps))
            probs.append(win.probs)
            for t in range(clip_length):
                if w * clip_length + t in picks:
                    strip.append((win.frames[t], blended[t], _caption(win, t, t_stride, class_names, k)))
            yield from _view(blended)

    write_video(overlay_path, frames(), fps=(fps or 15.0) / t_stride)
    write_strip(strip_path, strip, title=video)
    return records, torch.stack(probs).mean(0)


def _caption(win: WindowExplanation, t: int, t_stride: int, class_names: list[str], k: int) -> str:
    top = "\n".join(f"{e['label']} {e['score']:.2f}" for e in topk_labels(win.probs, class_names, k))
    return f"frame {win.start + t * t_stride}\n{top}"


def write_strip(path: Path, strip: list[tuple[np.ndarray, np.ndarray, str]], title: str) -> None:
    """A PNG of the picked frames (top row) above their heat-map overlays (bottom row), captioned with the top-k."""
    plt = pyplot()
    n = len(strip)
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n + 0.4, 5.0), dpi=110, squeeze=False)
    for i, (frame, blended, caption) in enumerate(strip):
        axes[0, i].imshow(frame)
        axes[1, i].imshow(blended)
        axes[0, i].set_title(caption, fontsize=7, loc="left")
        for ax in axes[:, i]:
            ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_png(fig, path)


def explain_videos(cam: GradCam, videos: list[str], windowing: Windowing, transform: Any, names: list[str],
                   out_dir: Path, *, target: int | None = None, batch_size: int = 8, fps: float | None = None,
                   top_k: int = 5, strip_frames: int = 8, progress: bool = True) -> tuple[list[dict], list[str]]:
    """`resnet3d explain` on video files: overlay MP4 and PNG strip per video in `out_dir`; (records, errors)."""
    import sys

    from tqdm import tqdm

    from resnet3d.data.video import VideoError
    from resnet3d.inference.explain import explain_video
    from resnet3d.inference.features import check_key, unique_keys

    records, errors = [], []
    for path, key in zip(videos, unique_keys(videos)):
        key = check_key(key)
        mp4, png = out_dir / f"{key}.mp4", out_dir / f"{key}.png"
        try:
            fps_used, num_frames, windows = explain_video(path, cam, windowing, transform, target=target,
                                                          batch_size=batch_size, fps=fps)
            count = len(windowing.clips(num_frames))
            windows = tqdm(windows, total=count, desc=key, unit="window", disable=not progress, dynamic_ncols=True,
                           file=sys.stderr, leave=False)
            rows, mean_probs = write_explanation(
                windows, count, windowing.clip_length, video=str(path), overlay_path=mp4, strip_path=png,
                class_names=names, fps=fps_used, t_stride=windowing.t_stride, k=top_k, strip_frames=strip_frames)
        except VideoError as e:
            errors.append(str(e))
            print(f"resnet3d: skipped {e}", file=sys.stderr)
            continue
        video_top = topk_labels(mean_probs, names, top_k)
        records.append({"video": str(path), "num_frames": num_frames, "fps": fps_used, "overlay": str(mp4),
                         "strip": str(png), "top": video_top, "windows": rows})
        if progress:
            print(f"{path}: {video_top[0]['label']} ({video_top[0]['score']:.3f}), {len(rows)} windows -> {mp4}, "
                  f"{png}", file=sys.stderr)
    return records, errors
