"""Model cost: parameter count and multiply-adds, counted on the meta device (shapes only, no real compute)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from resnet3d.models.checkpoint import unwrap_model
from resnet3d.models.layers import VideoClassifier
from resnet3d.models.registry import create_model


@dataclass(frozen=True)
class Complexity:
    """Cost of one forward pass. `flops` follows torch's flop counter: 2 FLOPs per multiply-add."""

    params: int
    flops: int
    num_features: int

    @property
    def macs(self) -> int:
        """Multiply-adds (half the counted FLOPs)."""
        return self.flops // 2


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of `model(x)` as torch.utils.flop_counter counts them (convolutions and matmuls, 2 per multiply-add)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def meta_copy(model: VideoClassifier) -> VideoClassifier:
    """The same registered architecture rebuilt on the meta device (shapes only, no memory, no compute)."""
    with torch.device("meta"):
        return create_model(model.arch_name, num_classes=model.num_classes, **model.arch_options).eval()


def gmacs(model: nn.Module, view_shape: tuple[int, ...]) -> float:
    """10^9 multiply-adds of one clip of `view_shape` (C, T, H, W) through `model`, counted without running it."""
    model = unwrap_model(model)
    if not getattr(model, "arch_name", ""):
        raise ValueError("gmacs needs a registered model (one built by create_model or load_model)")
    return count_flops(meta_copy(model), torch.empty(1, *view_shape, device="meta")) / 2e9


def model_complexity(
    name: str, num_classes: int = 400, frames: int = 16, size: int = 112, **options: Any
) -> Complexity:
    """Parameters and FLOPs of a registered model for one (1, C, frames, size, size) clip, built on the meta device."""
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, **options).eval()
    x = torch.empty(1, model.arch_options.get("n_input_channels", 3), frames, size, size, device="meta")
    return Complexity(count_params(model), count_flops(model, x), model.num_features)
