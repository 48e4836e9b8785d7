"""Two-stream evaluation: RGB and flow checkpoints over one index, fused video scores equal the hand-made fusion."""

from __future__ import annotations

import json

import pytest

from inference_helpers import CLASSES, save_tiny_checkpoint
from resnet3d.cli import main
from resnet3d.data.annotations import read_index
from resnet3d.data.prepare import PrepareOptions, prepare


@pytest.fixture(scope="module")
def flow_checkpoint(tmp_path_factory):
    """A 2-channel resnet10 over CLASSES with the flow normalisation."""
    return save_tiny_checkpoint(tmp_path_factory.mktemp("flow_ckpt") / "flow.pth", seed=1, channels=2,
                                normalization="flow")


@pytest.fixture(scope="module")
def flow_index(tiny_index, tmp_path_factory):
    out = tmp_path_factory.mktemp("flow_videos")
    index, counts = prepare(read_index(tiny_index), out, PrepareOptions(mode="flow"), jobs=1, progress=False)
    assert counts["failed"] == 0
    index.save(out / "index.json")
    return out / "index.json"


def _scores(path) -> dict[str, dict[str, float]]:
    doc = json.loads(path.read_text())["results"]
    return {vid: {e["label"]: e["score"] for e in entries} for vid, entries in doc.items()}


def test_two_stream_fusion_equals_the_fusion_of_the_two_results_files(tmp_path, tiny_checkpoint, flow_checkpoint,
                                                                      tiny_index, flow_index):
    out = tmp_path / "eval"
    assert main(["eval", str(tiny_checkpoint), str(flow_checkpoint), "--data", str(tiny_index), "--flow-data",
                 str(flow_index), "--fusion-weight", "0.3", "--clips", "2", "--precision", "fp32", "--workers", "0",
                 "--quiet", "-o", str(out)]) == 0
    rgb, flow, fused = (_scores(out / d / "results_original.json") for d in ("rgb", "flow", "."))
    assert sorted(rgb) == sorted(flow) == sorted(fused) and len(fused) == 6
    labels = {r.video_id: CLASSES[r.label] for r in read_index(tiny_index)}
    hits = 0
    for vid, scores in fused.items():
        by_hand = {c: 0.7 * rgb[vid][c] + 0.3 * flow[vid][c] for c in CLASSES}
        assert scores == pytest.approx(by_hand, abs=1e-12)
        hits += max(by_hand, key=by_hand.get) == labels[vid]
    doc = json.loads((out / "results.json").read_text())
    assert doc["metrics"]["video_top1"] == pytest.approx(hits / 6)
    assert doc["protocol"]["fusion"]["weight"] == 0.3 and doc["videos"]["evaluated"] == 6
    assert doc["metrics"]["clip_top1"] is None  # clips are not fused
    for stream in ("rgb", "flow"):
        own = json.loads((out / stream / "results.json").read_text())
        assert doc["streams"][stream]["metrics"] == own["metrics"]
    assert doc["streams"]["flow"]["checkpoint"] == str(flow_checkpoint)


def test_weight_one_is_the_flow_stream_alone(tmp_path, tiny_checkpoint, flow_checkpoint, tiny_index, flow_index):
    out = tmp_path / "eval"
    assert main(["eval", str(tiny_checkpoint), str(flow_checkpoint), "--data", str(tiny_index), "--flow-data",
                 str(flow_index), "--fusion-weight", "1", "--clips", "1", "--precision", "fp32", "--workers", "0",
                 "--quiet", "-o", str(out)]) == 0
    assert _scores(out / "results_original.json") == _scores(out / "flow" / "results_original.json")


@pytest.mark.parametrize("extra, message", [
    ((), "two-stream eval needs the flow videos: --flow-data"),
    (("--flow-data", "{flow}", "--fusion-weight", "1.5"), "--fusion-weight must be in [0, 1]"),
])
def test_two_stream_mistakes_are_one_line(capsys, tmp_path, tiny_checkpoint, flow_checkpoint, tiny_index, flow_index,
                                          extra, message):
    args = [a.replace("{flow}", str(flow_index)) for a in extra]
    assert main(["eval", str(tiny_checkpoint), str(flow_checkpoint), "--data", str(tiny_index), *args, "--clips", "1",
                 "--workers", "0", "--quiet", "-o", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_flow_checkpoint_on_rgb_videos_is_one_line(capsys, tmp_path, flow_checkpoint, tiny_index):
    assert main(["eval", str(flow_checkpoint), "--data", str(tiny_index), "--workers", "0", "--quiet",
                 "-o", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert "takes 2 input channels, but the videos of" in err and str(flow_checkpoint) in err
    assert len(err.splitlines()) == 1
