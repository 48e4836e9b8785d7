"""Bad annotation files and videos through `resnet3d data ...` and `resnet3d train`, as a user meets them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from resnet3d.data.index import VideoIndex, VideoRecord
from resnet3d.data.writer import write_video

from faults_helpers import cli, one_line_error, tiny_overrides


def test_prepare_writes_only_inside_out_dir_whatever_the_class_names(synth_index, tmp_path):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    absolute = str(tmp_path / "abs_dir")
    classes = ["../../escape", absolute, "nul\0class"]
    videos = [r.path for r in list(VideoIndex.load(synth_index))[:3]]
    index = work / "evil.json"
    VideoIndex(classes, [VideoRecord(f"v{i}", p, i, "training") for i, p in enumerate(videos)]).save(index)

    done = cli("data", "prepare", index, "--out-dir", work / "out", "--jobs", "1", "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    out = work / "out"
    names = [".._.._escape", absolute.replace("/", "_"), "nul_class"]
    expected = {f"{name}/{Path(p).stem}.mp4" for name, p in zip(names, videos)}
    assert {p.relative_to(out).as_posix() for p in out.rglob("*.mp4")} == expected
    assert [p.name for p in tmp_path.iterdir()] == ["a"] and [p.name for p in (tmp_path / "a").iterdir()] == ["b"]
    assert sorted(p.name for p in work.iterdir()) == ["evil.json", "out"]
    assert {Path(r.path).resolve().parent.parent for r in VideoIndex.load(out / "index.json")} == {out.resolve()}


def test_binary_csv_as_data_index_is_one_line_error(synth_index, tmp_path):
    index = tmp_path / "labels.csv"
    index.write_bytes(bytes(range(256)) * 4)
    line = one_line_error(cli("train", *tiny_overrides(index, tmp_path / "run")))
    assert line == f"resnet3d: error: {index}: not a UTF-8 text file"
    assert not (tmp_path / "run").exists()


def test_doctor_does_not_count_a_truncated_file_as_fine(synth_index, tmp_path):
    full, cut = tmp_path / "full.avi", tmp_path / "cut.avi"  # AVI: the header keeps the frame count of the whole file
    write_video(full, np.random.default_rng(0).integers(0, 255, (60, 32, 32, 3), dtype=np.uint8), fps=10, gop=4)
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) * 4 // 10])
    index = tmp_path / "idx.json"
    VideoIndex(["a"], [VideoRecord("full", str(full), 0), VideoRecord("cut", str(cut), 0)]).save(index)
    done = cli("data", "doctor", index, "--report", tmp_path / "report.json", "--jobs", "1", "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "1 of 2 files fine, 1 truncated, 0 broken"
    assert lines[1] == f"  truncated: {cut}: the header says 60 frames, 21 decode"
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["truncated"] == 1
