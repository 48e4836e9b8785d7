"""SIGTERM/SIGINT to the whole process group (trainer and its DataLoader workers), as SLURM and Kubernetes send it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from faults_helpers import ENV, assert_same_weights, cli, tiny_overrides


def start_in_own_group(args: list[str]) -> subprocess.Popen:
    """`python -m resnet3d ARGS` as the leader of a new session (process group), like `setsid`."""
    return subprocess.Popen([sys.executable, "-m", "resnet3d", *args], env=ENV, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_steps(csv, count: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until the run has logged `count` optimizer steps (its workers are running by then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if csv.exists() and len(csv.read_text().splitlines()) > count:
            return
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"the run did not reach step {count}: {proc.communicate()[1][-2000:]}")


RECIPE = ("data.workers=2", "schedule.epochs=1")  # 12 steps


@pytest.fixture(scope="module")
def uninterrupted(synth_index, tmp_path_factory):
    """last.pth of the same run left alone."""
    run = tmp_path_factory.mktemp("uninterrupted")
    done = cli("train", *tiny_overrides(synth_index, run, *RECIPE))
    assert done.returncode == 0, done.stderr[-3000:]
    return run / "checkpoints" / "last.pth"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_group_signal_with_workers_checkpoints_exits_130_and_resumes_bit_exactly(synth_index, tmp_path, signum,
                                                                                  uninterrupted):
    run = tmp_path / "preempted"
    proc = start_in_own_group(["train", *tiny_overrides(synth_index, run, *RECIPE)])
    wait_for_steps(run / "train_steps.csv", 3, proc)
    os.killpg(proc.pid, signum)  # kill -TERM -- -PGID: the trainer and both workers
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 3 <= summary["steps_done"] < 12
    assert "interrupted: checkpoint saved in " in out

    done = cli("train", "--resume", run, "data.workers=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["steps_done"] == 12
    assert_same_weights(run / "checkpoints" / "last.pth", uninterrupted)


def test_the_loader_does_not_warn_at_every_epoch_when_workers_outnumber_cores():
    import warnings

    from torch.utils.data import DataLoader

    from resnet3d.training.preemption import ShieldedLoader

    workers = len(os.sched_getaffinity(0)) + 1
    with warnings.catch_warnings(record=True) as plain:
        warnings.simplefilter("always")
        DataLoader(range(4), num_workers=workers)
    assert any("worker" in str(w.message) for w in plain)  # torch's own loader does warn here
    with warnings.catch_warnings(record=True) as shielded:
        warnings.simplefilter("always")
        loader = ShieldedLoader(range(4), batch_size=2, num_workers=workers)
        assert [b.tolist() for b in loader] == [[0, 1], [2, 3]]
    assert not [w for w in shielded if "worker" in str(w.message)]
