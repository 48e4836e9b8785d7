"""CPU inference convolutions with their weights laid out for oneDNN once, and the ReLU or residual add fused in.

An eager `F.conv3d` hands oneDNN a plain weight on every call, and oneDNN reorders it into its blocked layout
each time (the `reorder` calls in ONEDNN_VERBOSE); a ReLU or `out + shortcut` after it is one more pass over the
activations. `pack_convolutions` rewrites an eval-mode torch.fx graph so each convolution can also run with a
reordered weight through oneDNN's fused convolution (`mkldnn._convolution_pointwise`), as inductor's freezing
does, without compiling anything per input shape; low-channel stems also get their tap-folded form (`tap_fold`).
Which form pays differs by CPU (on the AMD Zen 5 the two run within a few % of each other, layer by layer either
way), so each layer times its forms at the first batch (`form_choice`) and keeps the fastest.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F

from resnet3d.inference.fast_path import without_dead_taps
from resnet3d.inference.form_choice import fastest_form
from resnet3d.inference.tap_fold import fold_axis, fold_form_name, fold_input, fold_weight, folded_geometry

_CONVS = (torch.nn.Conv2d, torch.nn.Conv3d)
_ADDS = (operator.add, torch.add, operator.iadd)
_MAX_POOLS = (torch.nn.MaxPool2d, torch.nn.MaxPool3d)


def packing_available() -> bool:
    """True when this torch build has oneDNN's fused CPU convolution."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class PackedConv(torch.nn.Module):
    """One convolution with an optional fused ReLU, or add-then-ReLU with a second input, in its fastest form.

    The forms: eager (`F.conv3d`, then the ReLU/add), packed (oneDNN with a reordered weight, the ReLU/add fused)
    and, for a low-channel stem, packed with the taps folded. A weight is packed at its first call, for that
    input's shape: packed without one, oneDNN picks a layout that suits no shape well (a 1x1x1 layer4 convolution
    of R3D-50 ran 25x slower than eager); packed for the first batch it serves other batch sizes at full speed.
    """

    def __init__(self, conv: torch.nn.Module, fuse: str = "none", *, in_place: bool = False):
        super().__init__()
        self.fuse, self.in_place = fuse, in_place  # in_place: the sum may overwrite `other` (nothing reads it later)
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.kernel_t = conv.kernel_size[0] if isinstance(conv, torch.nn.Conv3d) else 1
        self.bias = None if conv.bias is None else conv.bias.detach()
        self.weight = conv.weight.detach()
        self.packed: dict[tuple, torch.Tensor] = {}  # (form, weight shape) -> oneDNN's packed weight, made once
        self.forms = {"eager": self._eager, "packed": self._packed}
        self.axis = fold_axis(conv) if fuse != "add_relu" else None
        if self.axis is not None:
            self.fold = (conv.kernel_size[self.axis - 2], conv.stride[self.axis - 2], conv.padding[self.axis - 2])
            self.fold_padding, self.fold_stride = folded_geometry(conv, self.axis)
            self.fold_weight = fold_weight(self.weight, self.axis)
            self.forms[f"packed, {fold_form_name(self.axis)}"] = self._folded

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        key = ("inference", tuple(self.weight.shape), tuple(self.stride), tuple(self.padding), self.fuse,
               tuple(x.shape[1:]), x.dtype, x.is_contiguous(memory_format=torch.channels_last_3d))
        probe = self.forms
        if other is not None:  # each timed call gets its own copy: an in-place sum would overwrite `other`
            probe = {k: lambda t, f=f: f(t, other=other.clone()) for k, f in self.forms.items()}
        return self.forms[fastest_form(self, key, probe, x)](x, other)

    def _shallow(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """As guard_shallow_conv3d: inputs no deeper than the kernel are padded in time by hand (bf16 NaN seen),
        and the taps that meet only padding are dropped."""
        if 1 < self.kernel_t and x.dim() == 5 and x.shape[2] <= self.kernel_t:
            return without_dead_taps(x, self.weight, self.stride[0], self.padding)
        return x, self.weight, self.padding

    def _eager(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        x, weight, padding = self._shallow(x)
        conv = F.conv3d if x.dim() == 5 else F.conv2d
        out = conv(x, weight, self.bias, self.stride, padding, self.dilation, self.groups)
        if other is not None:
            out = out.add_(other)
        return out.relu_() if self.fuse != "none" else out

    def _packed(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        x, weight, padding = self._shallow(x)
        return self._run("packed", weight, x, padding, self.stride, self.groups, other)

    def _folded(self, x: torch.Tensor, other: None = None) -> torch.Tensor:
        folded = fold_input(x, self.axis, *self.fold)
        return self._run("folded", self.fold_weight, folded, self.fold_padding, self.fold_stride, 1, None)

    def _run(self, form: str, weight: torch.Tensor, x: torch.Tensor, padding: list[int], stride: list[int],
             groups: int, other: torch.Tensor | None) -> torch.Tensor:
        key = (form, tuple(weight.shape))  # a shallow input runs fewer taps: a packed weight of its own
        packed = self.packed.get(key)
        if packed is None:
            if weight.dim() == 5:
                weight = weight.contiguous(memory_format=torch.channels_last_3d)
            packed = self.packed[key] = torch.ops.mkldnn._reorder_convolution_weight(
                weight, padding, stride, self.dilation, groups, list(x.shape))
        if other is not None:
            binary = (torch.ops.mkldnn._convolution_pointwise_ if self.in_place
                      else torch.ops.mkldnn._convolution_pointwise).binary
            args = (other, x) if self.in_place else (x, other)
            return binary(*args, packed, self.bias, padding, stride, self.dilation, groups, "add", 1.0, "relu", [], "")
        return torch.ops.mkldnn._convolution_pointwise(x, packed, self.bias, padding, stride, self.dilation, groups,
                                                      "relu" if self.fuse == "relu" else "none", [], "")


def pack_convolutions(graph_module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Make each 2-D/3-D convolution of `graph_module` a `PackedConv`, fusing a lone following ReLU or add+ReLU.

    A convolution followed by a max-pool and then a ReLU (the stems, which pool first for training's sake) gets
    the ReLU fused and the pool after it: max-pool and ReLU commute, and the fused ReLU costs no pass of its own.
    """
    modules = dict(graph_module.named_modules())
    graph = graph_module.graph
    for node in list(graph.nodes):
        conv = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(conv, _CONVS) or isinstance(conv.padding, str) or conv.padding_mode != "zeros":
            continue
        user = _only_user(node)
        fuse, erased, result = "none", [], node  # erased[0]'s users read `result` instead
        if _is_relu(user, modules):
            fuse, erased = "relu", [user]
        elif _is_max_pool(user, modules) and _is_relu(_only_user(user), modules):
            fuse, erased, result = "relu", [_only_user(user)], user
        elif _is_residual_add(user, node) and _is_relu(_only_user(user), modules):
            other = user.args[1] if user.args[0] is node else user.args[0]
            user.prepend(node)  # the shortcut may be computed after the convolution: run it just before the add
            node.args = (node.args[0], other)
            fuse, erased = "add_relu", [_only_user(user), user]
        parent, _, name = node.target.rpartition(".")
        in_place = fuse == "add_relu" and _last_read_by(node.args[1], user)
        setattr(graph_module.get_submodule(parent), name, PackedConv(conv, fuse, in_place=in_place))
        if erased:
            erased[0].replace_all_uses_with(result)
            for done in erased:
                graph.erase_node(done)
    graph.lint()
    graph_module.delete_all_unused_submodules()
    graph_module.recompile()
    return graph_module


def _last_read_by(value: torch.fx.Node, reader: torch.fx.Node) -> bool:
    """True when `value` is an intermediate result (not an input) that nothing after `reader` reads."""
    order = {n: i for i, n in enumerate(reader.graph.nodes)}
    return value.op not in ("placeholder", "get_attr") and all(order[u] <= order[reader] for u in value.users)


def _only_user(node: torch.fx.Node | None) -> torch.fx.Node | None:
    return next(iter(node.users)) if node is not None and len(node.users) == 1 else None


def _is_relu(node: torch.fx.Node | None, modules: dict) -> bool:
    if node is None or len(node.args) != 1:
        return False
    if node.op == "call_module":
        return isinstance(modules.get(node.target), torch.nn.ReLU)
    return (node.op == "call_function" and node.target in (F.relu, torch.relu)
            or node.op == "call_method" and node.target in ("relu", "relu_"))


def _is_max_pool(node: torch.fx.Node | None, modules: dict) -> bool:
    return node is not None and node.op == "call_module" and isinstance(modules.get(node.target), _MAX_POOLS)


def _is_residual_add(node: torch.fx.Node | None, conv: torch.fx.Node) -> bool:
    """`conv + other` (either order) with `other` another node of the same shape."""
    if node is None or node.op != "call_function" or node.target not in _ADDS or node.kwargs or len(node.args) != 2:
        return False
    other = node.args[1] if node.args[0] is conv else node.args[0]
    return isinstance(other, torch.fx.Node) and other is not conv
