"""Checks made before a run builds anything or makes a folder, so a bad setting is one line, not a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

from torch import nn

from resnet3d.training.config import ConfigError, TrainConfig


def check_out_dir(out_dir: str | Path) -> None:
    """run.out_dir must be a folder, or creatable: its nearest existing parent a writable folder."""
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"run.out_dir: {path} is a file, not a folder")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"run.out_dir: cannot create {path}: {existing} is a file, not a folder")
    try:  # a real attempt: permissions, read-only mounts and root all answer it correctly
        tempfile.TemporaryDirectory(dir=existing, prefix=".resnet3d-write-test-").cleanup()
    except OSError as e:
        raise ConfigError(f"run.out_dir: cannot create folders in {existing} ({e.strerror}); choose another "
                          "run.out_dir") from None


def check_input(model: nn.Module, config: TrainConfig) -> None:
    """The clips the data gives must cover at least the model's receptive field."""
    from resnet3d.models.complexity import gmacs

    channels = model.arch_options.get("n_input_channels", 3)
    d = config.data
    try:  # runs the network on meta tensors (shapes only): fails exactly where a real clip would
        gmacs(model, (channels, d.clip_length, d.input_size, d.input_size))
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[0]
        raise ConfigError(f"data.clip_length/data.input_size: a {d.clip_length}x{d.input_size}x{d.input_size} clip is "
                          f"smaller than {model.arch_name}'s receptive field ({reason}); use longer clips or a larger "
                          "input size") from None
