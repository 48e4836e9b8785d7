"""Under torchrun every cell runs on all processes, and only rank 0 writes the study's files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from study_helpers import cell_files, variant


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_run_every_cell_and_rank0_writes_the_study(tmp_path):
    spec = variant(tmp_path, "ddp", grid=[{"data": "large", "archs": ["resnet10"], "sizes": [1.0]},
                                          {"data": "small", "archs": ["resnet10"], "sizes": [2], "init": ["large"]}])
    out = tmp_path / "study"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "resnet3d", "study", str(spec), "--out", str(out), "--quiet"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count("study finished: 2 cell(s) trained") == 1  # rank 0 reports...
    cells = cell_files(out)
    assert list(cells) == ["large-resnet10-100pct-scratch", "small-resnet10-2vpc-ft-large"]
    for name, cell in cells.items():
        summary = json.loads((out / "runs" / name / "summary.json").read_text())
        assert summary["run"]["world_size"] == 2  # ...cells that ran on both processes
        assert cell["val_video_top1"] == summary["final"]["val_video_top1"]
    assert json.loads((out / "study.json").read_text())["cells"] == list(cells.values())
    assert not list(out.rglob("*.tmp"))
