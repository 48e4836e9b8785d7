"""Fixtures for the training-engine tests: a few tiny generated videos and a tiny, fast training config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from resnet3d.data.annotations import read_index
from resnet3d.data.datasets import MultiViewDataset, collate_views
from resnet3d.data.transforms import build_eval_transform
from resnet3d.evaluation.multiview import evaluate
from resnet3d.models.checkpoint import load_model

from resnet3d.data.index import VideoIndex, VideoRecord
from resnet3d.data.writer import write_video
from resnet3d.training.config import TrainConfig, load_config

CLASSES = ["red", "green", "blue"]
TINT = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]], dtype=np.float64)


def make_videos(folder: Path, per_class: dict[str, int], frames: int = 12, size: int = 40, seed: int = 0) -> Path:
    """Write noisy videos whose class is their dominant colour; returns the index file (subset -> videos per class)."""
    rng = np.random.default_rng(seed)
    records = []
    for subset, count in per_class.items():
        for label, name in enumerate(CLASSES):
            for k in range(count):
                base = TINT[label] * rng.uniform(0.6, 1.0)
                clip = base + rng.normal(0, 30, size=(frames, size, size, 3))
                path = folder / f"{subset}_{name}_{k}.avi"  # mpeg4: bit-reproducible (threaded x264 is not)
                write_video(path, np.clip(clip, 0, 255).astype(np.uint8), fps=10, gop=4)
                records.append(VideoRecord(f"{subset}_{name}_{k}", str(path), label, subset))
    index_path = folder / "index.json"
    VideoIndex(list(CLASSES), records).save(index_path)
    return index_path


@pytest.fixture(scope="session")
def color_index(tmp_path_factory) -> Path:
    """3 classes x 4 training and x 2 validation videos (12 frames, 40x40)."""
    return make_videos(tmp_path_factory.mktemp("color_videos"), {"training": 4, "validation": 2})


@pytest.fixture
def tiny_config(color_index, tmp_path):
    """Factory: a seconds-long config (ResNet-10 at 1/8 width, 8x32x32 clips) plus extra `key=value` overrides."""

    def make(*overrides: str, out: str = "run") -> TrainConfig:
        base = [
            f"data.index={color_index}", "model.arch=resnet10", "model.options={widen_factor: 0.125}",
            "data.input_size=32", "data.clip_length=8", "data.batch_size=4", "data.workers=0", "data.val_clips=2",
            "optim.lr=0.05", "schedule.name=multistep", "schedule.milestones=[3]", "schedule.epochs=2",
            "run.progress=false", "run.tensorboard=false", f"run.out_dir={tmp_path / out}",
        ]
        return load_config(None, [*base, *overrides])

    return make


def _val_result(checkpoint, config, precision="fp32"):
    """Single-process evaluation of a checkpoint on the validation subset, as a fresh user would run it."""
    model, meta = load_model(checkpoint)
    index = read_index(config.data.index).subset("validation")
    views = MultiViewDataset(index, clip_length=meta.clip_length, t_stride=meta.t_stride, num_clips=config.data.val_clips,
                             transform=build_eval_transform(meta.input_size, normalization=meta.normalization))
    loader = DataLoader(views, batch_size=2, collate_fn=collate_views)
    return evaluate(model, loader, device="cpu", precision=precision, criterion=torch.nn.CrossEntropyLoss(),
                    progress=False)


@pytest.fixture
def val_result():
    """evaluate(checkpoint, config) -> EvalResult on the validation subset, in one process."""
    return _val_result


@pytest.fixture(scope="session")
def odd_index(tmp_path_factory) -> Path:
    """3 classes x 4 training videos and 3 validation videos: an odd count, so 2 processes need sampler padding."""
    return make_videos(tmp_path_factory.mktemp("odd_videos"), {"training": 4, "validation": 1}, seed=1)
