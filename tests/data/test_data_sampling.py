"""Temporal sampling on hand-worked cases (0-based indices)."""

from __future__ import annotations

import numpy as np
import pytest

from resnet3d.data import sampling as S


def test_clip_span():
    assert S.clip_span(16, 1) == 16
    assert S.clip_span(16, 2) == 31
    with pytest.raises(ValueError):
        S.clip_span(0, 1)


def test_random_clip_reaches_every_valid_start():
    # 20 frames, 16 per clip: starts 0..4 are valid; the original never drew the last one.
    rng = np.random.default_rng(0)
    starts = {int(S.random_clip(20, 16, 1, rng)[0]) for _ in range(400)}
    assert starts == {0, 1, 2, 3, 4}
    clip = S.random_clip(20, 4, 3, np.random.default_rng(1))
    assert np.array_equal(np.diff(clip), [3, 3, 3]) and 0 <= clip[0] <= 20 - 10


def test_random_clip_with_stride_covers_last_start():
    rng = np.random.default_rng(0)
    starts = {int(S.random_clip(12, 4, 3, rng)[0]) for _ in range(300)}  # span 10 -> starts 0..2
    assert starts == {0, 1, 2}


def test_center_clip():
    assert S.center_clip(20, 16).tolist() == list(range(2, 18))
    assert S.center_clip(21, 4, 2).tolist() == [7, 9, 11, 13]  # span 7, last start 14, middle 7


def test_short_video_is_loop_padded_with_stride():
    assert S.center_clip(5, 8).tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    assert S.random_clip(7, 6, 2, np.random.default_rng(0)).tolist() == [0, 2, 4, 6, 0, 2]
    assert S.loop_pad(np.array([3, 4]), 5).tolist() == [3, 4, 3, 4, 3]


def test_even_clips_three_and_one():
    clips = S.even_clips(40, 16, 1, 3)
    assert clips[:, 0].tolist() == [0, 12, 24]
    assert clips[2].tolist() == list(range(24, 40))
    # n = 1 works (the original raised ZeroDivisionError) and is centred.
    assert S.even_clips(40, 16, 1, 1)[:, 0].tolist() == [12]


def test_even_clips_honour_t_stride():
    # The original's bug #254: validation clips were contiguous even with t_stride 2.
    clips = S.even_clips(40, 8, 2, 2)  # span 15, last start 25
    assert clips[0].tolist() == list(range(0, 15, 2))
    assert clips[1].tolist() == list(range(25, 40, 2))


def test_sliding_windows_cover_tail_without_redundant_clip():
    assert S.window_starts(40, 16).tolist() == [0, 16, 24]
    assert S.window_starts(40, 16, 1, 8).tolist() == [0, 8, 16, 24]  # the original added a padded [32..39] clip
    assert S.window_starts(32, 16).tolist() == [0, 16]
    windows = S.sliding_windows(40, 16, 2)  # span 31, stride 31 -> starts 0 and 9
    assert windows[0].tolist() == list(range(0, 31, 2))
    assert windows[1].tolist() == list(range(9, 40, 2))


def test_sliding_windows_short_video_is_one_padded_clip():
    w = S.sliding_windows(10, 16)
    assert w.shape == (1, 16) and w[0].tolist() == list(range(10)) + list(range(6))


def test_uniform_segments():
    assert S.uniform_segments(30, 3).tolist() == [4, 14, 24]
    rng = np.random.default_rng(0)
    draws = np.stack([S.uniform_segments(30, 3, rng) for _ in range(200)])
    assert draws[:, 0].min() == 0 and draws[:, 0].max() == 9
    assert draws[:, 2].min() == 20 and draws[:, 2].max() == 29
    assert S.uniform_segments(2, 4).tolist() == [0, 0, 1, 1]  # fewer frames than segments: repeats
