"""Classification metrics as pure tensor functions: top-k, clip → video averaging, class accuracies, confusion.

Tie rule (top-k): a sample counts as a top-k hit only if fewer than k *other* classes score at least as high as
the true class. Ties therefore count against the prediction: a constant (untrained or collapsed) model gets top-1
of 0, never an accuracy that depends on class order. A NaN true-class score is never a hit.

Single predictions (confusion matrix) use the arg-max with the lowest class index on ties; with exact ties the
confusion-matrix diagonal can thus exceed the top-1 hits.
"""

from __future__ import annotations

import math

import torch


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Bool (N,): the true class is in the top `k` of `scores` (N, C) under the tie rule above."""
    if scores.dim() != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(f"expected scores (N, C) and labels (N,), got {tuple(scores.shape)} and {tuple(labels.shape)}")
    labels = labels.to(device=scores.device, dtype=torch.long)
    true = scores.gather(1, labels[:, None])
    # Other classes scoring >= the true class (the true class itself always matches, hence the -1).
    rivals = (scores >= true).sum(dim=1) - 1
    return (rivals < k) & ~torch.isnan(true[:, 0])


def accuracy(scores: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Fraction of top-k hits (NaN when there are no samples)."""
    if labels.numel() == 0:
        return math.nan
    return topk_correct(scores, labels, k).double().mean().item()


def per_class_accuracy(scores: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int = 1) -> torch.Tensor:
    """Float64 (num_classes,): top-k accuracy within each true class; NaN for classes with no samples."""
    labels = labels.to(device=scores.device, dtype=torch.long)
    hits = topk_correct(scores, labels, k).double()
    totals = torch.bincount(labels, minlength=num_classes).double()
    correct = torch.zeros(num_classes, dtype=torch.float64, device=scores.device).index_add_(0, labels, hits)
    return torch.where(totals > 0, correct / totals.clamp(min=1), torch.full_like(totals, math.nan))


def mean_class_accuracy(scores: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int = 1) -> float:
    """Mean of the per-class accuracies over the classes that have samples (NaN when none do)."""
    per_class = per_class_accuracy(scores, labels, num_classes, k)
    present = per_class[~torch.isnan(per_class)]
    return present.mean().item() if present.numel() else math.nan


def predictions(scores: torch.Tensor) -> torch.Tensor:
    """Arg-max class per row; ties go to the lowest class index (NaN scores are treated as -inf)."""
    clean = torch.nan_to_num(scores.double(), nan=-math.inf)
    best = clean.max(dim=1, keepdim=True).values
    idx = torch.arange(scores.shape[1], device=scores.device).expand_as(clean)
    return torch.where(clean == best, idx, scores.shape[1]).min(dim=1).values


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Int64 (num_classes, num_classes): rows are true classes, columns predicted classes."""
    labels = labels.to(dtype=torch.long, device=pred.device)
    flat = labels * num_classes + pred.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
