"""The eval, predict, features, export and report sub-commands end to end on a tiny checkpoint and tiny videos."""

import csv
import json

import numpy as np
import pytest
import torch

from inference_helpers import CLASSES
from resnet3d.cli import main
from resnet3d.data.index import VideoIndex
from resnet3d.models.checkpoint import load_model


def _predict_json(capsys, *argv):
    rc = main(["predict", *argv, "--quiet"])
    return rc, json.loads(capsys.readouterr().out)


def test_predict_windows_cover_each_video_and_a_broken_file_does_not_stop_the_others(
        capsys, tiny_checkpoint, video_dir):
    videos = [str(video_dir / n) for n in ("long.mp4", "broken.mp4", "short.mp4")]
    rc, doc = _predict_json(capsys, str(tiny_checkpoint), *videos, "--stride", "6", "--top-k", "2")
    assert rc == 1  # one file failed
    assert [v["video"] for v in doc["videos"]] == [videos[0], videos[2]]
    assert len(doc["errors"]) == 1 and "broken.mp4" in doc["errors"][0] and "\n" not in doc["errors"][0]
    long, short = doc["videos"]
    assert long["duration_sec"] == 3.0
    starts = [w["start_sec"] for w in long["windows"]]
    assert starts[0] == 0.0 and long["windows"][-1]["end_sec"] == 3.0
    assert all(b - a <= 6 / 15 + 1e-6 for a, b in zip(starts, starts[1:]))  # no gap between windows
    assert [w["start_frame"] for w in long["windows"]] == [0, 6, 12, 18, 24, 30, 36, 37]
    assert short["windows"] == [dict(short["windows"][0], start_frame=0, end_frame=5, start_sec=0.0,
                                     end_sec=pytest.approx(5 / 15, abs=1e-4))]  # 5 frames < 8: one looped window
    for record in doc["videos"]:
        assert len(record["top"]) == 2 and record["top"][0]["label"] in CLASSES
        assert record["top"][0]["score"] >= record["top"][1]["score"]
    assert doc["cost"]["params"] == sum(p.numel() for p in load_model(tiny_checkpoint)[0].parameters())
    assert doc["cost"]["gmacs_per_video"] == pytest.approx(doc["cost"]["gmacs_per_view"] * 4.5, rel=1e-3)  # (8 + 1) / 2 views


def test_predict_on_folders_runs_every_video_under_them_in_order(capsys, tmp_path, tiny_checkpoint, video_dir):
    import shutil

    from resnet3d.data.prepare import encode_jpeg
    from resnet3d.data.video import open_video

    root = tmp_path / "mine"
    (root / "b").mkdir(parents=True)
    shutil.copy(video_dir / "long.mp4", root / "b" / "x.mp4")
    shutil.copy(video_dir / "short.mp4", root / "a.mp4")
    (root / "notes.txt").write_text("not a video")
    (root / "b" / "frames").mkdir()
    with open_video(video_dir / "short.mp4") as v:
        for i, frame in enumerate(v.iter_frames(), 1):
            (root / "b" / "frames" / f"image_{i:05d}.jpg").write_bytes(encode_jpeg(frame))
    (tmp_path / "empty").mkdir()
    expected = [str(root / "a.mp4"), str(root / "b" / "frames"), str(root / "b" / "x.mp4")]
    rc, by_folder = _predict_json(capsys, str(tiny_checkpoint), str(root), str(tmp_path / "empty"), "--fps", "15")
    assert [v["video"] for v in by_folder["videos"]] == expected
    assert rc == 1 and len(by_folder["errors"]) == 1 and by_folder["errors"][0].startswith(f"{tmp_path / 'empty'}:")
    _, by_file = _predict_json(capsys, str(tiny_checkpoint), *expected, "--fps", "15")
    assert by_folder["videos"] == by_file["videos"]


def test_predict_times_a_variable_rate_video_by_its_timestamps(capsys, tmp_path, tiny_checkpoint):
    import fractions

    import av

    # a phone-style variable frame rate: 24 frames 40-120 ms apart
    gaps = np.random.default_rng(0).integers(40, 121, 24)
    stamps_ms = np.concatenate([[0], np.cumsum(gaps[:-1])])
    path = tmp_path / "vfr.mp4"
    ms = fractions.Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 48, 36, "yuv420p"
        stream.codec_context.time_base = ms
        for t, pixels in zip(stamps_ms.tolist(), np.random.default_rng(1).integers(0, 255, (24, 36, 48, 3), np.uint8)):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = t, ms
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    _, doc = _predict_json(capsys, str(tiny_checkpoint), str(path), "--stride", "4")
    (video,) = doc["videos"]
    starts = [w["start_frame"] for w in video["windows"]]
    assert [w["start_sec"] for w in video["windows"]] == pytest.approx(stamps_ms[starts] / 1000, abs=1e-3)
    assert [w["end_sec"] for w in video["windows"][:-1]] == pytest.approx(
        stamps_ms[[w["end_frame"] for w in video["windows"][:-1]]] / 1000, abs=1e-3)
    # frame index / average rate would be off by far more than a frame here
    assert max(abs(s / video["fps"] - t / 1000) for s, t in zip(starts, stamps_ms[starts])) > 0.1
    assert video["duration_sec"] == pytest.approx(stamps_ms[-1] / 1000 + 1 / video["fps"], abs=1e-3)


def test_predict_csv_and_labels_file(capsys, tmp_path, tiny_checkpoint, video_dir):
    labels = tmp_path / "labels.txt"
    labels.write_text("walk\nrun\nsit\n")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(tiny_checkpoint), str(video_dir / "short.mp4"), "--labels", str(labels),
                 "-o", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["level"] for r in rows] == ["video"] * 3 + ["window"] * 3
    assert {r["label"] for r in rows} == {"walk", "run", "sit"}
    labels.write_text("walk\nrun\n")
    assert main(["predict", str(tiny_checkpoint), str(video_dir / "short.mp4"), "--labels", str(labels)]) == 2
    assert "2 class names, but the model has 3 outputs" in capsys.readouterr().err


def test_eval_video_scores_equal_predict_and_files_are_written(capsys, tmp_path, tiny_checkpoint, tiny_index):
    out = tmp_path / "eval"
    assert main(["eval", str(tiny_checkpoint), "--data", str(tiny_index), "--clips", "all", "--stride", "4",
                 "--precision", "fp32", "--workers", "0", "--quiet", "-o", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["format"] == "resnet3d-eval"
    assert doc["protocol"]["clips"] == "all" and doc["protocol"]["window_stride"] == 4
    assert doc["videos"]["evaluated"] == doc["videos"]["listed"] == 6 and len(doc["videos"]["sha256"]) == 64
    confusion = list(csv.reader((out / "confusion.csv").open()))
    assert confusion[0] == ["true\\predicted", *CLASSES]
    assert sum(int(v) for row in confusion[1:] for v in row[1:]) == 6
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    original = json.loads((out / "results_original.json").read_text())
    ids = [r.video_id for r in VideoIndex.load(tiny_index)]
    assert sorted(original["results"]) == sorted(ids)

    # The same windows through `predict` give the same softmax-averaged video scores.
    paths = [r.path for r in VideoIndex.load(tiny_index)]
    _, pred = _predict_json(capsys, str(tiny_checkpoint), *paths, "--stride", "4", "--precision", "fp32",
                            "--top-k", "3")
    for vid, record in zip(ids, pred["videos"]):
        got = {e["label"]: e["score"] for e in record["top"]}
        want = {e["label"]: e["score"] for e in original["results"][vid]}
        assert got == pytest.approx(want, abs=2e-6)
    clips = sum(len(r["windows"]) for r in pred["videos"])
    assert doc["metrics"]["num_clips"] == clips
    assert doc["cost"]["views_per_video"] == round(clips / 6, 2)


def test_eval_rejects_mismatched_classes(capsys, tmp_path, tiny_checkpoint, tiny_index):
    index = VideoIndex.load(tiny_index)
    VideoIndex(["left", "still", "right"], index.records).save(tmp_path / "swapped.json")
    assert main(["eval", str(tiny_checkpoint), "--data", str(tmp_path / "swapped.json"), "--workers", "0"]) == 2
    assert "class 1 is 'still'" in capsys.readouterr().err


def test_features_npy_resume_and_hdf5(capsys, tmp_path, tiny_checkpoint, video_dir, tiny_index):
    out = tmp_path / "feats"
    videos = [str(video_dir / "long.mp4"), str(video_dir / "short.mp4")]
    argv = ["features", str(tiny_checkpoint), *videos, "-o", str(out), "--precision", "fp32", "--quiet"]
    assert main(argv) == 0
    windows = np.load(out / "long" / "windows.npy")
    assert windows.shape == (6, 64)  # 45 frames: 5 adjacent 8-frame windows + the tail; 512 x 0.125 features
    np.testing.assert_allclose(np.load(out / "long" / "video.npy"), windows.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(np.load(out / "long" / "frames.npy")[-1], [37, 45])
    np.testing.assert_allclose(np.load(out / "short" / "seconds.npy"), [[0, 5 / 15]])
    # Features are the network's pooled features of the window.
    from resnet3d.data.transforms import build_eval_transform
    from resnet3d.data.video import open_video

    model, meta = load_model(tiny_checkpoint)
    with open_video(video_dir / "long.mp4") as src:
        clip = build_eval_transform(32, meta.normalization)(src.read(range(8)))
    with torch.no_grad():
        np.testing.assert_allclose(windows[0], model.eval().forward_features(clip[None])[0].numpy(), atol=1e-5)

    before = (out / "long" / "video.npy").stat().st_mtime_ns
    capsys.readouterr()
    assert main(argv) == 0
    assert "0 written, 2 already done" in capsys.readouterr().err
    assert (out / "long" / "video.npy").stat().st_mtime_ns == before

    import h5py

    h5 = tmp_path / "feats.h5"
    assert main(["features", str(tiny_checkpoint), "--data", str(tiny_index), "-o", str(h5), "--quiet"]) == 0
    with h5py.File(h5) as f:
        assert sorted(f) == sorted(r.video_id for r in VideoIndex.load(tiny_index))
        assert f["left_0/windows"].shape[1] == 64 and f["left_0"].attrs["complete"]


def test_features_of_a_folder_of_symlinks_are_keyed_by_the_links_names(capsys, tmp_path, tiny_checkpoint, video_dir):
    # a split made of links to one pool of videos (the same video may be linked twice)
    links = tmp_path / "split"
    links.mkdir()
    for name in ("first", "second"):
        (links / f"{name}.mp4").symlink_to(video_dir / "short.mp4")
    assert main(["features", str(tiny_checkpoint), str(links), "-o", str(tmp_path / "f"), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["first", "second"]
    np.testing.assert_array_equal(np.load(tmp_path / "f/first/video.npy"), np.load(tmp_path / "f/second/video.npy"))


def test_export_cli_checks_against_pytorch(capsys, tmp_path, tiny_checkpoint):
    assert main(["export", str(tiny_checkpoint), "--onnx", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "max abs diff" in out and "(ok," in out
    diff = float(out.split("max abs diff ")[1].split()[0])
    assert diff < 1e-4
