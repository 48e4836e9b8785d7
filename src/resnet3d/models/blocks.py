"""Residual blocks. Each takes (in_planes, planes, stride, downsample, conv builder) and names its parts as the
original does, so that state-dict keys match: conv1/bn1, conv2/bn2[, conv3/bn3]."""

from __future__ import annotations

import torch
from torch import nn

from resnet3d.models.layers import Conv3D, conv1x1x1, run

CONV3D = Conv3D()


class BasicBlock(nn.Module):
    """Two 3×3×3 conv-BN steps (each factorised by a (2+1)D builder) plus the shortcut."""

    expansion = 1

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, conv: Conv3D = CONV3D
    ) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.order1 = conv.add_conv_bn(self, "1", in_planes, planes, stride)
        self.order2 = conv.add_conv_bn(self, "2", planes, planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = run(self, self.order2, self.relu(run(self, self.order1, x)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1×1×1 reduce → 3×3×3 (strided, optionally grouped) → 1×1×1 expand, plus the shortcut."""

    expansion = 4

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        conv: Conv3D = CONV3D,
        width: int | None = None,
        groups: int = 1,
    ) -> None:
        super().__init__()
        width = width or planes
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv1x1x1(in_planes, width)
        self.bn1 = nn.BatchNorm3d(width)
        self.order2 = conv.add_conv_bn(self, "2", width, width, stride, groups)
        self.conv3 = conv1x1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(run(self, self.order2, out))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class WideBottleneck(Bottleneck):
    """Wide ResNet bottleneck: expansion 2 (the widths themselves are scaled by k in the network)."""

    expansion = 2


class ResNeXtBottleneck(Bottleneck):
    """ResNeXt bottleneck: expansion 2, grouped 3×3×3 conv with `cardinality` groups of width planes / 32."""

    expansion = 2

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        conv: Conv3D = CONV3D,
        cardinality: int = 32,
    ) -> None:
        super().__init__(in_planes, planes, stride, downsample, conv, width=cardinality * planes // 32, groups=cardinality)


class PreActBasicBlock(nn.Module):
    """Pre-activation basic block: (BN → ReLU → conv) twice, the convs from the builder (3D or (2+1)D); no
    activation after the sum."""

    expansion = 1

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, conv: Conv3D = CONV3D
    ) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.bn1 = nn.BatchNorm3d(in_planes)
        self.order1 = conv.add_conv(self, "1", in_planes, planes, stride)
        self.bn2 = nn.BatchNorm3d(planes)
        self.order2 = conv.add_conv(self, "2", planes, planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = run(self, self.order1, self.relu(self.bn1(x)))
        out = run(self, self.order2, self.relu(self.bn2(out)))
        return out + (x if self.downsample is None else self.downsample(x))


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck: (BN → ReLU → conv) for the 1×1×1, 3×3×3 and 1×1×1 convs."""

    expansion = 4

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, conv: Conv3D = CONV3D
    ) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.bn1 = nn.BatchNorm3d(in_planes)
        self.conv1 = conv1x1x1(in_planes, planes)
        self.bn2 = nn.BatchNorm3d(planes)
        self.order2 = conv.add_conv(self, "2", planes, planes, stride)
        self.bn3 = nn.BatchNorm3d(planes)
        self.conv3 = conv1x1x1(planes, planes * self.expansion)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu(self.bn1(x)))
        out = run(self, self.order2, self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + (x if self.downsample is None else self.downsample(x))
