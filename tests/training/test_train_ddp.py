"""Two gloo processes under torchrun train, and their all-reduced validation equals a one-process evaluation."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from resnet3d.training.config import load_config
from reference_helpers import read_csv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_match_one_process_evaluation(odd_index, tmp_path, val_result):
    run = tmp_path / "ddp"
    overrides = [f"data.index={odd_index}", "model.arch=resnet10", "model.options={widen_factor: 0.125}",
                 "data.input_size=32", "data.clip_length=8", "data.batch_size=4", "data.workers=0", "data.val_clips=2",
                 "data.val_batch_size=1", "optim.lr=0.05", "schedule.epochs=2", "run.precision=fp32",
                 "run.device=cpu", "run.progress=false", "run.tensorboard=false",
                 f"run.out_dir={run}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "resnet3d", "train", *overrides]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count("status          finished") == 1  # only rank 0 prints

    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps_done"] == 2 * 3  # 12 clips over 2 processes, 2 per process and step
    assert [r["epoch"] for r in read_csv(run / "train_epochs.csv")] == ["1", "2"]
    logged = summary["history"][-1]
    # 3 validation videos on 2 processes: the sampler pads one video, which must not be counted twice.
    result = val_result(run / "checkpoints" / "last.pth", load_config(run / "config.yaml"))
    assert result.num_videos == 3
    assert result.clip_top1 == logged["val_clip_top1"] and result.video_top1 == logged["val_video_top1"]
    assert result.mean_class_accuracy == logged["val_mean_class_accuracy"]
    assert result.loss == pytest.approx(logged["val_loss"], rel=1e-5)


TWO_RUNS = """
import sys
from resnet3d.training.config import load_config
from resnet3d.training.loop import train

out, overrides = sys.argv[1], sys.argv[2:]
for name in ("first", "second"):
    train(load_config(None, [*overrides, f"run.out_dir={out}/{name}"]))
"""


def test_two_trainings_in_one_torchrun_each_get_their_own_process_group(odd_index, tmp_path):
    # torchrun's store outlives a process group: the second group once read the first one's keys and hung
    script = tmp_path / "two_runs.py"
    script.write_text(TWO_RUNS)
    overrides = [f"data.index={odd_index}", "model.arch=resnet10", "model.options={widen_factor: 0.125}",
                 "data.input_size=32", "data.clip_length=8", "data.batch_size=4", "data.workers=0", "data.val_clips=2",
                 "schedule.epochs=1", "run.precision=fp32", "run.device=cpu", "run.progress=false",
                 "run.tensorboard=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(script), str(tmp_path / "runs"), *overrides]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    for name in ("first", "second"):
        summary = json.loads((tmp_path / "runs" / name / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["steps_done"] == 3
