"""The study's only door into training: build a cell's training config, train (or resume) it, read its scores.

Every training name the study uses is imported here, so a change of that layout is one edit in this file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from resnet3d.training.config import ConfigError, TrainConfig, load_config
from resnet3d.study.spec import StudyError

LAST_CHECKPOINT = Path("checkpoints") / "last.pth"


def cell_config(config: str | None, overrides: list[str], where: str) -> TrainConfig:
    """A training config (file or shipped preset) with overrides; a bad value names the study file."""
    try:
        return load_config(config, overrides)
    except ConfigError as e:
        raise StudyError(f"{where}: {e}") from None


def train_cell(config: TrainConfig, name: str) -> dict:
    """Train one cell into `config.run.out_dir`, resuming exactly (the trainer's --resume) when it holds a
    checkpoint; returns the trainer's summary as a dict (`status` is "finished" or "interrupted")."""
    from resnet3d.training.loop import resume_config, train

    run_dir = Path(config.run.out_dir)
    if (run_dir / LAST_CHECKPOINT).is_file():
        config = resume_config(run_dir, [f"run.progress={str(config.run.progress).lower()}"])
    _join_process_group(config.run.device, f"resnet3d-study/{name}/")
    return train(config).to_dict()


def _join_process_group(device_name: str, prefix: str) -> None:
    """Under torchrun, join this cell's own process group before the trainer runs (it uses the group it finds and
    leaves it at the end). Each cell's rendezvous keys get their own prefix: torchrun's store outlives a group, and
    a second group under the same name would read the first one's stale addresses."""
    import torch.distributed as dist

    from resnet3d.training.distributed import pick_device

    if int(os.environ.get("WORLD_SIZE", "1")) == 1 or dist.is_initialized():
        return
    device = pick_device(device_name, int(os.environ.get("LOCAL_RANK", "0")))
    store, rank, world_size = next(dist.rendezvous("env://"))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=dist.PrefixStore(prefix, store),
                            rank=rank, world_size=world_size)


def cell_scores(summary: dict) -> dict[str, Any]:
    """The cell's video-level evaluation: the last epoch's validation, which is `resnet3d eval` of last.pth on
    data.val_subset with data.val_clips clips per video (the same loop, transforms and views)."""
    final = summary["final"]
    return {key: final.get(key) for key in ("train_clip_top1", "val_loss", "val_clip_top1", "val_clip_top5",
                                              "val_video_top1", "val_video_top5", "val_mean_class_accuracy")}
