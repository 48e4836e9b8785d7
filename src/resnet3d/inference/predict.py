"""Sliding-window inference on raw video files, streamed: memory stays flat however long the video is.

Windows follow `resnet3d.data.sampling.window_starts` (regular starts every `stride` frames, one extra window
ending on the last frame, loop padding for videos shorter than one clip). Frames are decoded once, in order;
each frame is kept (already resized) only until the last window that uses it has been batched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from resnet3d.data import sampling
from resnet3d.data.transforms import EvalTransform, resize_short_side
from resnet3d.data.video import VideoError, open_video
from resnet3d.inference.compile_policy import AutoCompile, in_batches_of
from resnet3d.inference.fast_path import default_device, prepare_for_inference, resolve_precision
from resnet3d.errors import Resnet3dError


@dataclass(frozen=True)
class Windowing:
    """How clips are cut from a video: `clip_length` frames `t_stride` apart, a new window every `stride` frames."""

    clip_length: int
    t_stride: int = 1
    stride: int | None = None  # None: the clip span (no overlap)

    @property
    def span(self) -> int:
        return sampling.clip_span(self.clip_length, self.t_stride)

    def clips(self, num_frames: int) -> list[np.ndarray]:
        """The frame indices of every window of a video of `num_frames` frames."""
        starts = sampling.window_starts(num_frames, self.clip_length, self.t_stride, self.stride)
        return [sampling.clip_at(int(s), num_frames, self.clip_length, self.t_stride) for s in starts]


@dataclass
class VideoOutput:
    """Per-window outputs of one video: frame ranges [start, end), seconds, and one row of `values` per window."""

    path: str
    num_frames: int
    fps: float | None
    frames: np.ndarray  # (W, 2) int64 [start, end)
    values: torch.Tensor  # (W, D) float32
    times: np.ndarray | None = None  # (num_frames + 1,) the source's `frame_times`

    @property
    def seconds(self) -> np.ndarray | None:
        """(W, 2) window start and end times in seconds (None when the source has no frame rate)."""
        return None if self.times is None else self.times[self.frames]

    @property
    def duration(self) -> float | None:
        """Seconds from the first frame's start to the last one's end (None when the source has no frame rate)."""
        return None if self.times is None else float(self.times[-1])


class InferenceModel:
    """A model set up for fast inference (`prepare_for_inference`): batches in, float32 CPU outputs back.

    `mode` picks the output: "probs" (softmax of the logits), "logits" or "features" (`forward_features`).
    `compile`: True or "on" (torch.compile with inductor freezing), False or "off", or "auto" (compiled once the
    clips still to come, as `expect_clips` says, would take over `compile_policy.LONG_JOB_S` eagerly).
    """

    def __init__(self, model: torch.nn.Module, *, device: torch.device | str = "cpu", precision: str = "auto",
                 mode: str = "probs", compile: bool | str = False):
        if mode not in ("probs", "logits", "features"):
            raise ValueError(f"mode must be probs, logits or features, got {mode!r}")
        self.compile = {True: "on", False: "off"}.get(compile, compile)
        if self.compile not in ("on", "off", "auto"):
            raise ValueError(f"compile must be on, off or auto, got {compile!r}")
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.mode = mode
        self.module = prepare_for_inference(model, self.device, precision=self.precision,
                                            features=mode == "features", compile=self.compile == "on")
        if self.compile == "auto":
            self.module = AutoCompile(self.module, total_clips=0, device=self.device)
        self._batch: int | None = None

    @property
    def compiled(self) -> bool:
        """Whether the batches now run through a compiled network."""
        return self.compile == "on" or (self.compile == "auto" and self.module.compiled is not None)

    def expect_clips(self, clips: int) -> None:
        """Tell `--compile auto` how many clips are still to come (a no-op otherwise)."""
        if self.compile == "auto":
            self.module.expect(clips)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) float clips -> (B, D) float32 outputs on the CPU."""
        clips = clips.to(self.device, non_blocking=True)
        with torch.inference_mode():
            if self.compile == "on":  # one shape, the first batch's: a new shape would trigger a new compilation
                self._batch = self._batch or len(clips)
                out = in_batches_of(self.module, clips, self._batch)
            else:
                out = self.module(clips)
        if self.mode == "probs":
            out = torch.softmax(out, dim=1)
        return out.cpu()


@dataclass
class InferenceSetup:
    """Everything predict/features need from a checkpoint: the fast model, windows, transform and class names."""

    model: InferenceModel
    windowing: Windowing
    transform: EvalTransform
    class_names: list[str]
    meta: Any
    network: torch.nn.Module  # the bare network (for cost counting)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, mode: str = "probs", device: str | None = None,
                        precision: str = "auto", compile: bool = False, clip_length: int | None = None,
                        t_stride: int | None = None, input_size: int | None = None, stride: int | None = None,
                        labels: str | Path | None = None, model_options: dict | None = None) -> "InferenceSetup":
        """Load a checkpoint (`model_options`: load_model's keywords); options left as None come from its metadata."""
        device = default_device(device)
        network, meta, windowing, transform, names = load_protocol(path, clip_length=clip_length, t_stride=t_stride,
                                                                   input_size=input_size, stride=stride, labels=labels,
                                                                   model_options=model_options)
        try:
            model = InferenceModel(network, device=device, precision=precision, mode=mode, compile=compile)
        except ValueError as e:
            raise Resnet3dError(str(e)) from None
        return cls(model, windowing, transform, names, meta, network)

    def protocol(self) -> dict:
        """The windowing and preprocessing used, for output files."""
        return {"clip_length": self.windowing.clip_length, "t_stride": self.windowing.t_stride,
                "window_stride": self.windowing.stride or self.windowing.span, "input_size": self.transform.input_size,
                "crops": 1, "precision": self.model.precision, "compile": self.model.compile,
                "compiled": self.model.compiled}

    def cost(self, *, views_per_video: float, clips: int, seconds: float) -> dict:
        """Parameters, GMACs per view and per video, and measured throughput."""
        speed = clips / seconds if seconds > 0 else math.nan
        return cost_report(self.network, self.windowing.clip_length, self.transform.input_size, views_per_video,
                           speed, self.model.precision, str(self.model.device))


def load_protocol(path: str | Path, *, clip_length: int | None = None, t_stride: int | None = None,
                  input_size: int | None = None, stride: int | None = None, labels: str | Path | None = None,
                  model_options: dict | None = None, crops: int = 1
                  ) -> tuple[torch.nn.Module, Any, Windowing, EvalTransform, list[str]]:
    """The network (eval mode), metadata, windows, transform and class names of a checkpoint; None: its own values."""
    from resnet3d.data.transforms import build_eval_transform
    from resnet3d.models.checkpoint import load_model

    network, meta = load_model(path, **(model_options or {}))
    windowing = Windowing(clip_length or meta.clip_length, t_stride or meta.t_stride, stride)
    if windowing.stride is not None and windowing.stride < 1:
        raise Resnet3dError(f"--stride must be >= 1, got {windowing.stride}")
    transform = build_eval_transform(input_size or meta.input_size, meta.normalization, crops=crops)
    return network, meta, windowing, transform, class_names(meta, network.num_classes, labels)


def class_names(meta: Any, num_classes: int, labels: str | Path | None = None) -> list[str]:
    """Class names from `labels` (one per line), else the checkpoint's, else class_0, class_1, ..."""
    if labels is not None:
        from resnet3d.data.index import read_class_list

        return read_class_list(labels, num_classes)
    if meta.class_names:
        return list(meta.class_names)
    return [f"class_{i}" for i in range(num_classes)]


def cost_report(network: torch.nn.Module, frames: int, size: int, views_per_video: float, clips_per_second: float,
                precision: str, device: str) -> dict:
    """Params, GMACs per view (one frames x size x size clip) and per video, and the measured clips/s."""
    from resnet3d.models.complexity import model_complexity

    cost = model_complexity(network.arch_name, network.num_classes, frames, size, **network.arch_options)
    per_view = cost.macs / 1e9
    return {"params": cost.params, "gmacs_per_view": round(per_view, 6), "views_per_video": round(views_per_video, 2),
            "gmacs_per_video": round(per_view * views_per_video, 6), "clips_per_second": round(clips_per_second, 2),
            "precision": precision, "device": device, "note": "GMACs = 10^9 multiply-adds (= GFLOPs / 2)"}


def format_cost(cost: dict) -> str:
    """One line: params, GMACs per view and per video, measured speed."""
    return (f"{cost['params'] / 1e6:.2f} M params, {cost['gmacs_per_view']:.2f} GMACs/view, "
            f"{cost['gmacs_per_video']:.2f} GMACs/video ({cost['views_per_video']:g} views), "
            f"{cost['clips_per_second']:.1f} clips/s ({cost['precision']}, {cost['device']})")


def input_channels(network: torch.nn.Module) -> int:
    """Channels the network's first convolution expects."""
    conv = next((m for m in network.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.Conv2d))), None)
    return conv.in_channels if conv is not None else 3


def stream_windows(source, windowing: Windowing, resize: Callable[[np.ndarray], np.ndarray] | None = None
                   ) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield `(start, end, clip uint8 (T, H, W, 3))` for every window of an open video source, decoding once."""
    n = source.num_frames
    clips = windowing.clips(n)
    needed = np.zeros(n, dtype=bool)
    for idx in clips:
        needed[idx] = True
    kept: dict[int, np.ndarray] = {}
    w = 0
    for i, frame in enumerate(source.iter_frames()):
        if needed[i]:
            kept[i] = resize(frame) if resize is not None else frame
        while w < len(clips) and clips[w].max() <= i:
            idx = clips[w]
            start = int(idx[0])
            yield start, min(start + windowing.span, n), np.stack([kept[int(j)] for j in idx])
            w += 1
            if w < len(clips):
                for j in [j for j in kept if j < clips[w].min()]:
                    del kept[j]
        if w == len(clips):
            return
    raise VideoError(source.path, f"stream ended before frame {int(clips[w].max())} of {n}")


def frame_shrinker(transform: EvalTransform) -> Callable[[np.ndarray], np.ndarray]:
    """Shrink one decoded frame (H, W, 3) to the transform's short side, as `run_video` does before keeping it."""
    short_side = transform.resize or transform.input_size

    def resize(frame: np.ndarray) -> np.ndarray:
        return resize_short_side(frame[None], short_side)[0]

    return resize


def run_video(path: str | Path, model: Callable[[torch.Tensor], torch.Tensor], windowing: Windowing,
              transform: EvalTransform, *, batch_size: int = 8, kind: str | None = None,
              fps: float | None = None, clips_after: int = 0) -> VideoOutput:
    """Run `model` (batched clips -> (B, D)) over every window of one video; raises `VideoError` for broken files.

    Frames are shrunk to the transform's short side as they are decoded, so a kept frame is small. Once the video
    is open, a model with `expect_clips` is told its windows plus `clips_after` (the clips expected after it).
    """
    resize = frame_shrinker(transform)
    frames: list[tuple[int, int]] = []
    outputs: list[torch.Tensor] = []
    batch: list[torch.Tensor] = []
    with open_video(path, kind, fps=fps) as source:
        if hasattr(model, "expect_clips"):
            model.expect_clips(len(windowing.clips(source.num_frames)) + clips_after)
        for start, end, clip in stream_windows(source, windowing, resize):
            frames.append((start, end))
            batch.append(transform(clip))
            if len(batch) == batch_size:
                outputs.append(model(torch.stack(batch)))
                batch = []
        if batch:
            outputs.append(model(torch.stack(batch)))
        return VideoOutput(str(path), source.num_frames, source.fps or None,
                           np.asarray(frames, dtype=np.int64).reshape(-1, 2), torch.cat(outputs), source.frame_times())


def topk_labels(probs: torch.Tensor, class_names: list[str], k: int) -> list[dict]:
    """The `k` best classes of one probability vector as [{"label", "score"}], best first."""
    scores, idx = torch.topk(probs.float(), min(k, len(probs)))
    return [{"label": class_names[i], "score": round(float(s), 6)} for s, i in zip(scores.tolist(), idx.tolist())]


def prediction_record(out: VideoOutput, class_names: list[str], k: int) -> dict:
    """JSON-ready prediction of one video: per-window and whole-video (softmax averaged) top-k."""
    seconds = out.seconds
    windows = []
    for w, (start, end) in enumerate(out.frames.tolist()):
        windows.append({
            "start_frame": start, "end_frame": end,
            "start_sec": _round(seconds[w, 0]) if seconds is not None else None,
            "end_sec": _round(seconds[w, 1]) if seconds is not None else None,
            "top": topk_labels(out.values[w], class_names, k),
        })
    return {"video": out.path, "num_frames": out.num_frames, "fps": out.fps, "duration_sec": _round(out.duration),
            "top": topk_labels(out.values.mean(dim=0), class_names, k), "windows": windows}


def prediction_rows(record: dict) -> list[dict]:
    """Flat CSV rows of one prediction record: one row per (window or whole video, rank)."""
    rows = []
    spans = [("video", 0, record["num_frames"], 0.0, record["duration_sec"], record["top"])]
    spans += [("window", w["start_frame"], w["end_frame"], w["start_sec"], w["end_sec"], w["top"]) for w in record["windows"]]
    for level, start, end, t0, t1, top in spans:
        for rank, entry in enumerate(top, 1):
            rows.append({"video": record["video"], "level": level, "start_frame": start, "end_frame": end,
                         "start_sec": t0, "end_sec": t1, "rank": rank, "label": entry["label"], "score": entry["score"]})
    return rows


CSV_FIELDS = ["video", "level", "start_frame", "end_frame", "start_sec", "end_sec", "rank", "label", "score"]


def _round(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 4)


def predict_videos(setup: InferenceSetup, videos: list[str], *, batch_size: int = 8, fps: float | None = None,
                   top_k: int = 5, progress: bool = True) -> tuple[list[dict], list[str], dict]:
    """Predict each video file: (records, one-line errors of the files that failed, cost)."""
    import sys
    import time

    from tqdm import tqdm

    from resnet3d.data.video import VideoError

    records, errors = [], []
    start = time.perf_counter()
    bar = tqdm(videos, desc="predict", unit="video", disable=not progress, dynamic_ncols=True, file=sys.stderr)
    windows = 0
    for i, path in enumerate(bar):
        try:
            out = run_video(path, setup.model, setup.windowing, setup.transform, batch_size=batch_size, fps=fps,
                            clips_after=expected_clips(windows, len(records), len(videos) - i - 1))
        except VideoError as e:
            errors.append(str(e))
            bar.write(f"resnet3d: skipped {e}", file=sys.stderr)
            continue
        records.append(prediction_record(out, setup.class_names, top_k))
        windows += len(out.frames)
    seconds = time.perf_counter() - start
    cost = setup.cost(views_per_video=windows / len(records) if records else 0, clips=windows, seconds=seconds)
    return records, errors, cost


def expected_clips(windows_done: int, videos_done: int, videos_after: int) -> int:
    """Clips expected from `videos_after` more videos at the mean window count so far (0 before the first video)."""
    return round(windows_done / videos_done * videos_after) if videos_done else 0


def predictions_text(checkpoint: str | Path, setup: InferenceSetup, records: list[dict], errors: list[str],
                     cost: dict, fmt: str = "json") -> str:
    """predict's output file: a JSON document (checkpoint, protocol, cost, videos, errors) or CSV rows."""
    import csv
    import io
    import json

    if fmt == "json":
        return json.dumps({"checkpoint": str(checkpoint), "protocol": setup.protocol(), "cost": cost,
                           "videos": records, "errors": errors}, indent=2) + "\n"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerows(prediction_rows(record))
    return buf.getvalue()
