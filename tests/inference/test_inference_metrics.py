"""Metrics on hand-worked tiny cases: top-k with ties, video averaging, class accuracies, confusion matrix."""

import math

import pytest
import torch

from resnet3d.evaluation import metrics
from reference_helpers import average_by_video, ranked_results_accuracy


def test_topk_plain_hits_and_misses():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 1, 0])
    assert metrics.topk_correct(scores, labels, 1).tolist() == [True, False, False]
    assert metrics.topk_correct(scores, labels, 2).tolist() == [True, True, False]
    assert metrics.topk_correct(scores, labels, 3).tolist() == [True, True, True]
    assert metrics.accuracy(scores, labels, 2) == pytest.approx(2 / 3)


def test_topk_ties_count_against_the_prediction():
    # Row 0: true class 0 ties with class 2 for the top score -> not a top-1 hit, but a top-2 hit.
    # Row 1: all equal -> a hit only when k covers every class.
    scores = torch.tensor([[0.4, 0.2, 0.4], [1.0, 1.0, 1.0]])
    labels = torch.tensor([0, 1])
    assert metrics.topk_correct(scores, labels, 1).tolist() == [False, False]
    assert metrics.topk_correct(scores, labels, 2).tolist() == [True, False]
    assert metrics.topk_correct(scores, labels, 3).tolist() == [True, True]
    # The tie rule does not depend on class order: the same scores with the label on the other tied class.
    assert metrics.topk_correct(scores[:1], torch.tensor([2]), 1).tolist() == [False]


def test_topk_nan_true_score_is_never_a_hit():
    scores = torch.tensor([[math.nan, 0.1], [0.9, math.nan]])
    assert metrics.topk_correct(scores, torch.tensor([0, 0]), 2).tolist() == [False, True]


def test_average_by_video_groups_and_averages():
    scores = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8], [0.4, 0.6]])
    video = torch.tensor([7, 3, 7, 3, 3])
    ids, mean, counts = average_by_video(scores, video)
    assert ids.tolist() == [3, 7]
    assert counts.tolist() == [3, 2]
    torch.testing.assert_close(mean, torch.tensor([[0.2, 0.8], [0.75, 0.25]], dtype=torch.float64))


def test_per_class_and_mean_class_accuracy():
    # class 0: 2 samples, 1 right; class 1: 1 sample, right; class 2: no samples (NaN, excluded from the mean).
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.2, 0.7, 0.1]])
    labels = torch.tensor([0, 0, 1])
    per_class = metrics.per_class_accuracy(scores, labels, 3)
    assert per_class[:2].tolist() == [0.5, 1.0] and math.isnan(per_class[2])
    assert metrics.mean_class_accuracy(scores, labels, 3) == pytest.approx(0.75)
    # Plain accuracy weights samples, mean class accuracy weights classes.
    assert metrics.accuracy(scores, labels) == pytest.approx(2 / 3)


def test_predictions_and_confusion_matrix():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.3, 0.3, 0.4], [0.5, 0.5, 0.0], [math.nan, 0.2, 0.1]])
    pred = metrics.predictions(scores)
    assert pred.tolist() == [0, 2, 0, 1]  # tie -> lowest index; NaN treated as -inf
    cm = metrics.confusion_matrix(pred, torch.tensor([0, 1, 1, 1]), 3)
    assert cm.tolist() == [[1, 0, 0], [1, 1, 1], [0, 0, 0]]
    assert cm.sum() == 4


def test_ranked_results_accuracy_counts_missing_videos_as_wrong():
    truth = {"a": "run", "b": "jump", "c": "swim", "d": "run"}
    ranked = {"a": ["run", "jump"], "b": ["run", "jump"], "d": ["swim", "jump"], "extra": ["run"]}
    assert ranked_results_accuracy(ranked, truth, 1) == (0.25, 1)
    assert ranked_results_accuracy(ranked, truth, 2) == (0.5, 1)
    acc, missing = ranked_results_accuracy({}, {})
    assert math.isnan(acc) and missing == 0
