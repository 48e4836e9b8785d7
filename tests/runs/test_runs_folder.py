"""The folder named on the command line is the run: moved, copied and resumed from elsewhere, nothing leaks out."""

from __future__ import annotations

import json
import os
import shutil

import yaml
from runs_helpers import snapshot, tiny_overrides

from resnet3d.cli import main
from reference_helpers import read_csv


def _train(*args: str) -> int:
    return main(["train", *args])


def test_moved_run_resumes_in_place(run_index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _train(*tiny_overrides(run_index, "runs/m1")) == 0
    (tmp_path / "runs/m1").rename(tmp_path / "runs/m2")
    assert _train("--resume", "runs/m2", "schedule.epochs=2") == 0
    assert sorted(os.listdir(tmp_path / "runs")) == ["m2"]  # runs/m1 was not recreated
    m2 = tmp_path / "runs/m2"
    assert sorted(p.name for p in (m2 / "checkpoints").iterdir()) == ["best.pth", "epoch_001.pth", "epoch_002.pth",
                                                                       "last.pth"]
    summary = json.loads((m2 / "summary.json").read_text())
    assert summary["run_dir"] == str(m2) and summary["epochs_done"] == 2
    assert summary["best_checkpoint"] in (str(m2 / "checkpoints/best.pth"), None)
    assert summary["last_checkpoint"] == str(m2 / "checkpoints/last.pth")
    assert f"best: {m2}/checkpoints/best.pth" in capsys.readouterr().out


def test_copied_run_resumes_without_touching_the_original(run_index, tmp_path, capsys):
    original = tmp_path / "a"
    assert _train(*tiny_overrides(run_index, original)) == 0
    before = snapshot(original)
    shutil.copytree(original, tmp_path / "a2")
    assert _train("--resume", str(tmp_path / "a2"), "schedule.epochs=2") == 0
    assert _train("--resume", str(tmp_path / "a2"), "schedule.epochs=3") == 0
    assert snapshot(original) == before  # byte-identical
    assert [r["epoch"] for r in read_csv(tmp_path / "a2/train_epochs.csv")] == ["1", "2", "3"]
    assert sorted(os.listdir(tmp_path)) == ["a", "a2"]


def test_resume_from_another_working_directory(run_index, tmp_path, monkeypatch, capsys):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(work)
    assert _train(*tiny_overrides(os.path.relpath(run_index, work), "rel")) == 0  # relative data.index
    monkeypatch.chdir(elsewhere)
    assert _train("--resume", str(work / "rel"), "schedule.epochs=2") == 0
    assert os.listdir(elsewhere) == []
    assert [r["epoch"] for r in read_csv(work / "rel/train_epochs.csv")] == ["1", "2"]
    text = (work / "rel/config.yaml").read_text()
    config = yaml.safe_load(text)
    assert config["run"]["out_dir"] == str(work / "rel") and config["data"]["index"] == str(run_index)
    assert f"# resolved_from: {work}  (the working directory" in text  # kept from the first start


def test_config_yaml_says_how_relative_paths_were_resolved(run_index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(run_index, tmp_path)
    assert _train(*tiny_overrides(relative, "rel")) == 0
    header = [line for line in (tmp_path / "rel/config.yaml").read_text().splitlines() if line.startswith("#")]
    assert f"# resolved_from: {tmp_path}" in "\n".join(header)
    assert f"# resolved: data.index: {relative} -> {run_index}" in header
    assert f"# resolved: run.out_dir: rel -> {tmp_path / 'rel'}" in header


def test_resume_refuses_to_write_into_another_folder(run_index, tmp_path, capsys):
    assert _train(*tiny_overrides(run_index, tmp_path / "a")) == 0
    assert _train("--resume", str(tmp_path / "a"), f"run.out_dir={tmp_path / 'b'}") == 2
    assert "continues in its own folder" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_loose_checkpoint_resumes_only_into_a_folder_named_for_it(run_index, tmp_path, capsys):
    assert _train(*tiny_overrides(run_index, tmp_path / "a")) == 0
    before = snapshot(tmp_path / "a")
    loose = tmp_path / "loose.pth"
    shutil.copy(tmp_path / "a/checkpoints/last.pth", loose)
    assert _train("--resume", str(loose), "schedule.epochs=2") == 2
    assert "say where the run continues with run.out_dir=DIR" in capsys.readouterr().err
    assert _train("--resume", str(loose), "--out", str(tmp_path / "b"), "schedule.epochs=2") == 0
    assert [r["epoch"] for r in read_csv(tmp_path / "b/train_epochs.csv")] == ["2"]
    assert snapshot(tmp_path / "a") == before
