"""One generic ResNet and the registered builders: 3D ResNet, R(2+1)D, pre-activation, wide, ResNeXt, 2D per frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from resnet3d.models.blocks import (
    CONV3D,
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    ResNeXtBottleneck,
    WideBottleneck,
)
from resnet3d.models.layers import Conv2Plus1D, Conv3D, ConvPerFrame, VideoClassifier, ZeroPadShortcut, init_weights, run
from resnet3d.models.registry import ModelOptions, register_model

BASIC_LAYERS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
BOTTLENECK_LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}
BASE_WIDTHS = (64, 128, 256, 512)


class ResNet(VideoClassifier):
    """Stem → max-pool → four residual stages → global average pool → fc, with pluggable block and conv builder."""

    def __init__(
        self,
        block: type[nn.Module],
        layers: tuple[int, int, int, int],
        block_inplanes: list[int],
        num_classes: int = 400,
        *,
        conv: Conv3D = CONV3D,
        n_input_channels: int = 3,
        conv1_t_size: int = 7,
        conv1_t_stride: int = 1,
        no_max_pool: bool = False,
        shortcut_type: str = "B",
        stem_planes: int | None = None,
        block_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if shortcut_type not in ("A", "B"):
            raise ValueError(f"shortcut_type must be 'A' or 'B', got {shortcut_type!r}")
        in_planes = stem_planes or block_inplanes[0]
        self.relu = nn.ReLU(inplace=True)
        self.stem_order = conv.add_stem(self, n_input_channels, in_planes, conv1_t_size, conv1_t_stride)
        self.maxpool = None if no_max_pool else conv.max_pool()
        for i, (planes, blocks) in enumerate(zip(block_inplanes, layers)):
            stride = 1 if i == 0 else 2
            out_planes = planes * block.expansion
            downsample = None
            if stride != 1 or in_planes != out_planes:
                downsample = self._shortcut(shortcut_type, in_planes, out_planes, conv.stride(stride))
            stage = [block(in_planes, planes, stride, downsample, conv, **(block_kwargs or {}))]
            stage += [block(out_planes, planes, 1, None, conv, **(block_kwargs or {})) for _ in range(1, blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            in_planes = out_planes
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.num_features = in_planes
        self.num_classes = num_classes
        self.fc = nn.Linear(in_planes, num_classes)
        init_weights(self)

    @staticmethod
    def _shortcut(kind: str, in_planes: int, out_planes: int, stride: tuple[int, int, int]) -> nn.Module:
        if kind == "A":
            return ZeroPadShortcut(out_planes, stride)
        return nn.Sequential(
            nn.Conv3d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm3d(out_planes)
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.maxpool is None:
            x = run(self, self.stem_order, x)
        else:  # pooled before the stem's closing ReLU (`add_stem`'s order ends with it): see `densenet.DenseNet`
            *body, relu = self.stem_order
            x = getattr(self, relu)(self.maxpool(run(self, body, x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


@dataclass(frozen=True)
class FrameResNetOptions(ModelOptions):
    """Options of the per-frame 2D ResNets."""

    n_input_channels: int = 3
    no_max_pool: bool = False
    shortcut_type: str = "B"
    widen_factor: float = 1.0


@dataclass(frozen=True)
class StemOptions(ModelOptions):
    """Options every 3D ResNet shares (the original's names)."""

    n_input_channels: int = 3
    conv1_t_size: int = 7
    conv1_t_stride: int = 1
    no_max_pool: bool = False
    shortcut_type: str = "B"


@dataclass(frozen=True)
class ResNetOptions(StemOptions):
    """Options of ResNet, R(2+1)D and pre-activation ResNet: widths [64, 128, 256, 512] × widen_factor."""

    widen_factor: float = 1.0


@dataclass(frozen=True)
class WideResNetOptions(StemOptions):
    """Wide ResNet: widths × k; legacy_stem keeps the CVPR-2018 64-channel stem."""

    k: int = 2
    legacy_stem: bool = False


@dataclass(frozen=True)
class ResNeXtOptions(StemOptions):
    """ResNeXt: widths [128, 256, 512, 1024], `cardinality` groups; legacy_stem keeps the 64-channel stem."""

    cardinality: int = 32
    legacy_stem: bool = False


_NETWORK_OPTIONS = ("n_input_channels", "conv1_t_size", "conv1_t_stride", "no_max_pool", "shortcut_type")


def _build(
    block: type[nn.Module],
    layers: tuple[int, int, int, int],
    widths: list[int],
    num_classes: int,
    options: ModelOptions,
    conv: Conv3D = CONV3D,
    **extra: Any,
) -> ResNet:
    kwargs = {k: getattr(options, k) for k in _NETWORK_OPTIONS if hasattr(options, k)}
    return ResNet(block, layers, widths, num_classes, conv=conv, **kwargs, **extra)


def _widths(factor: float) -> list[int]:
    return [int(w * factor) for w in BASE_WIDTHS]


def _resnet(depth: int, num_classes: int, options: ResNetOptions | FrameResNetOptions, conv: Conv3D = CONV3D) -> ResNet:
    block = BasicBlock if depth in BASIC_LAYERS else Bottleneck
    layers = {**BASIC_LAYERS, **BOTTLENECK_LAYERS}[depth]
    return _build(block, layers, _widths(options.widen_factor), num_classes, options, conv)


def _preact(depth: int, num_classes: int, options: ResNetOptions) -> ResNet:
    block = PreActBasicBlock if depth in BASIC_LAYERS else PreActBottleneck
    layers = {**BASIC_LAYERS, **BOTTLENECK_LAYERS}[depth]
    return _build(block, layers, _widths(options.widen_factor), num_classes, options)


def _wide(depth: int, num_classes: int, options: WideResNetOptions) -> ResNet:
    stem = 64 if options.legacy_stem else None
    widths = [w * options.k for w in BASE_WIDTHS]
    return _build(WideBottleneck, BOTTLENECK_LAYERS[depth], widths, num_classes, options, stem_planes=stem)


def _resnext(depth: int, num_classes: int, options: ResNeXtOptions) -> ResNet:
    stem = 64 if options.legacy_stem else None
    widths = [2 * w for w in BASE_WIDTHS]
    return _build(
        ResNeXtBottleneck,
        BOTTLENECK_LAYERS[depth],
        widths,
        num_classes,
        options,
        stem_planes=stem,
        block_kwargs={"cardinality": options.cardinality},
    )


_R2P1D = Conv2Plus1D()
_PER_FRAME = ConvPerFrame()


@register_model(ResNetOptions)
def resnet10(num_classes: int, options: ResNetOptions) -> ResNet:
    """3D ResNet-10."""
    return _resnet(10, num_classes, options)


@register_model(ResNetOptions)
def resnet18(num_classes: int, options: ResNetOptions) -> ResNet:
    """3D ResNet-18."""
    return _resnet(18, num_classes, options)


@register_model(ResNetOptions)
def resnet34(num_classes: int, options: ResNetOptions) -> ResNet:
    """3D ResNet-34."""
    return _resnet(34, num_classes, options)


@register_model(ResNetOptions)
def resnet50(num_classes: int, options: ResNetOptions) -> ResNet:
    """3D ResNet-50."""
    return _resnet(50, num_classes, options)


@register_model(ResNetOptions)
def resnet101(num_classes: int, options: ResNetOptions) -> ResNet:
    """3D ResNet-101."""
    return _resnet(101, num_classes, options)


@register_model(ResNetOptions)
def resnet152(num_classes: int, options: ResNetOptions) -> ResNet:
    """3D ResNet-152."""
    return _resnet(152, num_classes, options)


@register_model(ResNetOptions)
def resnet200(num_classes: int, options: ResNetOptions) -> ResNet:
    """3D ResNet-200."""
    return _resnet(200, num_classes, options)


@register_model(ResNetOptions)
def resnet2p1d10(num_classes: int, options: ResNetOptions) -> ResNet:
    """R(2+1)D-10."""
    return _resnet(10, num_classes, options, _R2P1D)


@register_model(ResNetOptions)
def resnet2p1d18(num_classes: int, options: ResNetOptions) -> ResNet:
    """R(2+1)D-18."""
    return _resnet(18, num_classes, options, _R2P1D)


@register_model(ResNetOptions)
def resnet2p1d34(num_classes: int, options: ResNetOptions) -> ResNet:
    """R(2+1)D-34."""
    return _resnet(34, num_classes, options, _R2P1D)


@register_model(ResNetOptions)
def resnet2p1d50(num_classes: int, options: ResNetOptions) -> ResNet:
    """R(2+1)D-50."""
    return _resnet(50, num_classes, options, _R2P1D)


@register_model(ResNetOptions)
def resnet2p1d101(num_classes: int, options: ResNetOptions) -> ResNet:
    """R(2+1)D-101."""
    return _resnet(101, num_classes, options, _R2P1D)


@register_model(ResNetOptions)
def resnet2p1d152(num_classes: int, options: ResNetOptions) -> ResNet:
    """R(2+1)D-152."""
    return _resnet(152, num_classes, options, _R2P1D)


@register_model(ResNetOptions)
def resnet2p1d200(num_classes: int, options: ResNetOptions) -> ResNet:
    """R(2+1)D-200."""
    return _resnet(200, num_classes, options, _R2P1D)


@register_model(ResNetOptions)
def preact_resnet10(num_classes: int, options: ResNetOptions) -> ResNet:
    """Pre-activation 3D ResNet-10."""
    return _preact(10, num_classes, options)


@register_model(ResNetOptions)
def preact_resnet18(num_classes: int, options: ResNetOptions) -> ResNet:
    """Pre-activation 3D ResNet-18."""
    return _preact(18, num_classes, options)


@register_model(ResNetOptions)
def preact_resnet34(num_classes: int, options: ResNetOptions) -> ResNet:
    """Pre-activation 3D ResNet-34."""
    return _preact(34, num_classes, options)


@register_model(ResNetOptions)
def preact_resnet50(num_classes: int, options: ResNetOptions) -> ResNet:
    """Pre-activation 3D ResNet-50."""
    return _preact(50, num_classes, options)


@register_model(ResNetOptions)
def preact_resnet101(num_classes: int, options: ResNetOptions) -> ResNet:
    """Pre-activation 3D ResNet-101."""
    return _preact(101, num_classes, options)


@register_model(ResNetOptions)
def preact_resnet152(num_classes: int, options: ResNetOptions) -> ResNet:
    """Pre-activation 3D ResNet-152."""
    return _preact(152, num_classes, options)


@register_model(ResNetOptions)
def preact_resnet200(num_classes: int, options: ResNetOptions) -> ResNet:
    """Pre-activation 3D ResNet-200."""
    return _preact(200, num_classes, options)


@register_model(WideResNetOptions)
def wide_resnet50(num_classes: int, options: WideResNetOptions) -> ResNet:
    """Wide 3D ResNet-50 (k = 2 by default)."""
    return _wide(50, num_classes, options)


@register_model(WideResNetOptions)
def wide_resnet101(num_classes: int, options: WideResNetOptions) -> ResNet:
    """Wide 3D ResNet-101."""
    return _wide(101, num_classes, options)


@register_model(WideResNetOptions)
def wide_resnet152(num_classes: int, options: WideResNetOptions) -> ResNet:
    """Wide 3D ResNet-152."""
    return _wide(152, num_classes, options)


@register_model(WideResNetOptions)
def wide_resnet200(num_classes: int, options: WideResNetOptions) -> ResNet:
    """Wide 3D ResNet-200."""
    return _wide(200, num_classes, options)


@register_model(ResNeXtOptions)
def resnext50(num_classes: int, options: ResNeXtOptions) -> ResNet:
    """3D ResNeXt-50 (cardinality 32 by default)."""
    return _resnext(50, num_classes, options)


@register_model(ResNeXtOptions)
def resnext101(num_classes: int, options: ResNeXtOptions) -> ResNet:
    """3D ResNeXt-101."""
    return _resnext(101, num_classes, options)


@register_model(ResNeXtOptions)
def resnext152(num_classes: int, options: ResNeXtOptions) -> ResNet:
    """3D ResNeXt-152."""
    return _resnext(152, num_classes, options)


@register_model(ResNeXtOptions)
def resnext200(num_classes: int, options: ResNeXtOptions) -> ResNet:
    """3D ResNeXt-200."""
    return _resnext(200, num_classes, options)


@register_model(FrameResNetOptions)
def resnet10_2d(num_classes: int, options: FrameResNetOptions) -> ResNet:
    """2D ResNet-10 applied to every frame (1×k×k kernels, no temporal striding), features averaged over time."""
    return _resnet(10, num_classes, options, _PER_FRAME)


@register_model(FrameResNetOptions)
def resnet18_2d(num_classes: int, options: FrameResNetOptions) -> ResNet:
    """2D ResNet-18 applied to every frame, features averaged over time: blind to temporal order."""
    return _resnet(18, num_classes, options, _PER_FRAME)


@register_model(FrameResNetOptions)
def resnet34_2d(num_classes: int, options: FrameResNetOptions) -> ResNet:
    """2D ResNet-34 applied to every frame, features averaged over time."""
    return _resnet(34, num_classes, options, _PER_FRAME)
