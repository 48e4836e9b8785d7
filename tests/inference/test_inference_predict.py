"""Streaming sliding windows and per-video prediction on generated videos."""

import weakref

import numpy as np
import pytest
import torch

from resnet3d.data import sampling
from resnet3d.data.transforms import build_eval_transform
from resnet3d.data.video import VideoError, open_video
from resnet3d.inference.predict import Windowing, prediction_record, prediction_rows, run_video, stream_windows


class CountingSource:
    """A fake video whose frame i is filled with the value i; remembers every frame it handed out."""

    path = "fake.mp4"

    def __init__(self, n: int):
        self.num_frames = n
        self.handed_out: list[weakref.ref] = []

    def iter_frames(self):
        for i in range(self.num_frames):
            frame = np.full((2, 2, 3), i % 256, dtype=np.uint8)
            self.handed_out.append(weakref.ref(frame))
            yield frame

    def alive(self) -> int:
        return sum(r() is not None for r in self.handed_out)


@pytest.mark.parametrize("n", [1, 5, 16, 17, 31, 32, 33, 100])
@pytest.mark.parametrize("length,t_stride,stride", [(8, 1, None), (8, 1, 3), (4, 2, 5), (4, 3, 20)])
def test_stream_windows_match_sampling_and_cover_the_video(n, length, t_stride, stride):
    windowing = Windowing(length, t_stride, stride)
    got = list(stream_windows(CountingSource(n), windowing))
    expected = sampling.window_starts(n, length, t_stride, stride)
    assert [s for s, _, _ in got] == expected.tolist()
    for start, end, clip in got:
        idx = sampling.clip_at(start, n, length, t_stride)
        assert clip[:, 0, 0, 0].tolist() == [i % 256 for i in idx]
        assert end == min(start + windowing.span, n)
    assert got[0][0] == 0 and got[-1][1] == n  # first window starts at frame 0, last one ends on the last frame
    assert len({s for s, _, _ in got}) == len(got)  # no repeated window


def test_stream_windows_keep_at_most_one_window_of_frames():
    source = CountingSource(400)
    peak = 0
    for _ in stream_windows(source, Windowing(8, 2, 4)):
        peak = max(peak, source.alive())
    assert peak <= Windowing(8, 2, 4).span + 1  # the window's frames plus the one being decoded


def test_stream_windows_error_when_the_stream_ends_early():
    source = CountingSource(30)
    source.num_frames = 40  # the header promised more frames than decode
    source.iter_frames = CountingSource(30).iter_frames
    with pytest.raises(VideoError, match="fake.mp4"):
        list(stream_windows(source, Windowing(8)))


def _mean_colour(clips: torch.Tensor) -> torch.Tensor:
    """A stand-in model: per-channel mean of each clip, softmaxed (3 'classes')."""
    return torch.softmax(clips.mean(dim=(2, 3, 4)), dim=1)


def test_run_video_windows_cover_the_video_with_times(video_dir):
    transform = build_eval_transform(32, "kinetics")
    out = run_video(video_dir / "long.mp4", _mean_colour, Windowing(8, 1, 8), transform, batch_size=4)
    assert out.num_frames == 45 and out.fps == pytest.approx(15)
    assert out.frames.tolist() == [[0, 8], [8, 16], [16, 24], [24, 32], [32, 40], [37, 45]]
    np.testing.assert_allclose(out.seconds[-1], [37 / 15, 3.0])
    # Each window's output equals the model on the same frames read directly.
    with open_video(video_dir / "long.mp4") as src:
        direct = transform(src.read(sampling.clip_at(37, 45, 8)))
    torch.testing.assert_close(out.values[-1], _mean_colour(direct[None])[0], atol=1e-5, rtol=0)

    record = prediction_record(out, ["red", "green", "blue"], k=2)
    assert record["duration_sec"] == 3.0
    assert record["windows"][0]["start_sec"] == 0.0 and record["windows"][-1]["end_sec"] == 3.0
    video_mean = out.values.mean(dim=0)
    assert record["top"][0]["label"] == ["red", "green", "blue"][int(video_mean.argmax())]
    assert record["top"][0]["score"] == pytest.approx(video_mean.max().item(), abs=1e-6)
    rows = prediction_rows(record)
    assert len(rows) == 2 * (1 + 6) and rows[0]["level"] == "video" and rows[2]["level"] == "window"


def test_video_shorter_than_a_clip_is_loop_padded(video_dir):
    transform = build_eval_transform(32, "kinetics")
    out = run_video(video_dir / "short.mp4", _mean_colour, Windowing(16, 1, None), transform)
    assert out.frames.tolist() == [[0, 5]]
    with open_video(video_dir / "short.mp4") as src:
        looped = transform(src.read([0, 1, 2, 3, 4] * 3 + [0]))
    torch.testing.assert_close(out.values[0], _mean_colour(looped[None])[0], atol=1e-5, rtol=0)


def test_broken_video_raises_a_video_error_naming_it(video_dir):
    with pytest.raises(VideoError, match="broken.mp4"):
        run_video(video_dir / "broken.mp4", _mean_colour, Windowing(8), build_eval_transform(32))
