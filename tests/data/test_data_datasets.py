"""Datasets: clip choice is a function of (seed, epoch, index); broken files are replaced and counted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import N, nearest_frames

from resnet3d.data.datasets import ClipDataset, MultiViewDataset, collate_views
from resnet3d.data.index import VideoIndex, VideoRecord
from resnet3d.data.transforms import build_eval_transform, build_train_transform
from resnet3d.errors import Resnet3dError


def keep_frames(clip, rng):
    """A 'transform' that keeps the uint8 frames, to check which frames were sampled."""
    return torch.from_numpy(np.ascontiguousarray(clip))


def make_index(videos, extra=()):
    names = ["h264.mp4", "mpeg4.avi", "longgop.mp4", "h264.mkv"]
    records = [VideoRecord(f"v{i}", str(videos[n]), label=i % 2) for i, n in enumerate(names)]
    return VideoIndex(["a", "b"], records + list(extra))


def test_clip_dataset_samples_strided_clip_of_the_right_frames(videos, frames):
    ds = ClipDataset(make_index(videos), clip_length=4, t_stride=3, transform=keep_frames, seed=1)
    clip, label = ds[1]
    idx = nearest_frames(clip.numpy(), frames)
    assert label == 1 and np.array_equal(np.diff(idx), [3, 3, 3]) and 0 <= idx[0] <= N - 10
    again, _ = ds[1]
    assert torch.equal(clip, again)
    starts = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        starts.add(int(nearest_frames(ds[1][0].numpy(), frames)[0]))
    assert len(starts) > 1  # other epochs draw other clips


def test_segment_restricts_sampling(videos, frames):
    rec = VideoRecord("seg", str(videos["h264.mp4"]), label=0, segment=(10, 20))
    ds = ClipDataset(VideoIndex(["a"], [rec]), clip_length=4, transform=keep_frames)
    for epoch in range(5):
        ds.set_epoch(epoch)
        idx = nearest_frames(ds[0][0].numpy(), frames)
        assert 10 <= idx.min() and idx.max() < 20
    rec = VideoRecord("t", str(videos["h264.mp4"]), label=0, time_segment=(0.4, 0.6))  # 25 fps: frames 10..14
    ds = ClipDataset(VideoIndex(["a"], [rec]), clip_length=5, temporal="center", transform=keep_frames)
    assert nearest_frames(ds[0][0].numpy(), frames).tolist() == [10, 11, 12, 13, 14]


def test_segments_mode_is_tsn(videos, frames):
    ds = ClipDataset(make_index(videos), clip_length=4, temporal="segments", transform=keep_frames)
    idx = nearest_frames(ds[0][0].numpy(), frames)
    assert [i // 10 for i in idx] == [0, 1, 2, 3]


def test_broken_files_are_replaced_reported_once_and_counted(videos, frames, tmp_path, caplog):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video")
    bad = [VideoRecord("missing", str(tmp_path / "missing.mp4"), label=0),
           VideoRecord("empty", str(tmp_path / "empty.mp4"), label=0),
           VideoRecord("text", str(tmp_path / "text.mp4"), label=0)]
    ds = ClipDataset(make_index(videos, bad), clip_length=4, transform=keep_frames)
    with caplog.at_level("WARNING", logger="resnet3d.data"):
        for epoch in range(2):
            ds.set_epoch(epoch)
            for i in range(len(ds)):
                clip, _ = ds[i]
                assert clip.shape == (4, *frames.shape[1:])
    assert ds.bad_files.count == 3 and int(ds.bad_files) == 3
    assert ds.bad_files.replacements >= 6
    lines = ds.bad_files.lines
    assert len(lines) == 3 and any("missing.mp4: file not found" in s for s in lines)
    assert any("empty.mp4: empty file" in s for s in lines)
    assert len([r for r in caplog.records if "text.mp4" in r.getMessage()]) == 1


def test_workers_give_identical_clips_and_share_the_bad_file_count(videos, frames, tmp_path):
    bad = [VideoRecord("missing", str(tmp_path / "nope.avi"), label=0)]
    ds = ClipDataset(make_index(videos, bad), clip_length=4, t_stride=2,
                     transform=build_train_transform(32, normalization="0.5", color_jitter=0.2), seed=7)
    ds.set_epoch(3)

    def run(workers):
        batches = list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=workers))
        return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])

    x0, y0 = run(0)
    assert ds.bad_files.count == 1
    x2, y2 = run(2)
    assert torch.equal(x0, x2) and torch.equal(y0, y2)
    assert ds.bad_files.count == 1 and ds.bad_files.replacements == 2  # counted in a worker, seen here


def test_all_broken_is_a_clear_error(tmp_path):
    ds = ClipDataset(VideoIndex(["a"], [VideoRecord("x", str(tmp_path / "x.mp4"), label=0)]),
                     transform=keep_frames)
    with pytest.raises(Resnet3dError, match="failed to load"):
        ds[0]
    with pytest.raises(Resnet3dError, match="empty"):
        ClipDataset(VideoIndex(["a"], []), transform=keep_frames)


def test_multiview_even_clips_and_crops(videos, frames):
    ev = build_eval_transform(32, normalization="0.5", crops=3)
    ds = MultiViewDataset(make_index(videos), clip_length=8, t_stride=2, num_clips=3, transform=ev)
    views, label, i = ds[2]
    assert views.shape == (9, 3, 8, 32, 32) and label == 0 and i == 2
    assert ds.video_ids == ["v0", "v1", "v2", "v3"]
    assert ds.windows(2) == [(0, 15), (13, 28), (25, 40)]  # starts round(0, 12.5, 25)
    clips, labels, vids = collate_views([ds[0], ds[1]])
    assert clips.shape == (18, 3, 8, 32, 32)
    assert labels.tolist() == [0] * 9 + [1] * 9 and vids.tolist() == [0] * 9 + [1] * 9


def test_multiview_sliding_windows_read_the_right_frames(videos, frames):
    ds = MultiViewDataset(make_index(videos), clip_length=16, num_clips=None, transform=keep_frames)
    assert ds.windows(0) == [(0, 16), (16, 32), (24, 40)]
    views, _, _ = ds[0]
    assert views.shape == (3, 16, *frames.shape[1:])
    assert nearest_frames(views[2].numpy(), frames).tolist() == list(range(24, 40))
