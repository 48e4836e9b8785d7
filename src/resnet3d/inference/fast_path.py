"""Numeric precision and memory layout: the fast path (bf16 autocast + channels_last_3d) in one place."""

from __future__ import annotations

import contextlib
import copy
import types
from typing import ContextManager, Sequence

import torch

from resnet3d.inference.gemm_conv import conv3d_for_training, gemm_small_outputs, gemm_training_applies
from resnet3d.inference.machine import choose_precision


def default_device(name: str | None = None) -> torch.device:
    """`name` (cpu, cuda, cuda:1 ...), or cuda when torch sees a GPU, else cpu."""
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """Turn 'auto' into a concrete precision for `device` (machine.choose_precision says why); fp16 on CPU fails."""
    return choose_precision(precision, device).precision


def autocast(precision: str, device: torch.device) -> ContextManager:
    """Autocast context for a resolved precision ('fp32' gives a no-op context)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_channels_last(x: torch.Tensor | torch.nn.Module) -> torch.Tensor | torch.nn.Module:
    """channels_last_3d layout for a 5-D tensor or a model's conv weights (other tensors pass through)."""
    if isinstance(x, torch.nn.Module):
        return x.to(memory_format=torch.channels_last_3d)
    return x.contiguous(memory_format=torch.channels_last_3d) if x.dim() == 5 else x


def has_5d_weights(model: torch.nn.Module) -> bool:
    """True when the model has 3D convolutions (channels_last_3d applies)."""
    return any(p.dim() == 5 for p in model.parameters())


def tune_backend(device: torch.device) -> None:
    """Per-device settings that pay because our shapes repeat: cuDNN autotuning on CUDA, malloc reuse on CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        keep_freed_memory()


def keep_freed_memory() -> bool:
    """Make glibc reuse freed blocks of any size instead of unmapping them; False where libc is not glibc.

    By default glibc serves every block over 32 MB with a fresh mmap and unmaps it on free, so the activation
    buffers of each step (hundreds of MB for a 16x112x112 batch) are page-faulted in anew, zeroed by the kernel,
    every time: ~20 % of an R3D-18 training step on the 2-core CPU. Served from the heap and not trimmed, they
    are reused; the peak memory stays the same (its pages just stay mapped).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(mallopt(m_trim_threshold, (1 << 31) - 1))


def prepare_for_training(model: torch.nn.Module, device: torch.device | str, *, channels_last: bool = True,
                         precision: str = "auto") -> torch.nn.Module:
    """Move `model` to `device` for training: cuDNN autotuning, channels_last_3d weights, the CPU Conv3d guard,
    max-pooling kept in bf16 under CPU autocast, small-output convolutions as matrix products and the stem's taps
    folded where those measured faster."""
    device = torch.device(device)
    tune_backend(device)
    model = model.to(device)
    if channels_last:
        model = to_channels_last(model)
    if device.type == "cpu":
        guard_shallow_conv3d(model)
        pool_in_input_dtype(model)
        if channels_last and gemm_training_applies(device, resolve_precision(precision, device)):
            gemm_small_outputs(model)
        axis = training_fold_axis(device, resolve_precision(precision, device))
        if axis is not None:
            from resnet3d.inference.tap_fold import fold_taps

            fold_taps(model, axis)
    return model


# CPU kinds where a bf16 training step runs faster with the stem's time taps folded into channels (tap_fold.py).
# AMX Xeon: the R3D stem's forward + weight gradient 101 against 213 ms at batch 8 (an R3D-18 step 1.24-1.29x
# faster); folding the width taps of 1x7x7 stems (R(2+1)D, 2D twins) measured 0.89-1.07x, fp32 0.97-1.01x. Not
# on the AMD Zen 5 (AVX-512 BF16: an R3D-18 step 1.22 against 1.14 s) nor on AVX2 (fp32: 30-45 against 32-38 ms).
FOLD_STEM_TRAINING_KINDS = ("amx",)


def training_fold_axis(device: torch.device, precision: str) -> int | None:
    """The axis (2, time) whose taps training folds in low-channel stems, or None: bf16 on the kinds that measured it."""
    from resnet3d.inference.machine import cpu_kind

    folds = device.type == "cpu" and precision == "bf16" and cpu_kind() in FOLD_STEM_TRAINING_KINDS
    return 2 if folds else None


def pool_in_input_dtype(model: torch.nn.Module) -> torch.nn.Module:
    """Max-pool in the input's dtype under CPU autocast, which otherwise runs `max_pool3d` in fp32.

    A maximum of bf16 values is exact in bf16, so the fp32 detour changes no value and only costs: behind an R3D
    stem (batch 8 at 112 px) it casts a 51 MB activation to 103 MB of fp32, keeps that for the backward pass,
    zero-fills and scatters the gradient in fp32 and casts it back; and it makes layer1's residual additions fp32.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.MaxPool3d):
            module.forward = types.MethodType(_max_pool_without_autocast, module)
    return model


def _max_pool_without_autocast(pool: torch.nn.MaxPool3d, x: torch.Tensor) -> torch.Tensor:
    with torch.autocast(x.device.type, enabled=False):
        return torch.nn.MaxPool3d.forward(pool, x)


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class InferenceNet(torch.nn.Module):
    """An eval-only copy of a network: BN folded into the convolutions, body in the compute dtype, head in fp32.

    Casting the weights once (instead of autocast re-casting them on every call) and folding BN leave only the
    convolutions: on the 2-core bf16 CPU they take 95% of an R3D-18 forward. With `pack` (CPU) each convolution
    runs eager or prepacked with its ReLU/residual add fused, whichever times faster (`packed.py`). The head stays
    fp32 because bf16 logits round to ~3 digits and tie near-equal classes in top-1. Without a head
    (`features=True`) it returns the pooled features.
    """

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype = torch.float32, *, features: bool = False,
                 pack: bool = False):
        super().__init__()
        model = copy.deepcopy(model).eval()
        has_head = hasattr(model, "forward_features") and hasattr(model, "head_name")
        self.head = None if features or not has_head else getattr(model, model.head_name).float()
        self.body = fold_batchnorm(_ForwardFeatures(model) if has_head else model).to(dtype)
        self.dtype = dtype
        self.channels_last = has_5d_weights(self.body)
        if self.channels_last:
            self.body = to_channels_last(self.body)
        # shallow inputs run their live taps only, as in training: validation (a copy of the guarded training
        # model) and `resnet3d eval` of its checkpoint then compute alike, bit for bit in fp32
        guard_shallow_conv3d(self.body)
        if pack:
            from resnet3d.inference.packed import pack_convolutions

            self.body = pack_convolutions(self.body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layout = torch.channels_last_3d if self.channels_last and x.dim() == 5 else torch.preserve_format
        # the dtypes are set already: a caller's autocast would only move some ops (max-pool) back to fp32
        with torch.autocast(x.device.type, enabled=False):
            out = self.body(x.to(self.dtype, memory_format=layout)).float()
            return out if self.head is None else self.head(out)


_CONVS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)


def fold_batchnorm(model: torch.nn.Module) -> torch.fx.GraphModule:
    """Trace an eval-mode `model` and fold each BatchNorm whose input is a convolution's only output into it."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    traced = torch.fx.symbolic_trace(model)
    modules = dict(traced.named_modules())
    for node in list(traced.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], _NORMS):
            continue
        conv = node.args[0]
        if (not isinstance(conv, torch.fx.Node) or conv.op != "call_module" or len(conv.users) > 1
                or not isinstance(modules[conv.target], _CONVS) or not modules[node.target].track_running_stats):
            continue
        parent, _, name = conv.target.rpartition(".")
        setattr(traced.get_submodule(parent), name, fuse_conv_bn_eval(modules[conv.target], modules[node.target]))
        node.replace_all_uses_with(conv)
        traced.graph.erase_node(node)
    traced.delete_all_unused_submodules()
    traced.recompile()
    return traced


class _ForwardFeatures(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)


def prepare_for_inference(model: torch.nn.Module, device: torch.device | str, *, precision: str = "auto",
                          features: bool = False, compile: bool = False) -> torch.nn.Module:
    """An `InferenceNet` of `model` on `device` in the resolved precision, optionally torch.compile'd.

    `model` itself is left as it was. Compiling turns on inductor freezing (weights prepacked, ReLUs fused into
    the convolutions) at a one-off cost of seconds per input shape.
    """
    device = torch.device(device)
    tune_backend(device)
    resolved = resolve_precision(precision, device)
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    pack = not compile and on_cpu and times_layer_forms(device, resolved)
    net = InferenceNet(model, DTYPES[resolved], features=features, pack=pack)
    net = net.to(device).eval()
    if compile:
        from resnet3d.inference.compile_policy import compile_frozen

        net = compile_frozen(net)
    return net


# CPU kinds where the prepacked convolutions measured no faster than eager ones, so that timing the forms of each
# layer at the first batch (~2 s for R3D-18 at batch 8) buys nothing: the AMD Zen 5 (R3D-18 0.99x, R3D-50 1.00x).
PACKING_NEUTRAL_KINDS = ("avx512_bf16",)


def times_layer_forms(device: torch.device, precision: str) -> bool:
    """True where CPU inference in `precision` times eager against prepacked convolutions (packed.py) per layer.

    Only in bf16: fp32 keeps the eager reference convolutions everywhere, because two processes may time their
    way to different forms, and fp32 results must agree bit for bit (eval against a run's own validation). Only
    where oneDNN can lay out bf16 weights: an AVX2-only CPU cannot (asked for bf16 there, it runs eager).
    """
    from resnet3d.inference.machine import cpu_kind, onednn_bf16
    from resnet3d.inference.packed import packing_available

    return (precision == "bf16" and device.type == "cpu" and packing_available() and onednn_bf16()
            and cpu_kind() not in PACKING_NEUTRAL_KINDS)


def guard_shallow_conv3d(model: torch.nn.Module) -> torch.nn.Module:
    """Pad time by hand for Conv3d inputs no deeper than the kernel, where CPU weight gradients come out wrong.

    On CPU (oneDNN, torch 2.13) the weight gradient of a Conv3d whose input depth is above 1 but at most the
    temporal kernel is wrong in bf16 (relative error ~1, inf/NaN, at times a crash; a 16-frame R3D-18 hits it in
    layer3: depth 2, kernel 3) and, for some strided shapes, in fp32 too. Forward and input gradients are fine.
    Zero-padding the time axis ourselves (conv padding 0 in time) gives the same output and correct gradients
    (checked against float64 for kernels 3/5/7, strides 1/2) at the full bf16 speed, and lets the taps that meet
    only padding be dropped (`without_dead_taps`). Single-frame inputs
    (`data.clip_length=1`, where every layer is that shallow) take the same path: a NaN was reported from
    `conv1`'s bf16 forward there, where oneDNN would pad 3 frames on each side of one.
    """
    for module in model.modules():
        if (isinstance(module, torch.nn.Conv3d) and module.kernel_size[0] > 1 and module.padding_mode == "zeros"
                and not isinstance(module.padding, str)):
            module.forward = types.MethodType(_conv3d_pad_time_if_shallow, module)
    return model


def _conv3d_pad_time_if_shallow(conv: torch.nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    if x.shape[2] > conv.kernel_size[0]:
        return conv3d_for_training(conv, x, conv.weight, conv.padding)
    x, weight, padding = without_dead_taps(x, conv.weight, conv.stride[0], conv.padding)
    return conv3d_for_training(conv, x, weight, padding)


def live_taps(depth: int, kernel: int, stride: int, padding: int) -> tuple[int, int]:
    """The range [lo, hi) of temporal kernel taps that meet at least one input frame (the others see only zeros)."""
    out = (depth + 2 * padding - kernel) // stride + 1
    live = [k for k in range(kernel) if any(0 <= t * stride + k - padding < depth for t in range(out))]
    return (live[0], live[-1] + 1) if live else (0, kernel)


def without_dead_taps(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: Sequence[int]
                      ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """A shallow Conv3d's input padded (or cropped) in time by hand and its weight without the dead taps.

    Padded by hand, the time padding of the convolution is 0 (see guard_shallow_conv3d). Taps that meet only
    padding frames add nothing, yet cost as much as the others: with one frame left (layer4 of a 16-frame R3D, a
    3-tap kernel) two thirds of the work. Dropped, the output is the same and their weight gradient is the zero
    it always was. Returns the input, the weight's live taps (a view: gradients reach the whole weight) and the
    padding to pass on.
    """
    depth, kernel, pad = x.shape[2], weight.shape[2], padding[0]
    lo, hi = live_taps(depth, kernel, stride, pad)
    out = (depth + 2 * pad - kernel) // stride + 1
    front = pad - lo  # negative: frames cropped from the front
    back = (out - 1) * stride + hi - lo - depth - front
    if front or back:
        x = torch.nn.functional.pad(x, (0, 0, 0, 0, front, back))
    if (lo, hi) == (0, kernel):
        return x, weight, [0, *padding[1:]]
    dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else weight.dtype
    return x, _LiveTaps.apply(weight, lo, hi, dtype), [0, *padding[1:]]


class _LiveTaps(torch.autograd.Function):
    """`weight[:, :, lo:hi]` in `dtype` (autocast's, which casts it anyway), its gradient laid out like `weight`.

    A plain slice's gradient is a contiguous zero tensor of the full shape, which autograd then copies into the
    channels_last_3d layout of the parameter: for R3D-18's three 512x512x3x3x3 `layer4` weights, ~4 % of a bf16
    training step on the AMX Xeon. Here the live taps' bf16 gradient is written into place in fp32 and only the
    dead taps are zeroed: one pass over the weight instead of a cast, a zero fill and a copy.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, lo: int, hi: int, dtype: torch.dtype) -> torch.Tensor:
        ctx.lo, ctx.hi = lo, hi
        ctx.save_for_backward(weight)
        return weight[:, :, lo:hi].to(dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        full = torch.empty_like(ctx.saved_tensors[0])
        full[:, :, :ctx.lo] = 0
        full[:, :, ctx.hi:] = 0
        full[:, :, ctx.lo:ctx.hi] = grad
        return full, None, None, None
