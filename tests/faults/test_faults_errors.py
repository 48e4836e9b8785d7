"""Settings and files that cannot work give one `resnet3d: error:` line, exit 2, before any folder is made."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from faults_helpers import cli, one_line_error, tiny_overrides


@pytest.mark.parametrize("overrides,message", [
    (["run.seed=-1"], "run.seed: must be >= 0, got -1"),
    (["optim.lr=.nan"], "optim.lr: must be a finite number, got nan"),
    (["optim.lr=.inf"], "optim.lr: must be a finite number, got inf"),
    (["model.options={n_input_channels: 2}"],
     "model.options: the model takes 2 input channels, but the videos of {index} have 3"),
    (["model.arch=densenet121", "model.options={}", "data.input_size=32", "data.clip_length=4"],
     "data.clip_length/data.input_size: a 4x32x32 clip is smaller than densenet121's receptive field (input image "
     "(T: 1 H: 4 W: 4) smaller than kernel size (kT: 2 kH: 2 kW: 2)); use longer clips or a larger input size"),
])
def test_bad_setting_is_one_line_error_and_no_folder(synth_index, tmp_path, overrides, message):
    line = one_line_error(cli("train", *tiny_overrides(synth_index, tmp_path / "run"), *overrides))
    assert line == f"resnet3d: error: {message.format(index=synth_index)}"
    assert not (tmp_path / "run").exists()


def test_file_as_out_dir_is_one_line_error(synth_index, tmp_path):
    (tmp_path / "taken").write_text("a file")
    line = one_line_error(cli("train", *tiny_overrides(synth_index, tmp_path / "taken")))
    assert line == f"resnet3d: error: run.out_dir: {tmp_path / 'taken'} is a file, not a folder"
    line = one_line_error(cli("train", *tiny_overrides(synth_index, tmp_path / "taken" / "run")))
    assert line == f"resnet3d: error: run.out_dir: cannot create {tmp_path / 'taken' / 'run'}: {tmp_path / 'taken'} " \
                   "is a file, not a folder"


def test_read_only_parent_of_out_dir_is_one_line_error(synth_index, tmp_path):
    parent = tmp_path / "locked"
    parent.mkdir(mode=0o555)
    if os.geteuid() == 0:  # root writes anywhere a permission bit says no; sysfs refuses new folders to root too
        parent = Path("/sys")
    line = one_line_error(cli("train", *tiny_overrides(synth_index, parent / "run" / "deeper")))
    assert line.startswith(f"resnet3d: error: run.out_dir: cannot create folders in {parent} (")
    assert not (parent / "run").exists()


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch MARKER",))


def test_checkpoint_holding_code_is_refused_plainly(synth_index, tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "hook": _Payload()}, evil)
    line = one_line_error(cli("eval", evil, "--data", synth_index, cwd=tmp_path))
    assert line == (f"resnet3d: error: {evil}: refused: the file holds Python code (posix.system), which loading "
                    "would run; only tensors and plain containers are loaded")
    assert not (tmp_path / "MARKER").exists()
