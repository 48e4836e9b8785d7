"""A run stops when its folder vanishes, rewrites torn logs on resume, cleans stale temp files, honours the umask."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
from runs_helpers import tiny_overrides

from resnet3d.cli import main
from resnet3d.data import datasets
from resnet3d.training import logs
from resnet3d.io import atomic_write_text
from reference_helpers import read_csv


def _on_call(monkeypatch, call: int, action) -> None:
    """Run `action()` when the training set loads its `call`-th clip (as another shell would, mid-run)."""
    real, seen = datasets.ClipDataset.__getitem__, {"n": 0}

    def getitem(self, i):
        seen["n"] += 1
        if seen["n"] == call:
            action()
        return real(self, i)

    monkeypatch.setattr(datasets.ClipDataset, "__getitem__", getitem)


def test_run_folder_deleted_mid_run_stops_with_one_line_error(run_index, tmp_path, monkeypatch, capsys):
    run = tmp_path / "v"
    _on_call(monkeypatch, 2, lambda: shutil.rmtree(run))  # during the first optimizer step
    assert main(["train", *tiny_overrides(run_index, run, "schedule.epochs=2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"resnet3d: error: run folder {run} was deleted while training; stopped without writing anything "
                   "more"]
    assert not run.exists()  # nothing was recreated


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_run_folder_made_read_only_mid_run_stops(run_index, tmp_path, monkeypatch, capsys):
    run = tmp_path / "ro"
    _on_call(monkeypatch, 2, lambda: run.chmod(0o555))
    try:
        assert main(["train", *tiny_overrides(run_index, run)]) == 2
    finally:
        run.chmod(0o755)
    assert "is no longer writable" in capsys.readouterr().err


def test_torn_last_rows_are_rewritten_cleanly_on_resume(run_index, tmp_path, capsys):
    run = tmp_path / "rel"
    assert main(["train", *tiny_overrides(run_index, run)]) == 0
    with open(run / "train_steps.csv", "a") as f:
        f.write("1,")  # as a full disk or a power cut leaves it
    with open(run / "train_epochs.csv", "a") as f:
        f.write("2,4,0.05,1.2")
    assert main(["train", "--resume", str(run), "schedule.epochs=2"]) == 0
    steps, epochs = read_csv(run / "train_steps.csv"), read_csv(run / "train_epochs.csv")
    assert [r["step"] for r in steps] == ["1", "2", "3", "4"] and [r["epoch"] for r in epochs] == ["1", "2"]
    assert all(None not in r.values() and None not in r for r in steps + epochs)  # every row whole
    assert (run / "train_steps.csv").read_bytes().count(b"\r\n") == 5


def test_truncate_after_drops_rows_that_do_not_parse(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"epoch,step,loss\r\n1,2,0.5\r\n1,x,0.4\r\n1,3\r\n2,4,0.3\r\n2,5,0.2\r\n2,4,0.")
    logs.truncate_after(path, "step", 4)  # bad step, short row, after the checkpoint, torn: all dropped
    assert path.read_bytes() == b"epoch,step,loss\r\n1,2,0.5\r\n2,4,0.3\r\n"


def test_stale_temp_files_of_an_interrupted_save_are_removed(run_index, tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", *tiny_overrides(run_index, run)]) == 0
    stale = [run / "checkpoints/.last.pth.k2j_9xq1.tmp", run / ".summary.json.a1b2c3d4.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    (run / ".my_notes.tmp").write_text("mine")
    assert main(["train", "--resume", str(run), "schedule.epochs=2"]) == 0
    assert not any(p.exists() for p in stale)
    assert (run / ".my_notes.tmp").read_text() == "mine"


def test_atomic_writes_get_the_umask_mode(run_index, tmp_path, capsys):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        assert main(["train", *tiny_overrides(run_index, tmp_path / "r")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    written = [tmp_path / "r" / name for name in ("config.yaml", "summary.json", "checkpoints/last.pth",
                                                  "checkpoints/epoch_001.pth")]
    assert [stat.S_IMODE(p.stat().st_mode) for p in written] == [0o640] * 4


def test_atomic_writes_reach_the_disk_before_the_rename_and_the_rename_after(tmp_path, monkeypatch):
    import resnet3d.io as io

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "fsync", fsync)
    monkeypatch.setattr(io.os, "replace", replace)
    atomic_write_text(tmp_path / "a.txt", "x")
    (_, synced), (_, renamed), last = events
    assert synced == renamed and os.path.basename(synced).startswith(".a.txt.")
    assert last == ("fsync", str(tmp_path)) and (tmp_path / "a.txt").read_text() == "x"


def test_writes_past_a_file_size_limit_are_one_line_errors_and_leave_no_temp_file(tmp_path):
    import subprocess
    import sys

    # RLIMIT_FSIZE fails writes as a full disk does (EFBIG instead of ENOSPC); torch.save then raises its own
    # RuntimeError, which must not reach the user as such
    code = f"""
import resource, signal, torch
from resnet3d.io import WriteError, atomic_torch_save, atomic_write_text
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
for write in (lambda: atomic_torch_save({{"w": torch.zeros(100_000)}}, {str(tmp_path / "x.pth")!r}),
              lambda: atomic_write_text({str(tmp_path / "y.txt")!r}, "x" * 200_000)):
    try:
        write()
    except WriteError as e:
        print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0].startswith(f"cannot write {tmp_path / 'x.pth'}: torch.save could not write it (is the disk full?), ")
    assert out[1].startswith(f"cannot write {tmp_path / 'y.txt'}: File too large, ") and out[1].endswith(" MiB free there")
    assert os.listdir(tmp_path) == []


def test_a_full_disk_stops_training_with_the_resume_line_and_the_resume_makes_the_missing_best(
        run_index, tmp_path, monkeypatch, capsys):
    import errno

    import torch

    run = tmp_path / "r"
    ckpts = run / "checkpoints"

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(shutil, "copyfile", full)  # last.pth is written, its copy to best.pth finds the disk full
        assert main(["train", *tiny_overrides(run_index, run)]) == 2
    err = capsys.readouterr().err
    assert f"resnet3d: error: cannot write {ckpts / 'best.pth'}: No space left on device, " in err
    assert f"; once there is room, go on from {ckpts / 'last.pth'} with  resnet3d train --resume {run}\n" in err
    assert sorted(os.listdir(ckpts)) == ["last.pth"] and "Traceback" not in err
    assert main(["train", "--resume", str(run)]) == 0  # nothing left to train: it makes the copies it missed
    assert sorted(os.listdir(ckpts)) == ["best.pth", "epoch_001.pth", "last.pth"]
    last = torch.load(ckpts / "last.pth", weights_only=True)
    for name in ("best.pth", "epoch_001.pth"):
        copy = torch.load(ckpts / name, weights_only=True)
        assert all(torch.equal(copy["state_dict"][k], v) for k, v in last["state_dict"].items())


def test_run_folder_replaced_mid_run_stops(run_index, tmp_path, monkeypatch, capsys):
    run = tmp_path / "v"
    _on_call(monkeypatch, 2, lambda: (shutil.rmtree(run), run.mkdir()))  # another folder under the same name
    assert main(["train", *tiny_overrides(run_index, run)]) == 2
    assert f"run folder {run} was replaced by another folder while training" in capsys.readouterr().err
    assert os.listdir(run) == []
