"""Training convolutions with few output positions run as matrix products over their gathered patches (im2col).

Deep in a 16-frame R3D the activations are small and the weights large: R3D-18's layer4 at batch 8 has 128
output positions against a 512 x 4608 weight, and there oneDNN's bf16 training convolution (forward, input and
weight gradient) ran at ~250 GFLOP/s on the AMX Xeon, against ~3000 in layer1. The same sums are one matrix
product of the patches (N*D*H*W rows, taps x channels columns; gathered once, kept for the weight gradient) with
the weight as a matrix, which is what its channels_last_3d layout already holds, so the weight gradient comes back
in the parameter's layout. Where the positions are at most the output channels, the input gradient is a product
too, scattered back tap by tap (col2im, summed in fp32); above that oneDNN's own input gradient is faster. Above 8
positions per output channel the gathered patches cost more than they save. Training picks by CPU kind and
shape, not by timing, so that a run and its resume run the same arithmetic.
"""

from __future__ import annotations

import types
from typing import Sequence

import torch
import torch.nn.functional as F

# CPU kinds where this measured faster in a bf16 training step (AMX Xeon: R3D-18 layer4 convolution forward +
# backward 7.3 -> 2.8 ms, layer3 9.0 -> 6.7 ms at batch 8; layer2, 49 positions per channel: 7.4 -> 23 ms).
GEMM_TRAINING_KINDS = ("amx",)
GEMM_MAX_POSITIONS = 8  # output positions per output channel up to which forward and weight gradient are products
COL2IM_MAX_POSITIONS = 1  # ... and up to which the input gradient is one too

FORM_GEMM, FORM_GEMM_ONEDNN_INPUT_GRAD = "matrix products", "matrix products, oneDNN input gradient"


def gemm_training_applies(device: torch.device, precision: str) -> bool:
    """True where training runs small-output convolutions as matrix products: bf16 on the kinds that measured it."""
    from resnet3d.inference.machine import cpu_kind

    return device.type == "cpu" and precision == "bf16" and cpu_kind() in GEMM_TRAINING_KINDS


def gemm_form(positions: int, out_channels: int) -> str | None:
    """The form a convolution with `positions` output positions (N*D*H*W) and `out_channels` runs in, or None."""
    if positions > GEMM_MAX_POSITIONS * out_channels:
        return None
    return FORM_GEMM if positions <= COL2IM_MAX_POSITIONS * out_channels else FORM_GEMM_ONEDNN_INPUT_GRAD


def gemm_small_outputs(model: torch.nn.Module) -> None:
    """Let the plain, unbiased Conv3d layers of `model` run as matrix products where their outputs are small."""
    for module in model.modules():
        if (isinstance(module, torch.nn.Conv3d) and module.bias is None and module.groups == 1
                and module.dilation == (1, 1, 1) and module.padding_mode == "zeros"
                and not isinstance(module.padding, str)):
            module.gemm_small_outputs = True
            if "forward" not in vars(module):  # guarded shallow convolutions already call conv3d_for_training
                module.forward = types.MethodType(_gemm_or_eager_forward, module)


def _gemm_or_eager_forward(conv: torch.nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    return conv3d_for_training(conv, x, conv.weight, conv.padding)


def conv3d_for_training(conv: torch.nn.Conv3d, x: torch.Tensor, weight: torch.Tensor,
                        padding: Sequence[int]) -> torch.Tensor:
    """`conv` applied to `x` with `weight` and `padding` (possibly trimmed in time), as products where marked and small."""
    if getattr(conv, "gemm_small_outputs", False):
        out = [(x.shape[2 + i] + 2 * padding[i] - weight.shape[2 + i]) // conv.stride[i] + 1 for i in range(3)]
        form = gemm_form(x.shape[0] * out[0] * out[1] * out[2], weight.shape[0])
        if form is not None:
            if torch.is_autocast_enabled(x.device.type):  # a custom Function is not autocast: cast as conv3d would
                dtype = torch.get_autocast_dtype(x.device.type)
                x, weight = x.to(dtype), weight.to(dtype)
            return _GemmConv3d.apply(x, weight, tuple(conv.stride), tuple(padding), form == FORM_GEMM)
    return F.conv3d(x, weight, conv.bias, conv.stride, padding, conv.dilation, conv.groups)


def patches(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int]
            ) -> tuple[torch.Tensor, list[int]]:
    """The (N*D'*H'*W', kD*kH*kW*C) patch matrix of `x` (N, C, D, H, W), taps then channels; and (D', H', W')."""
    rows = x.permute(0, 2, 3, 4, 1)  # N, D, H, W, C: a view of a channels_last_3d tensor
    if any(padding):
        rows = F.pad(rows, (0, 0, padding[2], padding[2], padding[1], padding[1], padding[0], padding[0]))
    out = [(rows.shape[1 + i] - kernel[i]) // stride[i] + 1 for i in range(3)]
    s = rows.stride()
    taps = rows.as_strided((x.shape[0], *out, *kernel, x.shape[1]),
                           (s[0], s[1] * stride[0], s[2] * stride[1], s[3] * stride[2], s[1], s[2], s[3], s[4]))
    return taps.reshape(x.shape[0] * out[0] * out[1] * out[2], -1), out


def _as_matrix(weight: torch.Tensor) -> torch.Tensor:
    """(O, C, kD, kH, kW) as (O, kD*kH*kW*C): a view of a channels_last_3d weight."""
    return weight.permute(0, 2, 3, 4, 1).reshape(weight.shape[0], -1)


def _col2im(grad_patches: torch.Tensor, x_shape: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
            padding: Sequence[int], out: Sequence[int]) -> torch.Tensor:
    """The input gradient from the patches' gradient: each tap's slice added in place (bf16 in fp32), padding cut off."""
    n, c = x_shape[:2]
    per_tap = grad_patches.view(n, *out, *kernel, c)
    padded = [x_shape[2 + i] + 2 * padding[i] for i in range(3)]
    total = torch.zeros(n, *padded, c, dtype=torch.promote_types(grad_patches.dtype, torch.float32),
                        device=grad_patches.device)
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            for e in range(kernel[2]):
                total[:, a:a + stride[0] * (out[0] - 1) + 1:stride[0], b:b + stride[1] * (out[1] - 1) + 1:stride[1],
                      e:e + stride[2] * (out[2] - 1) + 1:stride[2]] += per_tap[:, :, :, :, a, b, e]
    inner = total[:, padding[0]:padding[0] + x_shape[2], padding[1]:padding[1] + x_shape[3],
                  padding[2]:padding[2] + x_shape[4]]
    return inner.to(grad_patches.dtype).permute(0, 4, 1, 2, 3)


class _GemmConv3d(torch.autograd.Function):
    """An unbiased, ungrouped Conv3d as patch-matrix products; outputs and gradients channels_last_3d."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, ...], padding: tuple[int, ...],
                col2im: bool) -> torch.Tensor:
        taps, out = patches(x, weight.shape[2:], stride, padding)
        y = taps @ _as_matrix(weight).t()
        ctx.geometry = (tuple(x.shape), stride, padding, out, col2im)
        ctx.save_for_backward(taps, weight, *(() if col2im else (x,)))
        return y.view(x.shape[0], *out, weight.shape[0]).permute(0, 4, 1, 2, 3)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None, None]:
        taps, weight, *x = ctx.saved_tensors
        x_shape, stride, padding, out, col2im = ctx.geometry
        kernel, rows = weight.shape[2:], grad.permute(0, 2, 3, 4, 1).reshape(-1, weight.shape[0])
        grad_x = grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = (rows.t() @ taps).view(weight.shape[0], *kernel, weight.shape[1]).permute(0, 4, 1, 2, 3)
        if ctx.needs_input_grad[0] and col2im:
            grad_x = _col2im(rows @ _as_matrix(weight), x_shape, kernel, stride, padding, out)
        elif ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(grad, x[0], weight, None, stride, padding, (1, 1, 1), False,
                                                         (0, 0, 0), 1, (True, False, False))[0]
        return grad_x, grad_w, None, None, None
