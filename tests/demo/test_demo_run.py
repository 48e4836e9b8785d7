"""`resnet3d demo --size tiny`: every promised file is written, the table is right, the same seed repeats itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from resnet3d import create_model, load_model
from resnet3d.cli import main
from resnet3d.data.synth import CLASS_NAMES, SIZES
from resnet3d.demo import PREDICT_VIDEOS, _clear_previous_run, demo_models, frames_cell
from resnet3d.errors import Resnet3dError
from resnet3d.models.complexity import gmacs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str, dict]:
    out = tmp_path_factory.mktemp("demo") / "out"
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["demo", "--out", str(out), "--size", "tiny", "--quiet"]) == 0
    return out, buf.getvalue(), json.loads((out / "demo_summary.json").read_text())


def test_writes_every_promised_file(demo):
    out, _, summary = demo
    data = out / "data"
    for name in ("index.json", "annotations.json", "synth.json"):
        assert (data / name).is_file()
    assert len(list((data / "videos").rglob("*.mp4"))) == sum(SIZES["tiny"].per_class) * len(CLASS_NAMES)
    for spec in demo_models():
        run = out / "runs" / spec.name
        for rel in ("config.yaml", "train_epochs.csv", "summary.json", "checkpoints/best.pth", "eval/results.json",
                    "eval/confusion.png", "eval/per_class.csv", "report/report.md", "report/report.html",
                    "predictions.json"):
            assert (run / rel).is_file(), run / rel
        assert list((run / "report").glob("*.png")), "learning curves"
    assert (out / "demo_summary.md").read_text().startswith("# resnet3d demo")
    assert summary["files"]["summary_json"] == str(out / "demo_summary.json")


def test_table_matches_the_runs(demo):
    out, printed, summary = demo
    assert [m["name"] for m in summary["models"]] == [m.name for m in demo_models()]
    for row, spec in zip(summary["models"], demo_models()):
        fresh = create_model(spec.arch, num_classes=len(CLASS_NAMES), **spec.options)
        assert row["params"] == sum(p.numel() for p in fresh.parameters())
        clip = row["clip"]
        assert row["gmacs"] == round(gmacs(fresh, (3, clip["frames"], clip["size"], clip["size"])), 4) > 0
        results = json.loads(Path(row["eval"]).read_text())
        assert results["metrics"]["video_top1"] == row["video_top1"]
        assert results["videos"]["evaluated"] == SIZES["tiny"].per_class[2] * len(CLASS_NAMES)
        assert 0 <= row["clip_top1"] <= 1 and 0 <= row["video_top1"] <= 1 and row["train_time_s"] > 0
        line = (f"| {spec.name} | {spec.kernels} | {frames_cell(clip)} | {row['params'] / 1e6:.2f} M | "
                f"{row['gmacs']:.3f} | {100 * row['clip_top1']:.1f}% | {100 * row['video_top1']:.1f}% |")
        assert line in printed
        assert (results["protocol"]["clip_length"], results["protocol"]["t_stride"]) == (clip["frames"],
                                                                                        clip["t_stride"])
        model, meta = load_model(row["checkpoint"])
        assert (model.arch_name, model.arch_options) == (fresh.arch_name, fresh.arch_options)
        assert list(meta.class_names) == list(CLASS_NAMES)
    assert "| model | kernels | frames | params | GMACs/clip | clip acc. | video acc. | train time |" in printed


def test_the_2d_twin_sees_the_frames_the_3d_stem_is_centred_on(demo):
    _, printed, summary = demo
    three, two = (m["clip"] for m in summary["models"])
    stride = demo_models()[0].options["conv1_t_stride"]
    assert stride == demo_models()[1].frame_step == 2
    assert (two["frames"], two["t_stride"]) == (three["frames"] // stride, three["t_stride"] * stride) == (4, 2)
    assert frames_cell(two) == "4, every 2nd" and frames_cell(three) == "8"
    assert f"{three['frames']}-frame 32x32 clips" in printed


def test_predictions_cover_one_video_per_forward_class(demo):
    out, printed, summary = demo
    rows = summary["predictions"]
    assert [r["true"] for r in rows] == [c for c in CLASS_NAMES[::2]][:PREDICT_VIDEOS]
    for spec in demo_models():
        doc = json.loads((out / "runs" / spec.name / "predictions.json").read_text())
        top1 = {Path(v["video"]).name: v["top"][0]["label"] for v in doc["videos"]}
        assert {r["video"]: r[spec.name]["label"] for r in rows} == top1
        assert all(label in CLASS_NAMES for label in top1.values())


def test_same_seed_same_numbers_and_data_reused(demo):
    out, _, first = demo
    videos = {p: p.stat().st_mtime_ns for p in (out / "data" / "videos").rglob("*.mp4")}
    weights = {m.name: load_model(out / "runs" / m.name / "checkpoints" / "best.pth")[0].state_dict()
               for m in demo_models()}
    assert main(["demo", "--out", str(out), "--size", "tiny", "--quiet"]) == 0
    again = json.loads((out / "demo_summary.json").read_text())
    keys = ("params", "gmacs", "clip_top1", "video_top1", "mean_class_accuracy", "best_epoch")
    assert [{k: m[k] for k in keys} for m in again["models"]] == [{k: m[k] for k in keys} for m in first["models"]]
    assert again["predictions"] == first["predictions"]
    assert {p: p.stat().st_mtime_ns for p in (out / "data" / "videos").rglob("*.mp4")} == videos
    for m in demo_models():
        state = load_model(out / "runs" / m.name / "checkpoints" / "best.pth")[0].state_dict()
        assert all(torch.equal(state[k], v) for k, v in weights[m.name].items())


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "runs" / "resnet10_3d").mkdir(parents=True)
    (tmp_path / "runs" / "resnet10_3d" / "notes.txt").write_text("mine")
    with pytest.raises(Resnet3dError, match="not a run folder"):
        _clear_previous_run(tmp_path / "runs" / "resnet10_3d")
    assert (tmp_path / "runs" / "resnet10_3d" / "notes.txt").read_text() == "mine"


def _interrupt_demo_while_training(out: Path, model: str) -> str:
    """Start the tiny demo in its own process group, Ctrl-C it (SIGINT to the group) while `model` trains; stderr."""
    import os
    import signal
    import subprocess
    import sys
    import time

    steps = out / "runs" / model / "train_steps.csv"
    proc = subprocess.Popen([sys.executable, "-m", "resnet3d", "demo", "--out", str(out), "--size", "tiny", "--quiet"],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and not (steps.exists() and len(steps.read_text().splitlines()) > 2):
        assert time.monotonic() < deadline, f"{model} did not start training"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    return err


def test_an_interrupted_demo_stops_and_the_same_command_goes_on_to_the_same_numbers(demo, tmp_path):
    import re
    import shutil

    first_out, _, first = demo
    out = tmp_path / "out"
    shutil.copytree(first_out / "data", out / "data")  # the same data set, reused as is
    err = _interrupt_demo_while_training(out, "resnet10_3d")
    assert re.search(r"resnet3d: demo interrupted: resnet10_3d: training stopped after [01] of 2 epochs with a "
                     r"checkpoint; the same command goes on from it\n", err)
    assert not (out / "demo_summary.json").exists() and not (out / "runs" / "resnet10_2d").exists()
    _interrupt_demo_while_training(out, "resnet10_2d")  # the 3D training went on to its end, then the 2D one began
    epochs_3d = (out / "runs" / "resnet10_3d" / "train_epochs.csv").read_text()
    assert main(["demo", "--out", str(out), "--size", "tiny", "--quiet"]) == 0
    assert (out / "runs" / "resnet10_3d" / "train_epochs.csv").read_text() == epochs_3d  # finished: not trained again
    again = json.loads((out / "demo_summary.json").read_text())
    keys = ("clip_top1", "video_top1", "mean_class_accuracy", "best_epoch", "epochs")
    assert [{k: m[k] for k in keys} for m in again["models"]] == [{k: m[k] for k in keys} for m in first["models"]]
    for m in demo_models():
        resumed = json.loads((out / "runs" / m.name / "summary.json").read_text())["run"]["weights"]
        assert resumed == {"resumed_from": str(out / "runs" / m.name / "checkpoints" / "last.pth")}
        a = load_model(out / "runs" / m.name / "checkpoints" / "best.pth")[0].state_dict()
        b = load_model(first_out / "runs" / m.name / "checkpoints" / "best.pth")[0].state_dict()
        assert all(torch.equal(a[k], v) for k, v in b.items())
