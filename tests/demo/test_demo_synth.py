"""The synthetic motion data set: deterministic files, twin classes are exact time reversals, videos decode right."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from resnet3d.cli import main
from resnet3d.data.annotations import read_index
from resnet3d.data.index import VideoIndex
from resnet3d.data.synth import CLASS_NAMES, CLASSES, SIZES, get_class, is_generated, make_video, plan_dataset
from resnet3d.data.synth_scene import object_polygons, render_video, sample_scene
from resnet3d.data.video import open_video


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.mp4"))}


def test_classes_come_in_time_reversed_twin_pairs():
    assert len(CLASSES) >= 10
    assert len(set(CLASS_NAMES)) == len(CLASSES)
    for c in CLASSES:
        twin = get_class(c.twin)
        assert twin.twin == c.name and twin.motion == c.motion and twin.reverse != c.reverse


@pytest.mark.parametrize("name", [c.name for c in CLASSES if not c.reverse])
def test_twin_video_is_the_exact_time_reversal(name):
    twin = get_class(name).twin
    a = make_video(name, (7, 3), 40, 48, 14)
    b = make_video(twin, (7, 3), 40, 48, 14)
    assert a.shape == (14, 40, 48, 3)
    np.testing.assert_array_equal(b, a[::-1])
    assert not np.array_equal(a, a[::-1])  # the motion is not symmetric in time
    assert not np.array_equal(a, make_video(name, (7, 4), 40, 48, 14))  # another seed, another scene


def _centroid(polys: list[tuple[np.ndarray, float]]) -> np.ndarray:
    return np.concatenate([p for p, _ in polys]).mean(axis=0)


def test_motion_directions_follow_the_class_names():
    """Measure each forward class's motion from the drawn polygons; its twin, played backwards, has the opposite."""
    rng_seed = 11
    measured = {}
    for c in CLASSES:
        if c.reverse:
            continue
        scene = sample_scene(np.random.default_rng(rng_seed), c.motion, 64, 64, 20)
        first, last = object_polygons(scene, 0), object_polygons(scene, 19)
        dx, dy = _centroid(last) - _centroid(first)
        if c.motion == "split":
            spread = [np.ptp(np.concatenate([p for p, _ in polys]) @ [np.cos(scene.start["axis"]),
                                                                         np.sin(scene.start["axis"])])
                      for polys in (first, last)]
            measured[c.name] = spread[1] - spread[0]
        elif c.motion == "scale":
            measured[c.name] = np.ptp(last[0][0], axis=0).sum() - np.ptp(first[0][0], axis=0).sum()
        elif c.motion == "fade":
            measured[c.name] = last[0][1] - first[0][1]
        elif c.motion == "rotate":
            # Angle of the first vertex around the centre: in image coordinates (y down) it grows clockwise.
            p0, p1 = object_polygons(scene, 0)[0][0], object_polygons(scene, 1)[0][0]
            v0, v1 = p0[0] - p0.mean(0), p1[0] - p1.mean(0)
            measured[c.name] = float(v0[0] * v1[1] - v0[1] * v1[0])
        else:
            measured[c.name] = dx if c.motion == "translate_x" else dy
    assert measured["move_left"] < -10 and measured["move_up"] < -10
    assert measured["rotate_clockwise"] > 0
    assert measured["grow"] > 5 and measured["fade_in"] > 0.7 and measured["split"] > 5


def test_twin_scene_states_are_reversed():
    scene = sample_scene(np.random.default_rng(5), "translate_x", 32, 40, 12)
    forward = render_video(scene)
    backward = render_video(scene, reverse=True)
    np.testing.assert_array_equal(backward, forward[::-1])
    xs = [_centroid(object_polygons(scene, k))[0] for k in range(12)]
    assert all(b < a for a, b in zip(xs, xs[1:]))  # move_left: x decreases step by step


def test_plan_is_deterministic_and_balanced():
    plan = plan_dataset("default", seed=3)
    assert plan == plan_dataset("default", seed=3)
    assert plan != plan_dataset("default", seed=4)
    preset = SIZES["default"]
    for s, subset in enumerate(("training", "validation", "testing")):
        labels = [v.label for v in plan if v.subset == subset]
        assert np.bincount(labels).tolist() == [preset.per_class[s]] * len(CLASSES)
    assert {(v.width, v.height) for v in plan} == set(preset.frame_sizes)
    assert {v.num_frames for v in plan} == set(range(preset.num_frames[0], preset.num_frames[1] + 1))
    assert len({v.video_id for v in plan}) == len(plan)


def test_same_seed_same_bytes(tiny_dataset, tmp_path):
    assert main(["data", "synth", str(tmp_path / "again"), "--size", "tiny", "--jobs", "2", "--quiet"]) == 0
    first, again = _digests(tiny_dataset), _digests(tmp_path / "again")
    assert len(first) == sum(SIZES["tiny"].per_class) * len(CLASSES)
    assert first == again
    assert (tiny_dataset / "index.json").read_bytes() != b""
    assert is_generated(tiny_dataset, "tiny", 0)
    assert not is_generated(tiny_dataset, "tiny", 1)
    assert not is_generated(tiny_dataset, "default", 0)


def test_cli_skips_an_existing_data_set(tiny_dataset, capsys):
    before = _digests(tiny_dataset)
    assert main(["data", "synth", str(tiny_dataset), "--size", "tiny", "--quiet"]) == 0
    assert "already holds" in capsys.readouterr().out
    assert _digests(tiny_dataset) == before


def test_videos_decode_to_the_planned_size_and_length(tiny_dataset):
    index = VideoIndex.load(tiny_dataset / "index.json")
    plan = {v.video_id: v for v in plan_dataset("tiny", seed=0)}
    assert [r.video_id for r in index] == list(plan)
    for rec in index.records[::5]:
        spec = plan[rec.video_id]
        with open_video(rec.path) as src:
            assert src.num_frames == spec.num_frames == rec.num_frames
            frames = src.read(np.arange(src.num_frames))
        assert frames.shape == (spec.num_frames, spec.height, spec.width, 3)
        rendered = make_video(CLASS_NAMES[spec.label], spec.seed, spec.height, spec.width, spec.num_frames)
        error = np.abs(frames.astype(np.int16)[:, None] - rendered[None]).mean(axis=(2, 3, 4))
        assert np.diagonal(error).max() < 12, rec.video_id  # lossy H.264 (4:2:0) of noisy 32-48 px frames
        assert np.diagonal(error).mean() < np.diagonal(error[::-1]).mean()  # not played backwards


def test_both_index_formats_describe_the_same_videos(tiny_dataset):
    ours = read_index(tiny_dataset / "index.json")
    hara = read_index(tiny_dataset / "annotations.json")
    doc = json.loads((tiny_dataset / "annotations.json").read_text())
    assert doc["labels"] == list(CLASS_NAMES) == ours.classes == hara.classes
    key = lambda r: (r.video_id, Path(r.path).resolve(), r.label, r.subset)  # noqa: E731
    assert sorted(map(key, ours)) == sorted(map(key, hara))
    first = ours.records[0]
    assert doc["database"][first.video_id]["annotations"] == {"label": CLASS_NAMES[first.label],
                                                              "segment": [0, first.num_frames]}
    assert ours.subset_counts() == {"training": 48, "validation": 12, "testing": 24}
    assert Path(first.path).relative_to(tiny_dataset.resolve()).parts[:2] == ("videos", CLASS_NAMES[first.label])
