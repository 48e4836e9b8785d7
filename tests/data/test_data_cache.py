"""The decoded-frame cache: the same clips as decoding every time, each video decoded once, a byte bound kept."""

from __future__ import annotations

import numpy as np
import torch
from data_helpers import H, N, W

import resnet3d.data.datasets as datasets
from resnet3d.data.cache import FrameCache
from resnet3d.data.datasets import ClipDataset, MultiViewDataset
from resnet3d.data.index import VideoIndex, VideoRecord
from resnet3d.data.video import open_video

VIDEO_BYTES = N * H * W * 3


def keep_frames(clip, rng):
    return torch.from_numpy(np.ascontiguousarray(clip))


def count_opens(monkeypatch) -> list[str]:
    opened: list[str] = []

    def counting(path, *args, **kwargs):
        opened.append(path)
        return open_video(path, *args, **kwargs)

    monkeypatch.setattr(datasets, "open_video", counting)
    return opened


def test_cached_datasets_give_the_same_clips_and_decode_each_video_once(videos, monkeypatch):
    index = VideoIndex(["a", "b"], [VideoRecord(f"v{i}", str(p), label=i % 2) for i, p in enumerate(videos.values())])
    cache = FrameCache(10 * VIDEO_BYTES)
    train = {c: ClipDataset(index, clip_length=6, t_stride=2, transform=keep_frames, seed=3, cache=c)
             for c in (None, cache)}
    val = {c: MultiViewDataset(index, clip_length=8, num_clips=3, transform=keep_frames, cache=c)
           for c in (None, cache)}
    opened = count_opens(monkeypatch)
    for epoch in range(3):
        for c in (None, cache):
            train[c].set_epoch(epoch)
        for i in range(len(index)):
            assert torch.equal(train[None][i][0], train[cache][i][0])
            assert torch.equal(val[None][i][0], val[cache][i][0])
    plain = 3 * len(index) * 2  # uncached: a train clip and the validation views per video and epoch
    assert len(opened) == plain + len(index)
    assert len(cache) == len(index) and cache.bytes == len(index) * VIDEO_BYTES


def test_cache_keeps_its_byte_bound_and_skips_videos_larger_than_it(videos):
    paths = [str(p) for p in videos.values()]
    cache = FrameCache(2 * VIDEO_BYTES)
    for p in paths[:3]:
        with cache.open(p, lambda p=p: open_video(p)) as source:
            assert source.num_frames == N
    assert len(cache) == 2 and cache.bytes == 2 * VIDEO_BYTES
    assert list(cache._videos) == paths[1:3]  # the least recently used one went
    tiny = FrameCache(VIDEO_BYTES - 1)
    with open_video(paths[0]) as direct, tiny.open(paths[0], lambda: open_video(paths[0])) as source:
        assert np.array_equal(source.read([5, 1, 5]), direct.read([5, 1, 5]))
    assert len(tiny) == 0 and tiny.bytes == 0


def test_broken_videos_are_still_replaced_and_counted_with_a_cache(videos, tmp_path):
    (tmp_path / "bad.mp4").write_text("not a video")
    records = [VideoRecord("ok", str(videos["h264.mp4"]), label=0), VideoRecord("bad", str(tmp_path / "bad.mp4"), label=0)]
    ds = ClipDataset(VideoIndex(["a"], records), clip_length=4, transform=keep_frames, cache=FrameCache(VIDEO_BYTES))
    assert ds[1][0].shape == (4, H, W, 3)
    assert ds.bad_files.count == 1 and len(ds.cache) == 1


def test_caching_a_video_file_decodes_it_in_one_pass(videos, monkeypatch):
    from resnet3d.data.pyav_source import PyAVSource

    reads = []
    real = PyAVSource._read_sorted
    monkeypatch.setattr(PyAVSource, "_read_sorted", lambda self, wanted: reads.append(len(wanted)) or real(self, wanted))
    cache = FrameCache(10 * VIDEO_BYTES)
    kept = cache.open("v", lambda: open_video(videos["h264.mp4"]))
    assert reads == [N] and kept.num_frames == N  # the size check decodes nothing: one read of all the frames
