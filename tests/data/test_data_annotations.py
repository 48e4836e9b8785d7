"""Every annotation format on tiny hand-written files, and the original's JSON written back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resnet3d.data.annotations import detect_format, read_index, write_hara_json
from resnet3d.data.dataset_formats import kinetics_id
from resnet3d.data.index import AnnotationError, VideoIndex


def touch(root: Path, *rels: str) -> None:
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def frame_dir(root: Path, rel: str, n: int = 3) -> None:
    for i in range(1, n + 1):
        touch(root, f"{rel}/image_{i:05d}.jpg")


def test_hara_json_frames_one_based_and_test_entries(tmp_path):
    frame_dir(tmp_path / "jpg", "run/v1")
    touch(tmp_path / "jpg", "walk/v2.hdf5", "test/v3.mp4")
    doc = {"labels": ["run", "walk"], "database": {
        "v1": {"subset": "training", "annotations": {"label": "run", "segment": [1, 4]}},
        "v2": {"subset": "validation", "annotations": {"label": "walk", "segment": [5, 9]}},
        "v3": {"subset": "testing", "annotations": {}},
        "gone": {"subset": "training", "annotations": {"label": "run", "segment": [1, 10]}}}}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    index = read_index(tmp_path / "a.json", videos=tmp_path / "jpg")
    by_id = {r.video_id: r for r in index}
    assert index.classes == ["run", "walk"] and sorted(by_id) == ["v1", "v2", "v3"]  # 'gone' left out
    assert by_id["v1"].kind == "frames" and by_id["v1"].num_frames == 3 and by_id["v1"].segment is None
    assert by_id["v2"].kind == "hdf5" and by_id["v2"].segment == (5, 9)  # hdf5 segments are 0-based already
    assert by_id["v3"].label == -1 and by_id["v3"].subset == "testing" and by_id["v3"].kind == "video"

    write_hara_json(index, tmp_path / "out.json", count_frames=False)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["labels"] == ["run", "walk"]
    assert out["database"]["v1"]["annotations"] == {"label": "run", "segment": [1, 4]}
    assert out["database"]["v2"]["annotations"] == {"label": "walk", "segment": [5, 9]}
    assert out["database"]["v3"]["annotations"] == {}
    again = read_index(tmp_path / "out.json", videos=tmp_path / "jpg")
    assert [(r.video_id, r.label, r.subset, r.kind, r.segment, r.num_frames) for r in again] == \
           [(r.video_id, r.label, r.subset, r.kind, r.segment, r.num_frames) for r in index]


def test_hara_json_errors_name_file_and_line(tmp_path):
    (tmp_path / "bad.json").write_text('{"labels": ["a"],\n "database": {,}}')
    with pytest.raises(AnnotationError, match=r"bad.json:2: not valid JSON"):
        read_index(tmp_path / "bad.json", "hara-json")
    touch(tmp_path, "b/v.mp4")
    (tmp_path / "lab.json").write_text(json.dumps(
        {"labels": ["a"], "database": {"v": {"subset": "training", "annotations": {"label": "b"}}}}))
    with pytest.raises(AnnotationError, match=r"label 'b' is not in the class list \(1 classes: a\)"):
        read_index(tmp_path / "lab.json")


def test_list_file_numeric_names_and_rawframes(tmp_path):
    touch(tmp_path, "vids/a.mp4", "vids/b.avi")
    frame_dir(tmp_path, "frames/c", 5)
    (tmp_path / "train.txt").write_text("# comment\nvids/a.mp4 1\n\nvids/b.avi 0\nframes/c 5 2\n")
    index = read_index(tmp_path / "train.txt")
    assert index.classes == ["0", "1", "2"]
    assert [(r.video_id, r.label, r.kind, r.num_frames) for r in index] == [
        ("a", 1, "video", None), ("b", 0, "video", None), ("c", 2, "frames", 5)]
    (tmp_path / "named.txt").write_text("vids/a.mp4 jump\nvids/b.avi clap\n")
    named = read_index(tmp_path / "named.txt", subset="validation")
    assert named.classes == ["clap", "jump"] and [r.label for r in named] == [1, 0]
    assert {r.subset for r in named} == {"validation"}
    with pytest.raises(AnnotationError, match=r"named.txt:1: label 'jump' is not in the class list"):
        read_index(tmp_path / "named.txt", classes=["clap", "walk"])
    (tmp_path / "broken.txt").write_text("vids/a.mp4 1\njustonefield\n")
    with pytest.raises(AnnotationError, match=r"broken.txt:2: expected 'PATH LABEL'"):
        read_index(tmp_path / "broken.txt")
    (tmp_path / "none.txt").write_text("nope/x.mp4 1\n")
    with pytest.raises(AnnotationError, match=r"none of the 1 listed videos was found"):
        read_index(tmp_path / "none.txt")


def test_class_folder_tree_with_and_without_split_dirs(tmp_path):
    touch(tmp_path / "flat", "walk/w1.mp4", "run/r1.avi", "run/notes.txt", "walk/w2.MTS", "walk/w3.ts")
    frame_dir(tmp_path / "flat", "run/r2")
    index = read_index(tmp_path / "flat")
    assert index.classes == ["run", "walk"]
    assert [(r.video_id, r.label, r.kind) for r in index] == [("r1", 0, "video"), ("r2", 0, "frames"), ("w1", 1, "video"),
                                                              ("w2", 1, "video"), ("w3", 1, "video")]  # camcorder, TS
    touch(tmp_path / "split", "train/a/1.mp4", "val/b/2.mp4")
    split = read_index(tmp_path / "split", "folders")
    assert split.classes == ["a", "b"] and [r.subset for r in split] == ["training", "validation"]
    (tmp_path / "nothing" / "x").mkdir(parents=True)
    with pytest.raises(AnnotationError, match="no videos found"):
        read_index(tmp_path / "nothing", "folders")


def test_kinetics_csv(tmp_path):
    assert kinetics_id("abc", "4", 14.0) == "abc_000004_000014"
    touch(tmp_path / "videos", "bowling/x1_000010_000020.mp4", "abseiling/x2_000000_000010.mp4",
          "x3_000001_000011.mp4")
    (tmp_path / "kinetics-400_train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nbowling,x1,10,20,train\nabseiling,x2,0,10,train\n"
        "bowling,missing,0,10,train\n")
    (tmp_path / "kinetics-400_test.csv").write_text("youtube_id,time_start,time_end,split\nx3,1,11,test\n")
    assert detect_format(tmp_path / "kinetics-400_train.csv") == "kinetics-csv"
    index = read_index(tmp_path, "kinetics-csv", videos=tmp_path / "videos")
    assert index.classes == ["abseiling", "bowling"]
    assert sorted((r.video_id, r.label, r.subset) for r in index) == [
        ("x1_000010_000020", 1, "training"), ("x2_000000_000010", 0, "training"), ("x3_000001_000011", -1, "testing")]
    (tmp_path / "bad.csv").write_text("label,youtube_id\nbowling,x1\n")
    with pytest.raises(AnnotationError, match=r"bad.csv:1: expected a header"):
        read_index(tmp_path / "bad.csv", "kinetics-csv", videos=tmp_path / "videos")


def test_ucf101_splits(tmp_path):
    ann = tmp_path / "ucfTrainTestlist"
    ann.mkdir()
    (ann / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (ann / "trainlist02.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g08_c01.avi 2\n")
    (ann / "testlist02.txt").write_text("Archery/v_Archery_g01_c01.avi\n")
    touch(tmp_path / "UCF-101", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "Archery/v_Archery_g08_c01.avi")
    frame_dir(tmp_path / "jpg", "Archery/v_Archery_g01_c01")  # the test video only as frames, elsewhere
    touch(tmp_path / "UCF-101", "Archery/v_Archery_g01_c01/image_00001.jpg")
    index = read_index(ann, "ucf101", videos=tmp_path / "UCF-101", split=2)
    assert index.classes == ["ApplyEyeMakeup", "Archery"]
    assert [(r.video_id, r.label, r.subset, r.kind) for r in index] == [
        ("v_ApplyEyeMakeup_g08_c01", 0, "training", "video"), ("v_Archery_g08_c01", 1, "training", "video"),
        ("v_Archery_g01_c01", 1, "validation", "frames")]
    (ann / "classInd.txt").write_text("1 ApplyEyeMakeup\n3 Archery\n")
    with pytest.raises(AnnotationError, match=r"classInd.txt:2: expected '2 ClassName'"):
        read_index(ann, "ucf101", videos=tmp_path / "UCF-101", split=2)


def test_hmdb51_splits(tmp_path):
    ann = tmp_path / "splits"
    ann.mkdir()
    (ann / "brush_hair_test_split1.txt").write_text("a.avi 1\nb.avi 2\nc.avi 0\n")
    (ann / "cartwheel_test_split1.txt").write_text("d.avi 2 \n")
    (ann / "cartwheel_test_split2.txt").write_text("d.avi 1\n")
    touch(tmp_path / "hmdb", "brush_hair/a.avi", "brush_hair/b.avi", "brush_hair/c.avi", "cartwheel/d.avi")
    index = read_index(ann, videos=tmp_path / "hmdb")
    assert index.classes == ["brush_hair", "cartwheel"]
    assert [(r.video_id, r.label, r.subset) for r in index] == [
        ("a", 0, "training"), ("b", 0, "validation"), ("d", 1, "validation")]
    (ann / "cartwheel_test_split1.txt").write_text("d.avi 3\n")
    with pytest.raises(AnnotationError, match=r"cartwheel_test_split1.txt:1: expected 'VIDEO.avi 0\|1\|2'"):
        read_index(ann, videos=tmp_path / "hmdb")


def test_activitynet_segments_in_seconds(tmp_path):
    touch(tmp_path / "videos", "v_abc.mp4", "v_def.mkv")
    doc = {"taxonomy": [{"nodeName": "Root", "parentName": None}, {"nodeName": "Sports", "parentName": "Root"},
                        {"nodeName": "Long jump", "parentName": "Sports"}, {"nodeName": "Archery", "parentName": "Sports"}],
           "database": {"abc": {"subset": "training", "annotations": [
               {"label": "Long jump", "segment": [1.5, 7.25]}, {"label": "Archery", "segment": [10, 12]}]},
               "def": {"subset": "testing", "annotations": []}}}
    (tmp_path / "anet.json").write_text(json.dumps(doc))
    assert detect_format(tmp_path / "anet.json") == "activitynet"
    index = read_index(tmp_path / "anet.json", videos=tmp_path / "videos")
    assert index.classes == ["Archery", "Long jump"]
    assert [(r.video_id, r.label, r.time_segment, r.subset) for r in index] == [
        ("abc_0", 1, (1.5, 7.25), "training"), ("abc_1", 0, (10.0, 12.0), "training"), ("def", -1, None, "testing")]


def test_our_index_round_trip_and_detection(tmp_path):
    touch(tmp_path, "v/a/1.mp4")
    index = read_index(tmp_path / "v")
    index.save(tmp_path / "idx.json")
    assert detect_format(tmp_path / "idx.json") == "resnet3d"
    back = read_index(tmp_path / "idx.json")
    assert isinstance(back, VideoIndex) and back.records == index.records
