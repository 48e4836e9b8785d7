"""Low-channel convolutions (the RGB or flow stem) rewritten exactly: one kernel axis's taps folded into channels.

A 3-channel 7x7x7 stem leaves oneDNN's bf16 kernels mostly idle (AMX tiles want 32 input channels per tap). The
same convolution is a 21-channel 1x7x7 one over an input whose channels are the 7 time-shifted copies of the clip
(tap-major: channel k * C + c is channel c shifted by tap k), with the weight's time taps moved next to its input
channels. The result is equal up to summation order, and the state dict is untouched: inference folds a copy of
the weight (`packed.PackedConv`), training folds the weight in its forward (`fold_taps`), so the gradient reaches
the stem's own weight. Training picks by CPU kind, not by timing, so that a run and its resume run the same
arithmetic (`fast_path.training_fold_axis`).
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F

MAX_FOLD_CHANNELS = 4  # RGB, RGB-D, 2-channel flow; wider inputs already fill the kernels


def fold_axis(conv: torch.nn.Module) -> int | None:
    """The axis (2 time, 4 width) whose taps `conv` can fold into its input channels, or None."""
    if (not isinstance(conv, torch.nn.Conv3d) or conv.in_channels > MAX_FOLD_CHANNELS or conv.groups != 1
            or isinstance(conv.padding, str) or conv.padding_mode != "zeros" or conv.dilation != (1, 1, 1)):
        return None
    if conv.kernel_size[0] > 1:
        return 2
    return 4 if conv.kernel_size[2] > 1 else None


def fold_input(x: torch.Tensor, axis: int, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """`x` (N, C, T, H, W) padded along `axis`, its `kernel` taps there stacked tap-major as channels.

    The taps are stacked in the plain layout, where each is a block copy, and the result is laid out like `x`
    once: stacking channels_last_3d taps directly interleaves 3-channel runs, 2-3x slower (AMX Xeon, R3D stem).
    """
    layout = torch.channels_last_3d if x.is_contiguous(memory_format=torch.channels_last_3d) else None
    x = x.contiguous()
    pad = [0, 0] * (4 - axis) + [padding, padding]
    x = F.pad(x, pad) if padding else x
    out_len = (x.shape[axis] - kernel) // stride + 1
    taps = []
    for tap in range(kernel):
        index = [slice(None)] * x.dim()
        index[axis] = slice(tap, tap + stride * (out_len - 1) + 1, stride)
        taps.append(x[tuple(index)])
    folded = torch.cat(taps, dim=1)
    return folded if layout is None else folded.contiguous(memory_format=layout)


def fold_weight(weight: torch.Tensor, axis: int) -> torch.Tensor:
    """The (O, C, kT, kH, kW) weight as (O, k * C, ...) with `axis`'s taps next to the channels (size 1 there)."""
    out_channels, in_channels = weight.shape[:2]
    kernel = weight.shape[axis]
    moved = weight.movedim(axis, 1)  # (O, k, C, two other kernel axes)
    shape = list(weight.shape)
    shape[1], shape[axis] = kernel * in_channels, 1
    return moved.reshape(out_channels, kernel * in_channels, *moved.shape[3:]).reshape(shape)


def folded_geometry(conv: torch.nn.Conv3d, axis: int) -> tuple[list[int], list[int]]:
    """Padding and stride of the folded convolution: `axis` is consumed by the fold."""
    padding, stride = list(conv.padding), list(conv.stride)
    padding[axis - 2], stride[axis - 2] = 0, 1
    return padding, stride


AXIS_NAMES = {2: "time", 4: "width"}


def fold_form_name(axis: int) -> str:
    """How `chosen_forms` names the folded form."""
    return f"taps folded along {AXIS_NAMES[axis]}"


def fold_taps(model: torch.nn.Module, axis: int) -> list[str]:
    """Make the convolutions of `model` that fold along `axis` run folded (same parameters); their names."""
    names = []
    for name, module in model.named_modules():
        if fold_axis(module) == axis:
            module.forward = types.MethodType(_folded_forward, module)
            names.append(name)
    return names


def _folded_forward(conv: torch.nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    axis = fold_axis(conv)
    if torch.is_autocast_enabled(x.device.type):  # fold the copy autocast would cast anyway: half the bytes in bf16
        x = x.to(torch.get_autocast_dtype(x.device.type))
    taps = (conv.kernel_size[axis - 2], conv.stride[axis - 2], conv.padding[axis - 2])
    padding, stride = folded_geometry(conv, axis)
    return F.conv3d(fold_input(x, axis, *taps), fold_weight(conv.weight, axis), conv.bias, stride, padding, 1, 1)
