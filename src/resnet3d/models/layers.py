"""Shared parts of every model: conv builders, the zero-padding shortcut, weight init and the classifier base.

A conv builder registers a block's "conv + BN" step on the block under the original's names (`conv1`/`bn1`, or
`conv1_s`/`bn1_s`/`conv1_t`/`bn1_t` when factorised) and returns the call order, so one block class serves 3D,
(2+1)D and per-frame 2D networks while the state-dict keys stay those of the original.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

CallOrder = tuple[str, ...]


def run(owner: nn.Module, order: Sequence[str], x: torch.Tensor) -> torch.Tensor:
    """Apply `owner`'s submodules named in `order` one after another."""
    for name in order:
        x = getattr(owner, name)(x)
    return x


def conv1x1x1(in_planes: int, out_planes: int, stride: tuple[int, int, int] | int = 1) -> nn.Conv3d:
    """Pointwise convolution without bias."""
    return nn.Conv3d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class Conv3D:
    """Full t×k×k convolutions that stride time like space (3D ResNet)."""

    temporal = True

    def stride(self, s: int) -> tuple[int, int, int]:
        """The 3-D stride of a block or shortcut that downsamples by `s`."""
        return (s if self.temporal else 1, s, s)

    def conv(self, in_planes: int, out_planes: int, stride: int = 1, groups: int = 1) -> nn.Conv3d:
        """One 3×3×3 convolution (1×3×3 when not temporal), padding keeping the size."""
        kt = 3 if self.temporal else 1
        return nn.Conv3d(in_planes, out_planes, (kt, 3, 3), self.stride(stride), (kt // 2, 1, 1), groups=groups, bias=False)

    def add_conv(
        self, owner: nn.Module, index: str, in_planes: int, out_planes: int, stride: int = 1, groups: int = 1
    ) -> CallOrder:
        """Register `conv{index}` on `owner` (pre-activation blocks put their BN before it)."""
        owner.add_module(f"conv{index}", self.conv(in_planes, out_planes, stride, groups))
        return (f"conv{index}",)

    def add_conv_bn(
        self, owner: nn.Module, index: str, in_planes: int, out_planes: int, stride: int = 1, groups: int = 1
    ) -> CallOrder:
        """Register `conv{index}` and `bn{index}` on `owner`."""
        order = self.add_conv(owner, index, in_planes, out_planes, stride, groups)
        owner.add_module(order[-1].replace("conv", "bn", 1), nn.BatchNorm3d(out_planes))
        return (*order, order[-1].replace("conv", "bn", 1))

    def add_stem(self, owner: nn.Module, in_channels: int, planes: int, t_size: int, t_stride: int) -> CallOrder:
        """Register the stem `conv1` (t×7×7, spatial stride 2) and `bn1`; the call order ends with ReLU."""
        if not self.temporal:
            t_size, t_stride = 1, 1
        owner.add_module(
            "conv1",
            nn.Conv3d(in_channels, planes, (t_size, 7, 7), (t_stride, 2, 2), (t_size // 2, 3, 3), bias=False),
        )
        owner.add_module("bn1", nn.BatchNorm3d(planes))
        return ("conv1", "bn1", "relu")

    def max_pool(self) -> nn.MaxPool3d:
        """The max-pool after the stem: 3×3×3 stride 2 (1×3×3, spatial stride only, when not temporal)."""
        return nn.MaxPool3d((3 if self.temporal else 1, 3, 3), self.stride(2), (1 if self.temporal else 0, 1, 1))


class ConvPerFrame(Conv3D):
    """1×k×k convolutions and no temporal striding anywhere: a 2D CNN applied to each frame."""

    temporal = False


def mid_channels(in_planes: int, out_planes: int, kt: int, k: int) -> int:
    """The original's (2+1)D width: as many mid channels as keep the parameter count of the t×k×k conv."""
    return (in_planes * out_planes * kt * k * k) // (in_planes * k * k + kt * out_planes)


class Conv2Plus1D(Conv3D):
    """Each t×k×k convolution factorised into 1×k×k → BN → ReLU → t×1×1 (R(2+1)D)."""

    def add_conv(
        self, owner: nn.Module, index: str, in_planes: int, out_planes: int, stride: int = 1, groups: int = 1
    ) -> CallOrder:
        """Register `conv{index}_s`, `bn{index}_s`, `conv{index}_t` on `owner` (add_conv_bn adds `bn{index}_t`)."""
        if groups != 1:
            raise ValueError("grouped convolutions are not supported by the (2+1)D builder")
        mid = mid_channels(in_planes, out_planes, 3, 3)
        return self._add_factorised_conv(owner, index, in_planes, mid, out_planes, (3, stride), (3, stride))

    def add_stem(self, owner: nn.Module, in_channels: int, planes: int, t_size: int, t_stride: int) -> CallOrder:
        """Register the factorised stem `conv1_s` (1×7×7) … `bn1_t`; the call order ends with ReLU."""
        # The original sizes the stem for 3 input channels whatever n_input_channels is; keep that for parity.
        mid = mid_channels(3, planes, t_size, 7)
        order = self._add_factorised_conv(owner, "1", in_channels, mid, planes, (7, 2), (t_size, t_stride))
        owner.add_module("bn1_t", nn.BatchNorm3d(planes))
        return (*order, "bn1_t", "relu")

    @staticmethod
    def _add_factorised_conv(
        owner: nn.Module,
        index: str,
        in_planes: int,
        mid: int,
        out_planes: int,
        spatial: tuple[int, int],
        temporal: tuple[int, int],
    ) -> CallOrder:
        (k, s), (kt, st) = spatial, temporal
        owner.add_module(f"conv{index}_s", nn.Conv3d(in_planes, mid, (1, k, k), (1, s, s), (0, k // 2, k // 2), bias=False))
        owner.add_module(f"bn{index}_s", nn.BatchNorm3d(mid))
        owner.add_module(f"conv{index}_t", nn.Conv3d(mid, out_planes, (kt, 1, 1), (st, 1, 1), (kt // 2, 0, 0), bias=False))
        return (f"conv{index}_s", f"bn{index}_s", "relu", f"conv{index}_t")


class ZeroPadShortcut(nn.Module):
    """Shortcut A: subsample by `stride` and append zero channels up to `out_planes` (no parameters).

    Unlike the original it keeps the gradient path and makes its zeros on the input's device and dtype.
    """

    def __init__(self, out_planes: int, stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.out_planes = out_planes
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        st, sh, sw = self.stride
        if self.stride != (1, 1, 1):
            x = x[:, :, ::st, ::sh, ::sw]
        return F.pad(x, (0, 0, 0, 0, 0, 0, 0, self.out_planes - x.shape[1]))

    def extra_repr(self) -> str:
        return f"out_planes={self.out_planes}, stride={self.stride}"


def init_weights(model: nn.Module) -> None:
    """The original's init: Kaiming-normal (fan_out) convolutions, BatchNorm weight 1 and bias 0."""
    for m in model.modules():
        if getattr(m, "weight", None) is not None and m.weight.is_meta:
            continue  # shapes only (cost counting): no values to set, and meta random init is slow
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class VideoClassifier(nn.Module):
    """Base of every model: logits = head(forward_features(x)); modules listed in `frozen_modules` stay in eval."""

    head_name = "fc"

    def __init__(self) -> None:
        super().__init__()
        self.arch_name = ""
        self.arch_options: dict = {}
        self.num_classes = 0
        self.num_features = 0
        self.frozen_modules: tuple[str, ...] = ()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled features (B, num_features) of a clip batch (B, C, T, H, W)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes)."""
        return getattr(self, self.head_name)(self.forward_features(x))

    def train(self, mode: bool = True) -> "VideoClassifier":
        """Like `nn.Module.train`, but frozen modules (see `finetune.freeze_until`) stay in eval mode."""
        super().train(mode)
        for name in self.frozen_modules:
            self.get_submodule(name).eval()
        return self
