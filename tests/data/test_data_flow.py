"""Optical flow: Farneback on a known motion, the original's HDF5 flow layout both ways, flow clips, bad flow files."""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
from PIL import Image

from resnet3d.data.flow import FlowHDF5Source, dequantize, index_channels, quantize
from resnet3d.data.index import VideoIndex, VideoRecord
from resnet3d.data.prepare import PrepareOptions, prepare
from resnet3d.data.transforms import build_train_transform
from resnet3d.data.video import VideoError, guess_kind, open_video
from resnet3d.data.writer import write_video

H, W, N, SPEED, TOP, LEFT, SIZE = 64, 96, 10, 2, 20, 10, 24


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    import cv2

    coarse = np.random.default_rng(seed).uniform(0, 255, (h // 4 + 1, w // 4 + 1)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)[:h, :w]


def moving_object_frames() -> np.ndarray:
    """A textured square moving right SPEED px per frame over a static textured background."""
    background, thing = _texture(H, W, 1) * 0.5 + 40, _texture(SIZE, SIZE, 2) * 0.6 + 100
    frames = []
    for i in range(N):
        f = background.copy()
        f[TOP:TOP + SIZE, LEFT + SPEED * i:LEFT + SPEED * i + SIZE] = thing
        frames.append(np.repeat(np.clip(f, 0, 255).astype(np.uint8)[..., None], 3, axis=-1))
    return np.stack(frames)


@pytest.fixture(scope="module")
def flow_index(tmp_path_factory):
    """A video of the moving square prepared `--to flow` at full size; returns (index, counts, out_dir, src index)."""
    root = tmp_path_factory.mktemp("flow")
    write_video(root / "move.avi", moving_object_frames(), fps=10, gop=4)
    src = VideoIndex(["move"], [VideoRecord("move", str(root / "move.avi"), 0, "training")])
    opts = PrepareOptions(mode="flow", short_side=None)
    index, counts = prepare(src, root / "out", opts, jobs=1, progress=False)
    return index, counts, root / "out", src


def test_flow_of_an_object_moving_right_is_its_speed_inside_and_zero_outside(flow_index):
    index, counts, _, _ = flow_index
    assert counts["converted"] == 1 and counts["failed"] == 0
    (record,) = index.records
    assert record.kind == "flow" and record.num_frames == N - 1 and record.path.endswith("move.hdf5")
    with open_video(record.path, record.kind) as source:
        assert source.num_frames == N - 1
        flow = dequantize(source.read(np.arange(N - 1)))
    assert flow.shape == (N - 1, H, W, 2)
    for i, f in enumerate(flow):
        left = LEFT + SPEED * i
        inside = f[TOP + 4:TOP + SIZE - 4, left + 4:left + SIZE - 4]
        outside = np.ones((H, W), dtype=bool)
        outside[TOP - 8:TOP + SIZE + 8, left - 8:left + SIZE + SPEED + 8] = False
        assert inside[..., 0].mean() == pytest.approx(SPEED, abs=0.3)
        assert abs(inside[..., 1].mean()) < 0.2
        assert np.abs(f[outside]).mean() < 0.2


def test_prepare_flow_is_resumable(flow_index):
    _, _, out, src = flow_index
    again, counts = prepare(src, out, PrepareOptions(mode="flow", short_side=None), jobs=1, progress=False)
    assert counts["converted"] == 0 and counts["already_done"] == 1 and again.records[0].kind == "flow"


def test_prepare_to_flow_cli_honours_the_bound(flow_index, tmp_path):
    from resnet3d.cli import main

    _, _, _, src = flow_index
    src.save(tmp_path / "src.json")
    out = tmp_path / "cli"
    assert main(["data", "prepare", str(tmp_path / "src.json"), "--to", "flow", "--flow-bound", "10",
                 "--short-side", "0", "--jobs", "1", "--quiet", "--out-dir", str(out)]) == 0
    (record,) = VideoIndex.load(out / "index.json").records
    assert record.kind == "flow"
    with h5py.File(record.path, "r") as f:
        assert f.attrs["flow_bound"] == 10.0
    with open_video(record.path, record.kind) as source:
        u = dequantize(source.read([0]), bound=10.0)[0, TOP + 4:TOP + SIZE - 4, LEFT + 4:LEFT + SIZE - 4, 0]
    assert u.mean() == pytest.approx(SPEED, abs=0.3)


def original_flow_loader(path, frame_indices):
    """The original's VideoLoaderFlowHDF5 + PickFirstChannels(2): PIL images u, v, a dummy third channel."""
    with h5py.File(path, "r") as f:
        flow_data = [f[f"video_{k}"] for k in ("u", "v")]
        video = []
        for i in frame_indices:
            if i < len(flow_data[0]):
                frame = [Image.open(io.BytesIO(d[i])) for d in flow_data]
                frame.append(frame[-1])
                video.append(Image.merge("RGB", frame))
    return np.stack([np.asarray(im)[..., :2] for im in video])


def test_our_flow_files_read_by_the_original_loader_equal_our_reader(flow_index):
    record = flow_index[0].records[0]
    indices = [0, 3, 3, 8]
    with open_video(record.path, "flow") as ours:
        assert np.array_equal(original_flow_loader(record.path, indices), ours.read(indices))
    with h5py.File(record.path, "r") as f:
        assert f["video_u"].dtype == h5py.vlen_dtype(np.uint8) and f["video_u"].shape == (N - 1,)


def write_original_flow(path, u_frames, v_frames) -> None:
    """A flow file as the original's layout has it: grey JPEG bytes in vlen-uint8 datasets video_u / video_v."""
    def blob(plane):
        buf = io.BytesIO()
        Image.fromarray(plane, mode="L").save(buf, format="JPEG", quality=95)
        return np.frombuffer(buf.getvalue(), dtype="uint8")

    with h5py.File(path, "w") as f:
        for name, planes in (("video_u", u_frames), ("video_v", v_frames)):
            data = f.create_dataset(name, (len(planes),), dtype=h5py.special_dtype(vlen="uint8"))
            for i, p in enumerate(planes):
                data[i] = blob(p)


def test_original_flow_files_open_as_flow_and_equal_the_original_loader(tmp_path):
    rng = np.random.default_rng(0)
    planes = [rng.integers(0, 255, (16, 20), dtype=np.uint8) for _ in range(6)]
    path = tmp_path / "v.hdf5"
    write_original_flow(path, planes[:3], planes[3:])
    assert guess_kind(path) == "flow"
    with open_video(path, "flow") as ours:
        assert ours.num_frames == 3 and (ours.height, ours.width) == (16, 20)
        assert np.array_equal(ours.read([0, 1, 2]), original_flow_loader(path, [0, 1, 2]))
    assert index_channels(VideoIndex(["a"], [VideoRecord("v", str(path), 0, kind="hdf5")])) == 2


@pytest.mark.parametrize("u, v, message", [
    (3, None, "'video_v' is missing"),
    (None, 2, "'video_u' is missing"),
    (3, 2, "'video_u' has 3 frames but 'video_v' has 2"),
])
def test_bad_flow_files_give_one_line_naming_the_file(tmp_path, u, v, message):
    path = tmp_path / "bad.hdf5"
    plane = np.zeros((8, 8), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        for name, count in (("video_u", u), ("video_v", v)):
            if count is not None:
                data = f.create_dataset(name, (count,), dtype=h5py.vlen_dtype(np.uint8))
                for i in range(count):
                    buf = io.BytesIO()
                    Image.fromarray(plane, mode="L").save(buf, format="JPEG")
                    data[i] = np.frombuffer(buf.getvalue(), dtype=np.uint8)
    with pytest.raises(VideoError) as err:
        FlowHDF5Source(str(path))
    assert str(path) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


def test_quantisation_clips_at_the_bound_and_round_trips_within_one_step():
    flow = np.array([-25.0, -20.0, -3.3, 0.0, 7.1, 20.0, 40.0], dtype=np.float32)
    q = quantize(flow)
    assert q.tolist()[:2] == [0, 0] and q.tolist()[-2:] == [255, 255]
    assert np.abs(dequantize(q)[1:-1] - flow[1:-1]).max() <= 20.0 / 255 + 1e-6
    assert np.allclose(dequantize(255 - q), -dequantize(q), atol=1e-5)  # why a flipped u is 255 - u


def test_flow_clips_are_two_channel_and_a_flip_negates_horizontal_motion():
    clip = np.zeros((2, 8, 8, 2), dtype=np.uint8)
    clip[..., 0], clip[..., 1] = 200, 90
    transform = build_train_transform(8, crop="center", normalization="flow", hflip=True)
    out = {}
    for seed in range(20):
        rng = np.random.default_rng(seed)
        flipped = np.random.default_rng(seed).random() < 0.5  # the transform's only draw for a centre crop
        out[flipped] = transform(clip, rng)
    assert out[False].shape == (2, 2, 8, 8)
    assert out[False][0].unique().item() == pytest.approx((200 / 255 - 0.5) / 0.5)
    assert out[True][0].unique().item() == pytest.approx((55 / 255 - 0.5) / 0.5)  # 255 - 200
    assert out[True][1].unique().item() == out[False][1].unique().item()
