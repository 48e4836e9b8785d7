"""Eval result documents: the results.json numbers, missing videos, and the original's results format."""

import json

import pytest
import torch

from resnet3d.evaluation.multiview import evaluate
from resnet3d.evaluation.results import original_results, results_document, video_list_hash
from test_inference_evaluate import LogitsInClip, batch

CLASSES = ["run", "jump", "swim"]
VIDEO_IDS = ["v_run_01", "v_swim_02", "v_broken_03"]  # the third never reaches the evaluation (broken file)


@pytest.fixture()
def result():
    return evaluate(LogitsInClip(), [batch([0, 1])], device="cpu", progress=False)


def test_original_format_matches_its_documented_structure(result):
    doc = original_results(result, VIDEO_IDS, CLASSES, k=2)
    assert list(doc) == ["results"]
    assert list(doc["results"]) == ["v_run_01", "v_swim_02"]
    # video 0: averaged [.6, .4, 0]; video 1: [0, .5, .5] (tie: both listed, scores equal)
    assert doc["results"]["v_run_01"] == [{"label": "run", "score": pytest.approx(0.6)},
                                          {"label": "jump", "score": pytest.approx(0.4)}]
    assert {e["label"] for e in doc["results"]["v_swim_02"]} == {"jump", "swim"}
    for entries in doc["results"].values():
        assert all(set(e) == {"label", "score"} and isinstance(e["score"], float) for e in entries)
        assert [e["score"] for e in entries] == sorted((e["score"] for e in entries), reverse=True)
    json.dumps(doc)  # plain JSON types only


def test_results_document_reports_missing_videos_and_per_class(result):
    doc, cm = results_document(result, VIDEO_IDS, CLASSES, protocol={"clips": 3}, checkpoint="m.pth")
    assert doc["videos"]["listed"] == 3 and doc["videos"]["evaluated"] == 2
    assert doc["videos"]["missing"] == ["v_broken_03"]
    assert doc["videos"]["sha256"] == video_list_hash(["v_swim_02", "v_run_01"])  # order does not matter
    assert doc["videos"]["sha256"] != video_list_hash(VIDEO_IDS)
    assert doc["metrics"]["video_top1"] == 0.5
    assert doc["metrics"]["video_top1_all"] == pytest.approx(1 / 3)  # the missing video counts as wrong
    # confusion: run -> run; swim -> jump (tie between jump and swim goes to the lower index)
    assert cm.tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]
    per_class = {r["class"]: r for r in doc["per_class"]}
    assert per_class["run"] == {"class": "run", "videos": 1, "top1": 1.0, "confused_with": None}
    assert per_class["jump"]["top1"] is None and per_class["jump"]["videos"] == 0
    assert per_class["swim"] == {"class": "swim", "videos": 1, "top1": 0.0, "confused_with": "jump"}
    json.dumps(doc)
