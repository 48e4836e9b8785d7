"""`resnet3d data index|doctor|prepare` end to end on tiny videos, broken ones included."""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_helpers import N, make_frames, nearest_frames

from resnet3d.cli import main
from resnet3d.data.annotations import read_index
from resnet3d.data.index import VideoIndex
from resnet3d.data.video import open_video
from resnet3d.data.writer import write_video


@pytest.fixture()
def tree(tmp_path):
    frames = make_frames()
    write_video(tmp_path / "vids/jump/a.mp4", frames, gop=250)
    write_video(tmp_path / "vids/run/b.avi", frames)
    data = (tmp_path / "vids/jump/a.mp4").read_bytes()
    (tmp_path / "vids/run/cut.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "vids/run/zero.mkv").write_bytes(b"")
    return tmp_path, frames


def test_index_writes_ours_and_the_originals(tree, capsys):
    tmp, _ = tree
    assert main(["data", "index", str(tmp / "vids"), "--out", str(tmp / "i.json")]) == 0
    assert "4 videos (4 training), 2 classes" in capsys.readouterr().out
    assert len(VideoIndex.load(tmp / "i.json")) == 4
    assert main(["data", "index", str(tmp / "vids"), "--out", str(tmp / "o.json"), "--hara"]) == 0
    doc = json.loads((tmp / "o.json").read_text())
    assert doc["labels"] == ["jump", "run"] and doc["database"]["a"]["annotations"]["segment"] == [0, N]
    assert main(["data", "index", str(tmp / "missing.txt"), "--out", str(tmp / "x.json")]) == 2


def test_doctor_reports_broken_files_and_writes_clean_index(tree, capsys):
    tmp, _ = tree
    rc = main(["data", "doctor", str(tmp / "vids"), "--report", str(tmp / "rep.json"), "--jobs", "1", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 1 and "2 of 4 files fine, 0 truncated, 2 broken" in out and "zero.mkv: empty file" in out
    rep = json.loads((tmp / "rep.json").read_text())
    by_name = {v["path"].rsplit("/", 1)[1]: v for v in rep["videos"]}
    assert by_name["a.mp4"]["num_frames"] == N and by_name["a.mp4"]["codec"] == "h264"
    assert by_name["a.mp4"]["keyframe_interval"] == N and by_name["b.avi"]["codec"] == "mpeg4"
    assert not by_name["cut.mp4"]["ok"]
    clean = VideoIndex.load(tmp / "rep_clean_index.json")
    assert sorted(r.video_id for r in clean) == ["a", "b"] and {r.num_frames for r in clean} == {N}


@pytest.mark.parametrize("mode", ["video", "frames", "hdf5"])
def test_prepare_converts_resumes_and_keeps_frames(tree, capsys, mode):
    tmp, frames = tree
    args = ["data", "prepare", str(tmp / "vids"), "--out-dir", str(tmp / "out"), "--to", mode,
            "--short-side", "24", "--gop", "4", "--jobs", "1", "--quiet"]
    assert main(args) == 1  # the two broken inputs fail, the rest is converted
    assert "2 converted, 0 already done, 2 failed" in capsys.readouterr().out
    index = VideoIndex.load(tmp / "out/index.json")
    assert len(index) == 2 and {r.kind for r in index} == {mode}
    small = np.stack([f[::2, ::2] for f in frames])  # 48x64 -> 24x32
    for rec in index:
        with open_video(rec.path, rec.kind) as src:
            assert src.num_frames == N and (src.height, src.width) == (24, 32)
            assert nearest_frames(src.read([0, 17, 39]), small).tolist() == [0, 17, 39]
            if mode == "video":
                assert len(src.info.keyframes) >= N // 4
    main(args)
    assert "0 converted, 2 already done, 2 failed" in capsys.readouterr().out


def test_read_index_detects_prepared_index(tree):
    tmp, _ = tree
    main(["data", "index", str(tmp / "vids"), "--out", str(tmp / "i.json")])
    assert len(read_index(tmp / "i.json")) == 4
