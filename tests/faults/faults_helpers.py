"""Running resnet3d as a user does: `python -m resnet3d ...` in a subprocess, with a tiny training recipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def tiny_overrides(index: Path, out: Path, *extra: str) -> list[str]:
    """A seconds-long run on the tiny synthetic set: ResNet-10 at 1/8 width, 8x32x32 clips, 2 epochs of 12 steps."""
    return [f"data.index={index}", "model.arch=resnet10", "model.options={widen_factor: 0.125}",
            "data.input_size=32", "data.clip_length=8", "data.batch_size=4", "data.workers=0", "data.val_clips=1",
            "optim.lr=0.05", "schedule.epochs=2", "schedule.milestones=[5]", "run.device=cpu",
            "run.progress=false", "run.tensorboard=false", f"run.out_dir={out}", *extra]


def cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m resnet3d ARGS` to completion; stdout and stderr as text."""
    return subprocess.run([sys.executable, "-m", "resnet3d", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """The single `error: ...` line a refused command prints (exit 2, no traceback)."""
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The state dict stored in a resnet3d checkpoint."""
    from resnet3d.models.checkpoint import read_checkpoint

    return read_checkpoint(checkpoint)["state_dict"]


def assert_same_weights(a: Path, b: Path) -> None:
    """Bit-identical tensors under the same names."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
