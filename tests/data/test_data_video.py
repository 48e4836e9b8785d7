"""Decoding: frames read back equal the frames encoded, at any index order, for every container and source."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import N, make_frames, mae, nearest_frames

from resnet3d.data.video import VideoError, guess_kind, open_video

CODEC_ERROR = 6.0  # mean absolute error allowed between an encoded frame and its decoded copy
CONTAINERS = ["h264.mp4", "mpeg4.avi", "longgop.mp4", "h264.mkv", "h264.ts", "longgop.ts"]


@pytest.mark.parametrize("name", CONTAINERS)
def test_sequential_decode_matches_encoded_frames(videos, frames, name):
    with open_video(videos[name]) as v:
        assert v.num_frames == N and v.fps == pytest.approx(25.0)
        assert (v.height, v.width) == frames.shape[1:3]
        decoded = np.stack(list(v.iter_frames()))
    assert decoded.dtype == np.uint8 and decoded.shape == frames.shape
    assert nearest_frames(decoded, frames).tolist() == list(range(N))
    assert max(mae(a, b) for a, b in zip(decoded, frames)) < CODEC_ERROR


@pytest.mark.parametrize("name", CONTAINERS)
def test_random_access_any_order_with_repeats(videos, frames, name):
    wanted = [37, 3, 3, 20, 0, 39, 21, 8, 37]
    with open_video(videos[name]) as v:
        got = v.read(wanted)
        again = v.read([5, 6, 7])  # a second read on the same open file
    assert got.shape == (len(wanted), *frames.shape[1:])
    assert nearest_frames(got, frames).tolist() == wanted
    assert np.array_equal(got[1], got[2]) and np.array_equal(got[0], got[-1])
    assert nearest_frames(again, frames).tolist() == [5, 6, 7]


def test_long_keyframe_interval_has_one_keyframe_and_seeks_forward(videos, frames):
    with open_video(videos["longgop.mp4"]) as v:
        assert v.info.keyframes.tolist() == [0]  # otherwise this test would not exercise a long GOP
        assert nearest_frames(v.read([30, 31, 32]), frames).tolist() == [30, 31, 32]
    with open_video(videos["h264.mp4"]) as v:
        assert v.info.keyframes.tolist() == [0, 8, 16, 24, 32]


def test_b_frames_and_timestamps_map_to_presentation_order(videos):
    # x264 (veryfast) writes B-frames: packet order differs from presentation order; pts must be sorted per index.
    with open_video(videos["h264.mp4"]) as v:
        assert np.all(np.diff(v.info.pts) > 0) and len(v.info.pts) == N


def _rotated_png_mov(path, frames, degrees, hflip):
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("png", rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "rgb24"
        stream.set_display_rotation(degrees, hflip=hflip)
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())


# What ffmpeg's autorotate (which made the original's JPEG frames) gives for each display matrix, checked against
# ffmpeg 9.0 (imageio-ffmpeg 0.8.1) on these files: a counter-clockwise turn is np.rot90, the mirror comes after it.
DISPLAY_MATRICES = {(90, False): lambda f: np.rot90(f, 1), (-90, False): lambda f: np.rot90(f, -1),
                    (180, False): lambda f: np.rot90(f, 2), (0, True): lambda f: f[:, ::-1],
                    (90, True): lambda f: np.rot90(f, 1)[:, ::-1]}


@pytest.mark.parametrize("degrees, hflip", list(DISPLAY_MATRICES))
def test_phone_videos_decode_upright_as_their_display_matrix_says(tmp_path, degrees, hflip):
    frames = make_frames(n=6, h=16, w=24)
    path = tmp_path / "phone.mov"
    _rotated_png_mov(path, frames, degrees, hflip)
    expected = np.stack([DISPLAY_MATRICES[degrees, hflip](f) for f in frames])
    with open_video(path) as v:
        assert (v.height, v.width) == expected.shape[1:3]
        assert np.array_equal(np.stack(list(v.iter_frames())), expected)  # PNG is lossless: exactly the frames
        assert np.array_equal(v.read([4, 1]), expected[[4, 1]])
        assert v.read([0]).flags.c_contiguous


def _ts_changing_size(path, sizes=(32, 48), frames_each=10):
    """MPEG-TS whose frames change size at a keyframe (encoders of each size muxed into one stream), as a
    broadcast recording or adaptive stream can."""
    import fractions

    import av

    tb = fractions.Fraction(1, 25)
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=25)
        for part, size in enumerate(sizes):
            codec = stream.codec_context if part == 0 else av.CodecContext.create("libx264", "w")
            codec.width = codec.height = size
            codec.pix_fmt, codec.time_base, codec.options = "yuv420p", tb, {"bf": "0"}
            packets = []
            for i in range(part * frames_each, (part + 1) * frames_each):
                frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 10 * i, np.uint8), format="rgb24")
                frame.pts, frame.time_base = i, tb
                packets += codec.encode(frame)
            for packet in packets + codec.encode(None):
                packet.stream, packet.time_base = stream, tb
                out.mux(packet)


def test_a_frame_size_change_is_a_video_error_only_for_clips_across_it(tmp_path):
    path = tmp_path / "sizes.ts"
    _ts_changing_size(path)
    with open_video(path) as v:
        assert v.num_frames == 20
        assert v.read([2, 3]).shape == (2, 32, 32, 3) and v.read([15, 16]).shape == (2, 48, 48, 3)
        with pytest.raises(VideoError, match=r"sizes.ts: frame 15 is 48x48 but frame 0 is 32x32: the frame size "
                                             r"changes within the video$"):
            v.read([0, 15])
        with pytest.raises(VideoError, match="frame 10 is 48x48 but frame 0 is 32x32"):
            list(v.iter_frames())


def test_a_live_input_that_switches_resolution_keeps_its_first_frame_size(tmp_path):
    from resnet3d.data.stream import open_stream

    path = tmp_path / "sizes.ts"
    _ts_changing_size(path)
    with open_stream(path) as live:
        frames = [frame for frame, _ in live.frames()]
    assert len(frames) == 20 and {f.shape for f in frames} == {(32, 32, 3)}
    levels = [float(f.mean()) for f in frames]  # frame i is flat grey 10 * i: scaling keeps it
    assert levels == pytest.approx([10.0 * i for i in range(20)], abs=3)


def test_a_frame_folder_with_one_frame_of_another_size_is_a_video_error(tmp_path):
    from PIL import Image

    for i, size in enumerate([32, 32, 40, 32], 1):
        Image.fromarray(np.full((size, size, 3), 50 * i, np.uint8)).save(tmp_path / f"image_{i:05d}.jpg")
    with open_video(tmp_path) as v:
        assert v.read([0, 1, 3]).shape == (3, 32, 32, 3)
        with pytest.raises(VideoError, match="frame 2 is 40x40 but frame 0 is 32x32"):
            v.read([0, 1, 2, 3])


def test_read_rejects_out_of_range(videos):
    with open_video(videos["h264.mp4"]) as v, pytest.raises(IndexError):
        v.read([0, N])


def _truncate(src, dst, fraction):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.mark.parametrize("name", ["mpeg4.avi", "h264.mkv"])
def test_truncated_file_counts_only_frames_that_decode(videos, frames, tmp_path, name):
    path = _truncate(videos[name], tmp_path / name, 0.6)
    with open_video(path) as v:
        n = v.num_frames
        assert 0 < n < N
        decoded = np.stack(list(v.iter_frames()))
        last = v.read([n - 1])
    assert nearest_frames(decoded, frames).tolist() == list(range(n))
    assert nearest_frames(last, frames).tolist() == [n - 1]


@pytest.mark.parametrize("make,reason", [
    (lambda p: p, "file not found"),
    (lambda p: (p.write_bytes(b""), p)[1], "empty file"),
    (lambda p: (p.write_text("hello, I am not a video\n" * 50), p)[1], "not a readable video"),
])
def test_broken_files_raise_video_error_naming_path_and_reason(tmp_path, make, reason):
    path = make(tmp_path / "broken.mp4")
    with pytest.raises(VideoError) as e:
        open_video(path)
    assert str(path) in str(e.value) and reason in str(e.value)


def test_mpeg_ts_with_a_lost_packet_keeps_its_tail(videos, frames, tmp_path):
    # A 188-byte packet lost mid-file (a UDP capture, a broadcast recording) flags the file damaged, so its tail is
    # checked by decoding; MPEG-TS seeks can land a group of pictures late, which once dropped the last one.
    data = bytearray(videos["h264.ts"].read_bytes())
    middle = len(data) // 188 // 2 * 188
    del data[middle:middle + 188]
    path = tmp_path / "lost.ts"
    path.write_bytes(bytes(data))
    with open_video(path) as v:
        decoded = np.stack(list(v.iter_frames()))
    matched = nearest_frames(decoded, frames).tolist()
    assert matched[-1] == N - 1 and len(matched) >= N - 2  # the tail is there; at most the damaged frame is not
    assert matched == sorted(set(matched))


def test_two_files_joined_end_to_end_are_a_video_error_saying_to_remux(videos, tmp_path):
    # `cat a.ts b.ts`: the second file's timestamps start again, so frames cannot be found by timestamp (it once
    # indexed only half of the frames, silently)
    path = tmp_path / "joined.ts"
    path.write_bytes(videos["h264.ts"].read_bytes() * 2)
    with pytest.raises(VideoError, match=r"joined.ts: timestamps start again \(0\.\d\d s after 1\.\d\d s: files "
                                         r"joined end to end\?\); remux it first, e.g. ffmpeg -i IN -c copy OUT.mp4"):
        open_video(path)


def test_mp4_cut_before_its_index_is_a_video_error(videos, tmp_path):
    path = _truncate(videos["h264.mp4"], tmp_path / "cut.mp4", 0.5)  # moov atom at the end is lost
    with pytest.raises(VideoError, match="cut.mp4"):
        open_video(path)


def test_jpeg_frame_folder_is_one_based_on_disk(tmp_path, frames):
    from PIL import Image

    folder = tmp_path / "label" / "vid"
    folder.mkdir(parents=True)
    for i, f in enumerate(frames[:10]):
        Image.fromarray(f).save(folder / f"image_{i + 1:05d}.jpg", quality=95)
    (folder / "notes.txt").write_text("ignored")
    assert guess_kind(folder) == "frames"
    with open_video(folder, "frames", fps=30) as v:
        assert v.num_frames == 10 and v.fps == 30
        got = v.read([9, 0, 4])
    assert nearest_frames(got, frames[:10]).tolist() == [9, 0, 4]
    assert mae(got[1], frames[0]) < CODEC_ERROR


def test_frame_folder_errors(tmp_path):
    with pytest.raises(VideoError, match="frame folder not found"):
        open_video(tmp_path / "missing", "frames")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no frame images"):
        open_video(tmp_path / "empty", "frames")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "image_00001.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with open_video(bad, "frames") as v, pytest.raises(VideoError, match="image_00001.jpg: not a decodable image"):
        v.read([0])


def test_hdf5_source_reads_jpeg_bytes(tmp_path, frames):
    import io

    import h5py
    from PIL import Image

    path = tmp_path / "vid.hdf5"
    blobs = []
    for f in frames[:6]:
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=95)
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    with h5py.File(path, "w") as h:
        h.create_dataset("video", data=np.array(blobs, dtype=object), dtype=h5py.vlen_dtype(np.uint8))
    assert guess_kind(path) == "hdf5"
    with open_video(path, "hdf5") as v:
        assert v.num_frames == 6 and v.fps is None
        assert nearest_frames(v.read([5, 1]), frames[:6]).tolist() == [5, 1]
    with h5py.File(tmp_path / "other.h5", "w") as h:
        h.create_dataset("frames", data=np.zeros(3))
    with pytest.raises(VideoError, match="no 'video' dataset"):
        open_video(tmp_path / "other.h5", "hdf5")
