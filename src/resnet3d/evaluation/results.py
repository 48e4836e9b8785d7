"""The files of an evaluation: results.json (numbers, protocol, hash of the videos), per_class.csv, confusion
matrix, predictions.csv and the original's results format (results_original.json)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from resnet3d.evaluation import metrics
from resnet3d.evaluation.multiview import EvalResult


def video_list_hash(video_ids: list[str]) -> str:
    """sha256 of the sorted video ids, one per line: tells whether two evaluations saw the same videos."""
    import hashlib

    return hashlib.sha256("\n".join(sorted(video_ids)).encode("utf-8")).hexdigest()


def original_results(result: EvalResult, video_ids: list[str], class_names: list[str], k: int = 5) -> dict:
    """The original's inference output: {"results": {video_id: [{"label", "score"}, ...]}} with the top-k averaged scores."""
    k = min(k, len(class_names))
    out = {}
    for row, idx in zip(result.video_scores, result.video_indices.tolist()):
        scores, top = torch.topk(row, k)
        out[video_ids[idx]] = [{"label": class_names[c], "score": float(s)} for s, c in zip(scores.tolist(), top.tolist())]
    return {"results": out}


def results_document(result: EvalResult, video_ids: list[str], class_names: list[str], *, protocol: dict,
                     cost: dict | None = None, checkpoint: str | None = None) -> tuple[dict, torch.Tensor]:
    """The `resnet3d eval` results.json content, and the video-level confusion matrix (labelled videos only).

    `video_ids` lists every video that was meant to be evaluated (dataset order); the ones absent from `result`
    (broken files) are reported as missing and counted wrong in `video_top1_all`.
    """
    labelled = result.video_labels >= 0
    labels, scores = result.video_labels[labelled], result.video_scores[labelled]
    num_classes = len(class_names)
    cm = metrics.confusion_matrix(metrics.predictions(scores), labels, num_classes)
    per_class = metrics.per_class_accuracy(scores, labels, num_classes)
    counts = torch.bincount(labels, minlength=num_classes)
    evaluated = [video_ids[i] for i in result.video_indices.tolist()]
    missing = sorted(set(video_ids) - set(evaluated))
    hits = metrics.topk_correct(scores, labels, 1).sum().item()
    rows = []
    for c, name in enumerate(class_names):
        wrong = cm[c].clone()
        wrong[c] = 0
        rows.append({"class": name, "videos": int(counts[c]), "top1": _nan_to_none(per_class[c].item()),
                     "confused_with": class_names[int(wrong.argmax())] if wrong.sum() > 0 else None})
    doc = {
        "format": "resnet3d-eval", "version": 1, "checkpoint": checkpoint, "protocol": protocol,
        "videos": {"listed": len(video_ids), "evaluated": len(evaluated), "labelled": int(labelled.sum()),
                   "missing": missing, "sha256": video_list_hash(evaluated)},
        "metrics": {**{k: _nan_to_none(v) for k, v in result.summary().items()},
                    "video_top1_all": hits / (int(labelled.sum()) + len(missing)) if labelled.any() or missing else None},
        "per_class": rows,
        "cost": cost,
        "tie_rule": "a top-k hit needs fewer than k other classes scoring at least as high as the true class",
    }
    return doc, cm


def _nan_to_none(v):
    return None if isinstance(v, float) and math.isnan(v) else v


def write_results(out: Path, doc: dict, cm, result, video_ids: list[str], class_names: list[str], top_k: int) -> None:
    """results.json, confusion.csv/.png, per_class.csv, predictions.csv and results_original.json in `out`."""
    from resnet3d.evaluation.report import plot_confusion, write_confusion_csv
    from resnet3d.io import atomic_write_json, atomic_write_text

    doc["files"] = {"confusion_csv": "confusion.csv", "confusion_png": "confusion.png", "per_class": "per_class.csv",
                    "predictions": "predictions.csv", "original": "results_original.json"}
    atomic_write_json(out / "results.json", doc)
    write_confusion_csv(cm.numpy(), class_names, out / "confusion.csv")
    plot_confusion(cm.numpy(), class_names, out / "confusion.png")
    atomic_write_text(out / "per_class.csv", _per_class_csv(doc["per_class"]))
    atomic_write_text(out / "predictions.csv", _predictions_csv(result, video_ids, class_names))
    atomic_write_json(out / "results_original.json", original_results(result, video_ids, class_names, top_k))


def _per_class_csv(rows: list[dict]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["class", "videos", "top1", "confused_with"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _predictions_csv(result, video_ids: list[str], class_names: list[str]) -> str:
    import csv
    import io

    import torch

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    k = min(5, len(class_names))
    writer.writerow(["video", "label", "clips", *[f"top{i}" for i in range(1, k + 1)],
                     *[f"score{i}" for i in range(1, k + 1)]])
    for idx, label, clips, row in zip(result.video_indices.tolist(), result.video_labels.tolist(),
                                      result.clips_per_video.tolist(), result.video_scores):
        scores, top = torch.topk(row, k)
        writer.writerow([video_ids[idx], class_names[label] if label >= 0 else "", clips,
                         *[class_names[c] for c in top.tolist()], *[f"{s:.6f}" for s in scores.tolist()]])
    return buf.getvalue()
