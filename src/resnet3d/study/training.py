"""The study's only door into training: build a cell's training config, train (or resume) it, read its scores.

Every training name the study uses is imported here, so a change of that layout is one edit in this file.
"""

from __future__ import annotations

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


def train_cell(config: TrainConfig) -> dict:
    """Train one cell into `config.run.out_dir`, resuming exactly (the trainer's --resume) when it holds a
    checkpoint; returns the trainer's summary as a dict (`status` is "finished" or "interrupted")."""
    from resnet3d.training.loop import resume_config, train

    run_dir = Path(config.run.out_dir)
    if (run_dir / LAST_CHECKPOINT).is_file():
        config = resume_config(run_dir, [f"run.progress={str(config.run.progress).lower()}"])
    return train(config).to_dict()


def cell_scores(summary: dict) -> dict[str, Any]:
    """The cell's video-level evaluation: the last epoch's validation, which is `resnet3d eval` of last.pth on
    data.val_subset with data.val_clips clips per video (the same loop, transforms and views)."""
    final = summary["final"]
    return {key: final.get(key) for key in ("train_clip_top1", "val_loss", "val_clip_top1", "val_clip_top5",
                                              "val_video_top1", "val_video_top5", "val_mean_class_accuracy")}
