"""Where a training run stands (`TrainState`, the only thing that goes into and out of a checkpoint) and what it
produced (`TrainSummary`)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from resnet3d.training import checkpoint as ckpt

if TYPE_CHECKING:
    from resnet3d.training.setup import RunParts


@dataclass
class TrainState:
    """Epoch (1-based, the one being trained), optimizer steps, the running epoch's sums, history, best, time."""

    epoch: int = 1
    step: int = 0
    step_in_epoch: int = 0
    sums: list[float] = field(default_factory=lambda: [0.0] * 5)  # loss, top-1 hits, clips, data s, train s
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"epoch": None, "video_top1": None})
    elapsed_before: float = 0.0  # seconds of the runs this one resumes
    # this process only, never checkpointed:
    started: float = field(default_factory=time.perf_counter)
    last_checkpoint: Path | None = None
    save_seconds: float = 0.0  # of the latest checkpoint: a preemption's grace period must cover one

    @property
    def elapsed_s(self) -> float:
        """Training seconds over this run and the ones it resumes."""
        return self.elapsed_before + time.perf_counter() - self.started

    def to_checkpoint(self, parts: RunParts, rngs: list) -> dict:
        """The `training` section of a checkpoint: this state plus optimizer, schedule, scaler, EMA and RNGs."""
        return {
            "epoch": self.epoch - 1, "step": self.step, "step_in_epoch": self.step_in_epoch,
            "epoch_sums": list(self.sums), "optimizer": parts.optimizer.state_dict(),
            "scheduler": parts.scheduler.state_dict(), "scaler": parts.scaler.state_dict(), "rng": rngs,
            "config": parts.config.to_dict(), "history": self.history, "best": self.best,
            "elapsed_s": self.elapsed_s, "world_size": parts.ctx.world_size,
            "ema": parts.ema.state_dict() if parts.ema is not None else None,
        }

    @classmethod
    def from_checkpoint(cls, training: dict | None, parts: RunParts, started: float) -> TrainState:
        """A fresh state, or the one `training` holds (loaded into optimizer, schedule, scaler, EMA and RNGs)."""
        if training is None:
            return cls(started=started)
        parts.optimizer.load_state_dict(training["optimizer"])
        parts.scheduler.load_state_dict(training["scheduler"])
        parts.scaler.load_state_dict(training["scaler"])
        if parts.ema is not None and training.get("ema"):
            parts.ema.load_state_dict(training["ema"])
        rng = training["rng"]
        ckpt.set_rng_state(rng[parts.ctx.rank] if len(rng) == parts.ctx.world_size else rng[0])
        in_epoch = training["step_in_epoch"]  # stopped part-way through the next epoch: finish it from there
        return cls(epoch=training["epoch"] + 1, step=training["step"], step_in_epoch=in_epoch,
                   sums=list(training["epoch_sums"]) if in_epoch else [0.0] * 5, history=list(training["history"]),
                   best=dict(training["best"]), elapsed_before=training["elapsed_s"], started=started,
                   last_checkpoint=parts.resume_path)


@dataclass
class TrainSummary:
    """What a finished (or interrupted) run produced."""

    run_dir: Path
    status: str  # "finished" or "interrupted"
    epochs: int
    epochs_done: int
    steps_done: int
    best_epoch: int | None
    best_video_top1: float | None
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    final: dict  # the last epoch's row of train_epochs.csv
    history: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0
    train_clips_per_s: float | None = None
    bad_files: int = 0
    run: dict = field(default_factory=dict)  # what the run used: precision, layout, device, data, cost, weights

    def to_dict(self) -> dict:
        """JSON-friendly form (summary.json)."""
        d = asdict(self)
        for key in ("run_dir", "best_checkpoint", "last_checkpoint"):
            d[key] = str(d[key]) if d[key] is not None else None
        return d
