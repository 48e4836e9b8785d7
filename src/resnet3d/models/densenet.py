"""3D DenseNet-BC (121/169/201/264) with the original's module names (`features.denseblock1.denselayer1.norm1` …)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from resnet3d.models.layers import VideoClassifier, init_weights
from resnet3d.models.registry import ModelOptions, register_model

BLOCK_CONFIGS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32), 264: (6, 12, 64, 48)}


class DenseLayer(nn.Sequential):
    """BN → ReLU → 1×1×1 conv → BN → ReLU → 3×3×3 conv; its `growth_rate` new channels are appended to the input."""

    def __init__(self, in_features: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.add_module("norm1", nn.BatchNorm3d(in_features))
        self.add_module("relu1", nn.ReLU(inplace=True))
        self.add_module("conv1", nn.Conv3d(in_features, bn_size * growth_rate, kernel_size=1, bias=False))
        self.add_module("norm2", nn.BatchNorm3d(bn_size * growth_rate))
        self.add_module("relu2", nn.ReLU(inplace=True))
        self.add_module("conv2", nn.Conv3d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False))
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = super().forward(x)
        if self.drop_rate > 0:
            new = F.dropout(new, p=self.drop_rate, training=self.training)
        return torch.cat([x, new], 1)


class Transition(nn.Sequential):
    """BN → ReLU → 1×1×1 conv → 2×2×2 average pool between dense blocks."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm3d(in_features))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv3d(in_features, out_features, kernel_size=1, bias=False))
        self.add_module("pool", nn.AvgPool3d(kernel_size=2, stride=2))


class DenseNet(VideoClassifier):
    """`features` (stem, dense blocks, transitions, norm5) → ReLU → global average pool → `classifier`."""

    head_name = "classifier"

    def __init__(
        self,
        block_config: tuple[int, ...],
        num_classes: int = 400,
        *,
        n_input_channels: int = 3,
        conv1_t_size: int = 7,
        conv1_t_stride: int = 1,
        no_max_pool: bool = False,
        growth_rate: int = 32,
        num_init_features: int = 64,
        bn_size: int = 4,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential()
        stem = nn.Conv3d(
            n_input_channels,
            num_init_features,
            (conv1_t_size, 7, 7),
            (conv1_t_stride, 2, 2),
            (conv1_t_size // 2, 3, 3),
            bias=False,
        )
        self.features.add_module("conv1", stem)
        self.features.add_module("norm1", nn.BatchNorm3d(num_init_features))
        # Max-pooling before the ReLU gives the same values and the same gradients (ReLU is monotone, and where the
        # two orders pick different maxima the ReLU's gradient is zero), and the ReLU then runs on 1/8 of the stem's
        # output: on the CPU in bf16 that ReLU alone cost ~3 % of an R3D-18 training step (AMX Xeon).
        if not no_max_pool:
            self.features.add_module("pool1", nn.MaxPool3d(kernel_size=3, stride=2, padding=1))
        self.features.add_module("relu1", nn.ReLU(inplace=True))
        n = num_init_features
        for b, num_layers in enumerate(block_config, start=1):
            block = nn.Sequential()
            for i in range(num_layers):
                block.add_module(f"denselayer{i + 1}", DenseLayer(n + i * growth_rate, growth_rate, bn_size, drop_rate))
            self.features.add_module(f"denseblock{b}", block)
            n += num_layers * growth_rate
            if b != len(block_config):
                self.features.add_module(f"transition{b}", Transition(n, n // 2))
                n //= 2
        self.features.add_module("norm5", nn.BatchNorm3d(n))
        self.num_features = n
        self.num_classes = num_classes
        self.classifier = nn.Linear(n, num_classes)
        init_weights(self)
        nn.init.zeros_(self.classifier.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features(x), inplace=True)
        return torch.flatten(F.adaptive_avg_pool3d(x, 1), 1)


@dataclass(frozen=True)
class DenseNetOptions(ModelOptions):
    """DenseNet options (the original's names); block_config None means the depth's standard blocks."""

    unchecked: ClassVar[tuple[str, ...]] = ("drop_rate",)

    n_input_channels: int = 3
    conv1_t_size: int = 7
    conv1_t_stride: int = 1
    no_max_pool: bool = False
    growth_rate: int = 32
    block_config: tuple[int, ...] | None = None
    num_init_features: int = 64
    bn_size: int = 4
    drop_rate: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.drop_rate, (int, float)) or not 0 <= self.drop_rate < 1:
            raise ValueError(f"drop_rate must be in [0, 1), got {self.drop_rate!r}")
        if self.block_config is not None:
            config = tuple(self.block_config)
            if not config or not all(isinstance(n, int) and n > 0 for n in config):
                raise ValueError(f"block_config must be positive layer counts, got {self.block_config!r}")
            object.__setattr__(self, "block_config", config)
        super().__post_init__()


def _densenet(depth: int, num_classes: int, options: DenseNetOptions) -> DenseNet:
    kwargs = {k: v for k, v in vars(options).items() if k != "block_config"}
    return DenseNet(options.block_config or BLOCK_CONFIGS[depth], num_classes, **kwargs)


@register_model(DenseNetOptions)
def densenet121(num_classes: int, options: DenseNetOptions) -> DenseNet:
    """3D DenseNet-121."""
    return _densenet(121, num_classes, options)


@register_model(DenseNetOptions)
def densenet169(num_classes: int, options: DenseNetOptions) -> DenseNet:
    """3D DenseNet-169."""
    return _densenet(169, num_classes, options)


@register_model(DenseNetOptions)
def densenet201(num_classes: int, options: DenseNetOptions) -> DenseNet:
    """3D DenseNet-201."""
    return _densenet(201, num_classes, options)


@register_model(DenseNetOptions)
def densenet264(num_classes: int, options: DenseNetOptions) -> DenseNet:
    """3D DenseNet-264."""
    return _densenet(264, num_classes, options)
