"""The multi-view evaluation loop shared by per-epoch validation and `resnet3d eval`."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch

from resnet3d.evaluation import metrics
from resnet3d.inference.fast_path import autocast, resolve_precision, to_channels_last

# Per-video statistics row: [video index, label, clips, clip top-1 hits, clip top-5 hits, clip loss sum, prob sums...]
_IDX, _LABEL, _CLIPS, _TOP1, _TOP5, _LOSS = range(6)
_STATS = 6


@dataclass
class EvalResult:
    """Clip- and video-level metrics of one evaluation pass (accuracies are fractions in [0, 1])."""

    loss: float | None
    clip_top1: float
    clip_top5: float
    video_top1: float
    video_top5: float
    mean_class_accuracy: float
    video_scores: torch.Tensor  # (V, C) float64: softmax averaged over each video's clips
    video_labels: torch.Tensor  # (V,) int64, -1 for unlabelled videos
    video_indices: torch.Tensor  # (V,) int64 dataset indices, sorted
    clips_per_video: torch.Tensor  # (V,) int64
    num_clips: int
    num_videos: int
    seconds: float
    clips_per_second: float  # model throughput on this process (views through the model / wall time)

    def summary(self) -> dict:
        """Scalar metrics as a JSON-friendly dict."""
        keys = ("loss", "clip_top1", "clip_top5", "video_top1", "video_top5", "mean_class_accuracy",
                "num_clips", "num_videos", "seconds", "clips_per_second")
        return {k: getattr(self, k) for k in keys}


def evaluate(model: torch.nn.Module, loader: Iterable, *, device: torch.device | str, precision: str = "fp32",
             criterion: Callable | None = None, distributed: bool = False, progress: bool = True) -> EvalResult:
    """Run `model` over every batch `(clips (N,C,T,H,W), clip_labels (N,), clip_video (N,))` of `loader`.

    Each video's views must arrive together, contiguous in one batch (as `MultiViewDataset` + `collate_views`
    give); a video index met again is skipped. With `distributed=True`, per-video statistics are all-gathered and
    de-duplicated by dataset index (a DistributedSampler pads with repeated videos), so every rank returns the
    single-process metrics.
    Pass the bare module, not a DDP wrapper. Inputs go channels_last_3d when the model's weights are.
    """
    return evaluate_models([model], loader, device=device, precision=precision, criterion=criterion,
                           distributed=distributed, progress=progress)[0]


def evaluate_models(models: Sequence[torch.nn.Module], loader: Iterable, *, device: torch.device | str,
                    precision: str = "fp32", criterion: Callable | None = None, distributed: bool = False,
                    progress: bool = True) -> list[EvalResult]:
    """`evaluate` of several models in one pass over `loader` (each batch decoded once); one result per model,
    each with the pass's wall time."""
    device = torch.device(device)
    precision = resolve_precision(precision, device)
    per_clip_loss = _per_clip(criterion) if criterion is not None else None
    channels_last = [_is_channels_last(model) for model in models]
    rows: list[dict[int, torch.Tensor]] = [{} for _ in models]
    was_training = [model.training for model in models]
    for model in models:
        model.eval()
    bar = _progress(loader, progress and (not distributed or _rank() == 0))
    clips_seen = 0
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            for clips, labels, video in bar:
                clips, labels, video = clips.to(device, non_blocking=True), labels.to(device), video.to(device)
                inputs = {False: clips, True: to_channels_last(clips) if any(channels_last) else None}
                for model, model_rows, last in zip(models, rows, channels_last):
                    with autocast(precision, device):
                        logits = model(inputs[last]).float()
                    losses = per_clip_loss(logits, labels.clamp(min=0)) if per_clip_loss is not None else None
                    _accumulate(model_rows, logits, labels, video, losses)
                clips_seen += len(clips)
    finally:
        for model, mode in zip(models, was_training):
            model.train(mode)
        if hasattr(bar, "close"):
            bar.close()
    seconds = time.perf_counter() - start
    results = []
    for model_rows in rows:
        table = _table(model_rows, device)
        if distributed:
            table = _gather_unique(table)
        results.append(_result(table, criterion is not None, seconds, clips_seen))
    return results


def _per_clip(criterion: Callable) -> Callable:
    """A version of `criterion` returning one loss per clip (loss modules with a `reduction` attribute)."""
    if hasattr(criterion, "reduction"):
        unreduced = copy.copy(criterion)
        unreduced.reduction = "none"
        return unreduced

    def batch_mean(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return criterion(logits, labels).float().expand(len(labels))

    return batch_mean


def _is_channels_last(model: torch.nn.Module) -> bool:
    weight = next((p for p in model.parameters() if p.dim() == 5), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last_3d) and not weight.is_contiguous()


def _accumulate(rows: dict[int, torch.Tensor], logits: torch.Tensor, labels: torch.Tensor, video: torch.Tensor,
                losses: torch.Tensor | None) -> None:
    """Add this batch's videos to the per-video statistics rows (float64 on the device).

    A sample's views are contiguous in the batch. A video index already seen (padding of a DistributedSampler,
    a broken file's replacement) is a repeat of identical views and is skipped, so every video counts once.
    """
    keep = _first_runs(video, set(rows))
    logits, labels, video = logits[keep], labels[keep], video[keep]
    losses = losses[keep] if losses is not None else None
    probs = torch.softmax(logits, dim=1).double()
    valid = labels >= 0
    safe = labels.clamp(min=0)
    top1 = (metrics.topk_correct(logits, safe, 1) & valid).double()
    top5 = (metrics.topk_correct(logits, safe, 5) & valid).double()
    loss = losses.double() * valid if losses is not None else torch.zeros_like(top1)
    ids, inverse = torch.unique(video, return_inverse=True)
    batch = torch.zeros(len(ids), _STATS + probs.shape[1], dtype=torch.float64, device=logits.device)
    batch[:, _IDX] = ids.double()
    batch[inverse, _LABEL] = labels.double()  # all clips of a video share its label
    stats = torch.stack([torch.ones_like(top1), top1, top5, loss], dim=1)
    batch[:, _CLIPS:_STATS].index_add_(0, inverse, stats)
    batch[:, _STATS:].index_add_(0, inverse, probs)
    for row in batch:
        rows[int(row[_IDX])] = row


def _first_runs(video: torch.Tensor, seen: set[int]) -> torch.Tensor:
    """Bool mask of the clips in the first contiguous run of each video index not in `seen`."""
    starts = torch.ones_like(video, dtype=torch.bool)
    starts[1:] = video[1:] != video[:-1]
    run_of_clip = starts.cumsum(0) - 1
    keep_run = []
    for v in video[starts].tolist():
        keep_run.append(v not in seen)
        seen.add(v)
    return torch.tensor(keep_run, dtype=torch.bool, device=video.device)[run_of_clip]


def _table(rows: dict[int, torch.Tensor], device: torch.device) -> torch.Tensor:
    if not rows:
        return torch.zeros(0, _STATS, dtype=torch.float64, device=device)
    return torch.stack([rows[k] for k in sorted(rows)])


def _gather_unique(table: torch.Tensor) -> torch.Tensor:
    """All-gather every rank's per-video rows; keep the first copy of each video index, sorted by index."""
    import torch.distributed as dist

    world = dist.get_world_size()
    width = torch.tensor([table.shape[1]], device=table.device)
    dist.all_reduce(width, op=dist.ReduceOp.MAX)  # a rank that saw no video has no class columns
    table = torch.nn.functional.pad(table, (0, int(width) - table.shape[1]))
    sizes = [torch.zeros(1, dtype=torch.long, device=table.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([len(table)], device=table.device))
    longest = max(int(s) for s in sizes)
    padded = torch.nn.functional.pad(table, (0, 0, 0, longest - len(table)))
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    full = torch.cat([p[: int(s)] for p, s in zip(parts, sizes)])
    ids = full[:, _IDX].long()
    order = torch.argsort(ids, stable=True)  # stable: the lowest rank's copy of a video comes first
    ids = ids[order]
    first = torch.ones_like(ids, dtype=torch.bool)
    first[1:] = ids[1:] != ids[:-1]
    return full[order][first]


def _result(table: torch.Tensor, with_loss: bool, seconds: float, clips_seen: int) -> EvalResult:
    table = table.cpu()
    clips = table[:, _CLIPS].sum().item()
    labels = table[:, _LABEL].long()
    scores = table[:, _STATS:] / table[:, _CLIPS:_CLIPS + 1].clamp(min=1)
    labelled = labels >= 0
    labelled_clips = table[labelled, _CLIPS].sum().item()
    num_classes = scores.shape[1]

    def ratio(num: float, den: float) -> float:
        return num / den if den else math.nan

    return EvalResult(
        loss=ratio(table[labelled, _LOSS].sum().item(), labelled_clips) if with_loss else None,
        clip_top1=ratio(table[:, _TOP1].sum().item(), labelled_clips),
        clip_top5=ratio(table[:, _TOP5].sum().item(), labelled_clips),
        video_top1=metrics.accuracy(scores[labelled], labels[labelled], 1),
        video_top5=metrics.accuracy(scores[labelled], labels[labelled], 5),
        mean_class_accuracy=metrics.mean_class_accuracy(scores[labelled], labels[labelled], num_classes),
        video_scores=scores,
        video_labels=labels,
        video_indices=table[:, _IDX].long(),
        clips_per_video=table[:, _CLIPS].long(),
        num_clips=int(clips),
        num_videos=len(table),
        seconds=seconds,
        clips_per_second=clips_seen / seconds if seconds > 0 else math.nan,
    )


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _progress(loader: Iterable, enabled: bool) -> Iterable:
    if not enabled:
        return loader
    from tqdm import tqdm

    return tqdm(loader, desc="eval", unit="batch", leave=False, dynamic_ncols=True)


# ---------------------------------------------------------------------------------------------- result files
