"""Run reports: curves from the trainer's CSV logs, eval results, Markdown and HTML."""

import json

import numpy as np
import pytest
import torch

from resnet3d.training import logs as logger
from resnet3d.evaluation.multiview import evaluate
from resnet3d.evaluation.results import results_document
from resnet3d.evaluation.report import read_confusion_csv, write_confusion_csv, write_run_report
from resnet3d.errors import Resnet3dError
from resnet3d.io import atomic_write_json
from test_inference_evaluate import LogitsInClip, batch

PNG = b"\x89PNG\r\n\x1a\n"


def _fake_run(run_dir, epochs=3, steps_per_epoch=4):
    run_dir.mkdir()
    ep = logger.CsvLog(run_dir / "train_epochs.csv", logger.EPOCH_FIELDS)
    st = logger.CsvLog(run_dir / "train_steps.csv", logger.STEP_FIELDS)
    step = 0
    for e in range(1, epochs + 1):
        for _ in range(steps_per_epoch):
            step += 1
            st.write({"epoch": e, "step": step, "lr": 0.1 / e, "loss": 2.0 / step, "clip_top1": 0.1 * e})
        ep.write({"epoch": e, "step": step, "lr": 0.1 / e, "train_loss": 1.5 / e, "train_clip_top1": 0.2 * e,
                  "val_loss": 1.6 / e, "val_clip_top1": 0.15 * e, "val_video_top1": 0.2 * e, "val_video_top5": 0.3})
    ep.close()
    st.close()
    atomic_write_json(run_dir / "summary.json", {"status": "finished", "epochs": epochs, "epochs_done": epochs,
                                                 "steps_done": step, "best_epoch": 3, "best_video_top1": 0.6,
                                                 "final": {"val_video_top1": 0.6}, "train_clips_per_s": 12.5,
                                                 "wall_time_s": 90.0, "bad_files": 0})


def _fake_eval(folder):
    result = evaluate(LogitsInClip(), [batch([0, 1])], device="cpu", progress=False)
    classes = ["run", "jump", "swim"]
    protocol = {"subset": "validation", "clips": 3, "crops": 1, "clip_length": 8, "t_stride": 1, "input_size": 32}
    cost = {"params": 1_000_000, "gmacs_per_view": 0.5, "gmacs_per_video": 1.5, "views_per_video": 3,
            "clips_per_second": 40.0, "precision": "fp32", "device": "cpu"}
    doc, cm = results_document(result, ["a", "b"], classes, protocol=protocol, cost=cost, checkpoint="best.pth")
    atomic_write_json(folder / "results.json", doc)
    write_confusion_csv(cm.numpy(), classes, folder / "confusion.csv")


def test_report_writes_curves_confusion_and_tables(tmp_path):
    run = tmp_path / "run"
    _fake_run(run)
    (run / "eval").mkdir()
    _fake_eval(run / "eval")
    files = write_run_report(run)
    assert sorted(files) == ["accuracy.png", "confusion.png", "loss.png", "lr.png", "report.html", "report.md"]
    for name in ("accuracy.png", "confusion.png", "loss.png", "lr.png"):
        assert files[name].read_bytes()[:8] == PNG
    md = files["report.md"].read_text()
    assert "| swim | 1 | 0.00% | jump |" in md  # per-class row: class, videos, top-1, most confused with
    assert "| video top-1 | 50.00% |" in md and "| clip top-1 | 33.33% |" in md
    assert "![Confusion matrix" in md and "(loss.png)" in md
    assert "finished after 3/3 epochs" in md
    html = files["report.html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and '<img src="confusion.png"' in html and "<td>swim</td>" in html


def test_report_tolerates_missing_columns_and_files(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_epochs.csv").write_text("epoch,train_loss\n1,2.0\n2,1.5\n")
    files = write_run_report(run)
    assert sorted(files) == ["loss.png", "report.html", "report.md"]
    md = files["report.md"].read_text()
    assert "No summary.json" in md and "No evaluation results" in md


def test_report_rejects_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(Resnet3dError, match="not a resnet3d run folder"):
        write_run_report(tmp_path)


def test_confusion_csv_round_trip_with_awkward_names(tmp_path):
    names = ["a,b", 'say "hi"', "plain"]
    cm = np.array([[3, 0, 1], [0, 2, 0], [5, 0, 0]])
    write_confusion_csv(cm, names, tmp_path / "c.csv")
    got_names, got = read_confusion_csv(tmp_path / "c.csv")
    assert got_names == names and (got == cm).all()


def test_class_names_the_plot_font_cannot_draw_give_one_warning_per_png(tmp_path):
    import warnings

    from resnet3d.evaluation.report import plot_confusion

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        plot_confusion(np.eye(3), ["跑步", "跳跃", "walk"], tmp_path / "cjk.png")  # matplotlib warns per glyph
        plot_confusion(np.eye(3), ["run", "jump", "walk"], tmp_path / "latin.png")
    assert [str(w.message) for w in seen] == [
        f"cjk.png: the plot font has no glyph for {''.join(sorted('跑步跳跃'))}, drawn as boxes in the PNG (the CSV, "
        "JSON and Markdown files have the names right)"]
    assert (tmp_path / "cjk.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "latin.png").exists()
