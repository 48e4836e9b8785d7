"""Validation under torchrun (2 gloo processes) equals `resnet3d eval` of the checkpoint the run saved, at fp32."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from faults_helpers import ENV, cli, tiny_overrides


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eval_numbers(checkpoint, index, out) -> dict:
    done = cli("eval", checkpoint, "--data", index, "--clips", "1", "--precision", "fp32", "--workers", "0",
               "--batch-size", "1", "--quiet", "-o", out)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "results.json").read_text())["metrics"]


def test_ddp_validation_and_best_checkpoint_equal_single_process_eval(synth_index, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "resnet3d", "train",
           *tiny_overrides(synth_index, run, "run.precision=fp32", "data.val_batch_size=1")]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())

    last = eval_numbers(run / "checkpoints" / "last.pth", synth_index, tmp_path / "eval_last")
    logged = summary["history"][-1]
    assert last["num_videos"] == 12
    for key in ("loss", "clip_top1", "clip_top5", "video_top1", "video_top5", "mean_class_accuracy"):
        assert last[key] == logged[f"val_{key}"], key
    best = eval_numbers(run / "checkpoints" / "best.pth", synth_index, tmp_path / "eval_best")
    assert best["video_top1"] == summary["best_video_top1"]
    assert summary["best_video_top1"] == max(r["val_video_top1"] for r in summary["history"])
