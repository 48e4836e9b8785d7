"""Kill (SIGTERM / Ctrl-C) and resume gives exactly the uninterrupted run: weights, metrics and logs."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from resnet3d.data import datasets
from resnet3d.training.loop import resume_config, train
from resnet3d.models.checkpoint import load_model, read_checkpoint
from reference_helpers import read_csv

# Cosine with warm-up (a per-step schedule), momentum, clipping and label smoothing: all carry state across steps.
RECIPE = ("schedule.name=cosine", "schedule.warmup_epochs=0.5", "schedule.epochs=3", "optim.clip_grad_norm=1.0",
          "optim.label_smoothing=0.1", "run.precision=auto", "run.keep_last=1")
EXACT_COLUMNS = ("epoch", "step", "lr", "train_loss", "train_clip_top1", "val_loss", "val_clip_top1",
                 "val_video_top1", "val_mean_class_accuracy")


def signal_on_call(monkeypatch, cls, call: int, signum: int) -> None:
    """Make the `call`-th item load of `cls` send `signum` to this process (as `kill` or Ctrl-C would)."""
    real, seen = cls.__getitem__, {"n": 0}

    def getitem(self, i):
        seen["n"] += 1
        if seen["n"] == call:
            os.kill(os.getpid(), signum)
        return real(self, i)

    monkeypatch.setattr(cls, "__getitem__", getitem)


@pytest.fixture(scope="module")
def uninterrupted(color_index, tmp_path_factory):
    from resnet3d.training.config import load_config

    out = tmp_path_factory.mktemp("full") / "run"
    config = load_config(None, [f"data.index={color_index}", "model.arch=resnet10", "model.options={widen_factor: 0.125}",
                                "data.input_size=32", "data.clip_length=8", "data.batch_size=4", "data.workers=0",
                                "data.val_clips=2", "optim.lr=0.05", "run.progress=false", "run.tensorboard=false",
                                f"run.out_dir={out}", *RECIPE])
    summary = train(config)
    assert summary.status == "finished"
    return summary


@pytest.mark.parametrize("where, call, signum, stopped_at", [
    ("ClipDataset", 18, signal.SIGTERM, (1, 5, 2)),  # item 18 is in step 5 = epoch 2, step 2 of 3
    ("MultiViewDataset", 7, signal.SIGINT, (2, 6, 0)),  # during epoch 2's validation: stop after that epoch
])
def test_resume_after_kill_equals_uninterrupted(uninterrupted, tiny_config, monkeypatch, where, call, signum, stopped_at):
    config = tiny_config(*RECIPE)
    signal_on_call(monkeypatch, getattr(datasets, where), call, signum)
    first = train(config)
    monkeypatch.undo()
    assert first.status == "interrupted"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored
    state = read_checkpoint(first.run_dir / "checkpoints" / "last.pth")["training"]
    assert (state["epoch"], state["step"], state["step_in_epoch"]) == stopped_at

    second = train(resume_config(first.run_dir))
    assert second.status == "finished" and second.steps_done == uninterrupted.steps_done == 9

    full_model, _ = load_model(uninterrupted.run_dir / "checkpoints" / "last.pth")
    resumed_model, _ = load_model(second.run_dir / "checkpoints" / "last.pth")
    full, resumed = full_model.state_dict(), resumed_model.state_dict()
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    for a, b in zip(uninterrupted.history, second.history, strict=True):
        assert {k: a[k] for k in EXACT_COLUMNS} == {k: b[k] for k in EXACT_COLUMNS}
    # The logs were appended to, not overwritten, and hold each epoch and step once.
    full_steps = read_csv(uninterrupted.run_dir / "train_steps.csv")
    resumed_steps = read_csv(second.run_dir / "train_steps.csv")
    assert [(r["step"], r["loss"], r["lr"]) for r in resumed_steps] == [(r["step"], r["loss"], r["lr"]) for r in full_steps]
    assert [r["epoch"] for r in read_csv(second.run_dir / "train_epochs.csv")] == ["1", "2", "3"]


def test_rows_logged_after_the_checkpoint_are_dropped_on_resume(tiny_config):
    first = train(tiny_config("schedule.epochs=1", "run.save_every_steps=1"))
    steps_csv = first.run_dir / "train_steps.csv"
    # A run killed hard (SIGKILL) after its last checkpoint leaves extra rows behind; simulate one.
    with open(steps_csv, "a", newline="") as f:
        f.write("2,4,0.05,9.9,0,1,0\r\n")
    second = train(resume_config(first.run_dir, ["schedule.epochs=2"]))
    steps = read_csv(steps_csv)
    assert [int(r["step"]) for r in steps] == list(range(1, 7)) and "9.9" not in {r["loss"] for r in steps}
    assert second.epochs_done == 2
