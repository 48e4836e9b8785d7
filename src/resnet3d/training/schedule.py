"""The optimizer and the learning-rate schedule (warm-up, multistep, cosine per step; plateau per epoch)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from resnet3d.training.config import TrainConfig


def build_optimizer(config: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """SGD or AdamW over `params` as `config.optim` says."""
    o = config.optim
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, dampening=o.dampening, weight_decay=o.weight_decay,
                           nesterov=o.nesterov)


def build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
    """Plateau steps per epoch on the validation loss; the others are a per-step factor on the base lr."""
    s = config.schedule
    if s.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=s.gamma, patience=s.patience)
    warmup = round(s.warmup_epochs * steps_per_epoch)
    total = s.epochs * steps_per_epoch
    floor = s.min_lr / config.optim.lr

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if s.name == "cosine":
            progress = (step - warmup) / max(1, total - warmup)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        epoch_index = step // steps_per_epoch
        return s.gamma ** sum(epoch_index >= m for m in s.milestones)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
