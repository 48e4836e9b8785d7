"""CPU inference convolutions with their weights laid out for oneDNN once, and the ReLU or residual add fused in.

An eager `F.conv3d` hands oneDNN a plain weight on every call, and oneDNN reorders it into its blocked layout
each time (the `reorder` calls in ONEDNN_VERBOSE); a ReLU or `out + shortcut` after it is one more pass over the
activations. `pack_convolutions` rewrites an eval-mode torch.fx graph so each convolution holds its reordered
weight and runs through oneDNN's fused convolution (`mkldnn._convolution_pointwise`), as inductor's freezing
does, without compiling anything per input shape. Low-channel stems also get their tap-folded form
(`tap_fold`), used where it measures faster.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F

from resnet3d.inference.form_choice import fastest_form
from resnet3d.inference.tap_fold import fold_axis, fold_form_name, fold_input, fold_weight, folded_geometry

_CONVS = (torch.nn.Conv2d, torch.nn.Conv3d)
_ADDS = (operator.add, torch.add, operator.iadd)


def packing_available() -> bool:
    """True when this torch build has oneDNN's fused CPU convolution."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class PackedConv(torch.nn.Module):
    """One convolution with a prepacked weight and an optional fused ReLU, or add-then-ReLU with a second input."""

    def __init__(self, conv: torch.nn.Module, fuse: str = "none"):
        super().__init__()
        self.fuse = fuse
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.kernel_t = conv.kernel_size[0] if isinstance(conv, torch.nn.Conv3d) else 1
        self.bias = None if conv.bias is None else conv.bias.detach()
        self.weight = _pack(conv.weight.detach(), self.padding, self.stride, self.dilation, self.groups)
        self.axis = fold_axis(conv) if fuse != "add_relu" else None
        if self.axis is not None:
            self.fold = (conv.kernel_size[self.axis - 2], conv.stride[self.axis - 2], conv.padding[self.axis - 2])
            self.fold_padding, self.fold_stride = folded_geometry(conv, self.axis)
            self.fold_weight = _pack(fold_weight(conv.weight.detach(), self.axis), self.fold_padding,
                                     self.fold_stride, self.dilation, 1)

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        if self.axis is None:
            return self._plain(x, other)
        forms = {"plain": self._plain, fold_form_name(self.axis): self._folded}
        key = ("packed", tuple(self.weight.shape), tuple(self.stride), tuple(self.padding), tuple(x.shape[1:]),
               x.dtype, x.is_contiguous(memory_format=torch.channels_last_3d))
        return forms[fastest_form(self, key, forms, x)](x)

    def _plain(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        padding = self.padding
        if 1 < self.kernel_t and x.dim() == 5 and x.shape[2] <= self.kernel_t and padding[0]:
            # as guard_shallow_conv3d: pad shallow inputs in time by hand (oneDNN's bf16 path misbehaves there)
            x = F.pad(x, (0, 0, 0, 0, padding[0], padding[0]))
            padding = [0, *padding[1:]]
        return self._run(x, self.weight, padding, self.stride, self.groups, other)

    def _folded(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(fold_input(x, self.axis, *self.fold), self.fold_weight, self.fold_padding, self.fold_stride,
                         1, None)

    def _run(self, x: torch.Tensor, weight: torch.Tensor, padding: list[int], stride: list[int], groups: int,
             other: torch.Tensor | None) -> torch.Tensor:
        conv = torch.ops.mkldnn._convolution_pointwise
        if other is not None:
            return conv.binary(x, other, weight, self.bias, padding, stride, self.dilation, groups, "add", 1.0,
                               "relu", [], "")
        return conv(x, weight, self.bias, padding, stride, self.dilation, groups,
                    "relu" if self.fuse == "relu" else "none", [], "")


def _pack(weight: torch.Tensor, padding: list[int], stride: list[int], dilation: list[int], groups: int
          ) -> torch.Tensor:
    if weight.dim() == 5:
        weight = weight.contiguous(memory_format=torch.channels_last_3d)
    return torch.ops.mkldnn._reorder_convolution_weight(weight, padding, stride, dilation, groups, None)


def pack_convolutions(graph_module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Replace each 2-D/3-D convolution of `graph_module` by a `PackedConv`, fusing a lone following ReLU or add+ReLU."""
    modules = dict(graph_module.named_modules())
    graph = graph_module.graph
    for node in list(graph.nodes):
        conv = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(conv, _CONVS) or isinstance(conv.padding, str) or conv.padding_mode != "zeros":
            continue
        user = _only_user(node)
        fused: list[torch.fx.Node] = []
        if _is_relu(user, modules):
            fused = [user]
        elif _is_residual_add(user, node) and _is_relu(_only_user(user), modules):
            other = user.args[1] if user.args[0] is node else user.args[0]
            user.prepend(node)  # the shortcut may be computed after the convolution: run it just before the add
            node.args = (node.args[0], other)
            fused = [_only_user(user), user]
        parent, _, name = node.target.rpartition(".")
        setattr(graph_module.get_submodule(parent), name,
                PackedConv(conv, {0: "none", 1: "relu", 2: "add_relu"}[len(fused)]))
        if fused:
            fused[0].replace_all_uses_with(node)
            for done in fused:
                graph.erase_node(done)
    graph.lint()
    graph_module.delete_all_unused_submodules()
    graph_module.recompile()
    return graph_module


def _only_user(node: torch.fx.Node | None) -> torch.fx.Node | None:
    return next(iter(node.users)) if node is not None and len(node.users) == 1 else None


def _is_relu(node: torch.fx.Node | None, modules: dict) -> bool:
    if node is None or len(node.args) != 1:
        return False
    if node.op == "call_module":
        return isinstance(modules.get(node.target), torch.nn.ReLU)
    return (node.op == "call_function" and node.target in (F.relu, torch.relu)
            or node.op == "call_method" and node.target in ("relu", "relu_"))


def _is_residual_add(node: torch.fx.Node | None, conv: torch.fx.Node) -> bool:
    """`conv + other` (either order) with `other` another node of the same shape."""
    if node is None or node.op != "call_function" or node.target not in _ADDS or node.kwargs or len(node.args) != 2:
        return False
    other = node.args[1] if node.args[0] is conv else node.args[0]
    return isinstance(other, torch.fx.Node) and other is not conv
