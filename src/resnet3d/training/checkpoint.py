"""Training checkpoints: the model file format plus everything needed to resume exactly (RNG included)."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnet3d.errors import Resnet3dError

CHECKPOINT_DIR = "checkpoints"
_EPOCH_FILE = re.compile(r"epoch_(\d+)\.pth$")


def rng_state() -> dict:
    """Python, NumPy, torch CPU and CUDA generator states, in a form `torch.load(weights_only=True)` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "python": [version, list(internal), gauss_next],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    """Inverse of `rng_state`."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def last_path(run_dir: Path) -> Path:
    """checkpoints/last.pth: the checkpoint a run goes on from."""
    return run_dir / CHECKPOINT_DIR / "last.pth"


def epoch_path(run_dir: Path, epoch: int) -> Path:
    """checkpoints/epoch_NNN.pth for a 1-based epoch number."""
    return run_dir / CHECKPOINT_DIR / f"epoch_{epoch:03d}.pth"


def prune_epoch_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the `keep` newest epoch_NNN.pth files."""
    files = sorted((p for p in (run_dir / CHECKPOINT_DIR).glob("epoch_*.pth") if _EPOCH_FILE.search(p.name)),
                   key=lambda p: int(_EPOCH_FILE.search(p.name).group(1)))
    for p in files[: max(len(files) - keep, 0)]:
        p.unlink(missing_ok=True)


def resolve_resume(path: str | Path) -> Path:
    """A run folder means its checkpoints/last.pth; a file is used as is."""
    path = Path(path)
    candidate = last_path(path) if path.is_dir() else path
    if not candidate.is_file():
        raise Resnet3dError(f"run.resume: {candidate}: no such checkpoint (give a run folder or a .pth file)")
    return candidate


def training_state(checkpoint: dict, path: Path) -> dict[str, Any]:
    """The `training` section of a checkpoint written by `resnet3d train`, or a clear error."""
    state = checkpoint.get("training")
    if not isinstance(state, dict):
        raise Resnet3dError(f"run.resume: {path}: not a training checkpoint (no optimizer/RNG state); "
                            "to start from its weights use model.pretrained instead")
    return state
