"""Two-stream late fusion (RGB + optical flow): a weighted average of the two evaluations' video softmax scores."""

from __future__ import annotations

import math

import torch

from resnet3d.evaluation import metrics
from resnet3d.evaluation.multiview import EvalResult
from resnet3d.errors import Resnet3dError

RULE = "(1 - w) * rgb + w * flow, per video, of the softmax scores averaged over each stream's views"


def check_weight(weight: float) -> float:
    """The flow stream's share, checked to be in [0, 1]."""
    if not 0.0 <= weight <= 1.0:
        raise Resnet3dError(f"--fusion-weight must be in [0, 1] (the flow stream's share), got {weight}")
    return weight


def fuse(rgb: EvalResult, rgb_ids: list[str], flow: EvalResult, flow_ids: list[str], weight: float) -> EvalResult:
    """The fused video scores of the videos both streams evaluated (matched by id), indexed like `rgb_ids`.

    Clip-level numbers do not exist for a fusion, so they are NaN; labels must agree between the streams.
    """
    check_weight(weight)
    if rgb.video_scores.shape[1] != flow.video_scores.shape[1]:
        raise Resnet3dError(f"the RGB model has {rgb.video_scores.shape[1]} classes and the flow model "
                            f"{flow.video_scores.shape[1]}; two streams need the same classes")
    flow_row = {flow_ids[int(i)]: r for r, i in enumerate(flow.video_indices.tolist())}
    rgb_rows = [r for r, i in enumerate(rgb.video_indices.tolist()) if rgb_ids[int(i)] in flow_row]
    if not rgb_rows:
        raise Resnet3dError("no video was evaluated by both streams (the RGB and flow indices share no video id)")
    other = torch.tensor([flow_row[rgb_ids[int(rgb.video_indices[r])]] for r in rgb_rows])
    mine = torch.tensor(rgb_rows)
    labels = rgb.video_labels[mine]
    if not torch.equal(labels, flow.video_labels[other]):
        bad = int((labels != flow.video_labels[other]).nonzero()[0])
        raise Resnet3dError(f"video {rgb_ids[int(rgb.video_indices[mine[bad]])]!r} has different labels in the RGB "
                            "and flow indices")
    scores = (1.0 - weight) * rgb.video_scores[mine] + weight * flow.video_scores[other]
    labelled = labels >= 0
    clips = rgb.clips_per_video[mine] + flow.clips_per_video[other]
    return EvalResult(
        loss=None, clip_top1=math.nan, clip_top5=math.nan,
        video_top1=metrics.accuracy(scores[labelled], labels[labelled], 1),
        video_top5=metrics.accuracy(scores[labelled], labels[labelled], 5),
        mean_class_accuracy=metrics.mean_class_accuracy(scores[labelled], labels[labelled], scores.shape[1]),
        video_scores=scores, video_labels=labels, video_indices=rgb.video_indices[mine], clips_per_video=clips,
        num_clips=int(clips.sum()), num_videos=len(rgb_rows), seconds=rgb.seconds + flow.seconds,
        clips_per_second=math.nan)
