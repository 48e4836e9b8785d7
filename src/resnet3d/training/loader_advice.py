"""The one line a run prints when its training loop waits on the data loader for more than a tenth of an epoch."""

from __future__ import annotations

import os
from typing import Any

DATA_SHARE = 0.10  # above this share of an epoch spent waiting for training batches, the loader is the limit


def cores_per_process() -> int:
    """CPU cores this process may use, shared with the other training processes of this machine (torchrun)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def loader_advice(row: dict[str, Any], data: Any, cores: int) -> str | None:
    """What to do when the epoch `row` (train_epochs.csv's) waited for data more than DATA_SHARE of it, else None.

    `data` is the run's `data` config section: more workers are advised only where cores are left for them. With
    `data.cache_mb` (each video decoded once, workers=0) there is no advice: all of it is about decoding.
    """
    waited, total = row["data_time_s"], row["epoch_time_s"]
    if not total or waited <= DATA_SHARE * total or data.cache_mb:
        return None
    index = data.index or "INDEX"
    workers = f"raise data.workers (now {data.workers}, {cores} cores), " if data.workers < cores else ""
    return (f"data loading took {waited / total:.0%} of epoch {row['epoch']} ({waited:.1f} of "
            f"{total:.1f} s): {workers}find slow or broken videos with `resnet3d data doctor {index}`, or "
            f"re-encode them with `resnet3d data prepare {index} --out-dir FAST --short-side 128 --gop 16` "
            "and train on FAST/index.json")
