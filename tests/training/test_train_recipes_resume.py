"""Mixup + cutmix + EMA stay exact: kill-and-resume equals the uninterrupted run, in one process and under torchrun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import torch

from resnet3d.data import datasets
from resnet3d.training.loop import resume_config, train
from resnet3d.models.checkpoint import load_model, read_checkpoint

from test_train_ddp import free_port
from test_train_resume import EXACT_COLUMNS, signal_on_call
from reference_helpers import read_csv

MIXED = ("optim.mixup=0.8", "optim.cutmix=1.0", "optim.mix_prob=0.8", "optim.mix_switch_prob=0.5", "optim.ema=0.9",
         "schedule.name=cosine", "schedule.epochs=3", "optim.label_smoothing=0.1", "run.precision=auto",
         "run.keep_last=1")


def weights_and_ema(run_dir):
    checkpoint = read_checkpoint(run_dir / "checkpoints" / "last.pth")
    model, _ = load_model(run_dir / "checkpoints" / "last.pth")
    return model.state_dict(), checkpoint["training"]["ema"]


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_kill_and_resume_with_mixing_and_ema_equals_the_uninterrupted_run(tiny_config, monkeypatch):
    full = train(tiny_config(*MIXED, out="full"))
    signal_on_call(monkeypatch, datasets.ClipDataset, 18, signal.SIGTERM)  # epoch 2, step 2 of 3
    first = train(tiny_config(*MIXED, out="killed"))
    monkeypatch.undo()
    assert first.status == "interrupted"
    assert read_checkpoint(first.run_dir / "checkpoints" / "last.pth")["training"]["step"] == 5
    second = train(resume_config(first.run_dir))
    assert second.status == "finished" and second.steps_done == full.steps_done == 9
    (raw_a, ema_a), (raw_b, ema_b) = weights_and_ema(full.run_dir), weights_and_ema(second.run_dir)
    assert_same(raw_a, raw_b)
    assert ema_a["updates"] == ema_b["updates"] == 9
    assert_same(ema_a["weights"], ema_b["weights"])
    assert not all(torch.equal(raw_a[k], ema_a["weights"][k]) for k in raw_a)
    for a, b in zip(full.history, second.history, strict=True):
        keys = (*EXACT_COLUMNS, "ema_val_loss", "ema_val_video_top1")
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}


def torchrun(odd_index, run, *overrides, flags=()):
    base = [f"data.index={odd_index}", "model.arch=resnet10", "model.options={widen_factor: 0.125}",
            "data.input_size=32", "data.clip_length=8", "data.batch_size=4", "data.workers=0", "data.val_clips=2",
            "data.val_batch_size=1", "optim.lr=0.05", "optim.mixup=0.8", "optim.cutmix=1.0", "optim.ema=0.9",
            "run.precision=fp32", "run.device=cpu", "run.progress=false", "run.tensorboard=false", f"run.out_dir={run}"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "resnet3d", "train", *flags, *base, *overrides]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]


def test_torchrun_resume_with_mixing_and_ema_equals_the_uninterrupted_run(odd_index, tmp_path):
    torchrun(odd_index, tmp_path / "full", "schedule.epochs=2")
    torchrun(odd_index, tmp_path / "parts", "schedule.epochs=1")
    torchrun(odd_index, tmp_path / "parts", "schedule.epochs=2", flags=("--resume", str(tmp_path / "parts")))
    (raw_a, ema_a), (raw_b, ema_b) = weights_and_ema(tmp_path / "full"), weights_and_ema(tmp_path / "parts")
    assert ema_a["updates"] == ema_b["updates"] == 6
    assert_same(raw_a, raw_b)
    assert_same(ema_a["weights"], ema_b["weights"])


def test_a_run_logged_before_the_ema_columns_resumes_with_its_own_header(tiny_config):
    from resnet3d.training import logs

    first = train(tiny_config("schedule.epochs=1"))
    epochs_csv = first.run_dir / "train_epochs.csv"
    old_fields = [f for f in logs.EPOCH_FIELDS if not f.startswith("ema_")]
    rows = read_csv(epochs_csv)
    epochs_csv.write_text(",".join(old_fields) + "\n" + "".join(
        ",".join(r[f] for f in old_fields) + "\n" for r in rows))
    second = train(resume_config(first.run_dir, ["schedule.epochs=2"]))
    assert second.epochs_done == 2
    resumed = read_csv(epochs_csv)
    assert list(resumed[0]) == old_fields and [r["epoch"] for r in resumed] == ["1", "2"]
    assert all(len(line.split(",")) == len(old_fields) for line in epochs_csv.read_text().splitlines())
