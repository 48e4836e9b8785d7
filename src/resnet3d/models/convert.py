"""Foreign state dicts: clean them up (prefixes, old names, missing counters) and infer the architecture from tensors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from resnet3d.errors import Resnet3dError
from resnet3d.models.densenet import BLOCK_CONFIGS
from resnet3d.models.resnet import BASIC_LAYERS, BOTTLENECK_LAYERS

StateDict = dict[str, torch.Tensor]
# Options that change how a network runs but no tensor shape: a state dict cannot tell them.
TRACELESS_OPTIONS = ("no_max_pool", "conv1_t_stride")

# CVPR-2018 DenseNet names → current ones: conv0/norm0 → conv1/norm1, denselayer norm.1/conv.1 … → norm1/conv1 ….
_OLD_DENSENET = [
    (re.compile(r"^features\.(conv|norm)0\."), r"features.\g<1>1."),
    (re.compile(r"\.(norm|conv)\.([12])\."), r".\1\2."),
]


class ArchitectureError(Resnet3dError):
    """The tensors of a state dict match no architecture of the zoo."""


@dataclass(frozen=True)
class CleanStateDict:
    """A state dict with our key names; `legacy` when it bears the marks of CVPR-2018 (pre-0.4.1 torch) training."""

    state_dict: StateDict
    legacy: bool


def strip_prefixes(state_dict: Mapping[str, Any]) -> StateDict:
    """Drop any number of leading `module.` (DataParallel/DDP) and `_orig_mod.` (torch.compile) prefixes."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith(("module.", "_orig_mod.")):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def clean_state_dict(state_dict: Mapping[str, Any]) -> CleanStateDict:
    """Strip prefixes, rename old DenseNet keys, add the `num_batches_tracked` counters torch < 0.4.1 lacked."""
    sd = strip_prefixes(state_dict)
    renamed = {}
    for key, value in sd.items():
        new = key
        for pattern, repl in _OLD_DENSENET:
            new = pattern.sub(repl, new)
        renamed[new] = value
    legacy = renamed.keys() != sd.keys()
    for key in [k for k in renamed if k.endswith(".running_mean")]:
        counter = key[: -len("running_mean")] + "num_batches_tracked"
        if counter not in renamed:
            renamed[counter] = torch.tensor(0, dtype=torch.long)
            legacy = True
    return CleanStateDict(renamed, legacy)


@dataclass(frozen=True)
class Architecture:
    """What `create_model` needs to rebuild the network a state dict came from."""

    name: str
    num_classes: int
    options: dict[str, Any]


def _shape(sd: StateDict, key: str) -> tuple[int, ...]:
    try:
        return tuple(sd[key].shape)
    except KeyError:
        raise ArchitectureError(f"cannot infer the architecture: no {key!r} tensor") from None


def _count(sd: StateDict, pattern: str) -> int:
    found = {int(m.group(1)) for k in sd if (m := re.match(pattern, k))}
    return max(found) if found else 0


def infer_architecture(sd: StateDict) -> Architecture:
    """Family, depth, shortcut, widths, stem and class count of a cleaned state dict, read from its tensors."""
    if "features.conv1.weight" in sd:
        return _infer_densenet(sd)
    if "conv1.weight" in sd or "conv1_s.weight" in sd:
        return _infer_resnet(sd)
    raise ArchitectureError("cannot infer the architecture: no stem tensor (conv1, conv1_s or features.conv1)")


def _infer_densenet(sd: StateDict) -> Architecture:
    out, n_in, t_size = _shape(sd, "features.conv1.weight")[:3]
    config = tuple(
        _count(sd, rf"features\.denseblock{b}\.denselayer(\d+)\.")
        for b in range(1, _count(sd, r"features\.denseblock(\d+)\.") + 1)
    )
    growth = _shape(sd, "features.denseblock1.denselayer1.conv2.weight")[0]
    bn_size = _shape(sd, "features.denseblock1.denselayer1.conv1.weight")[0] // growth
    depth = next((d for d, c in BLOCK_CONFIGS.items() if c == config), None)
    options: dict[str, Any] = {
        "n_input_channels": n_in,
        "conv1_t_size": t_size,
        "growth_rate": growth,
        "num_init_features": out,
        "bn_size": bn_size,
    }
    if depth is None:
        depth, options["block_config"] = 121, list(config)
    return Architecture(f"densenet{depth}", _shape(sd, "classifier.weight")[0], options)


def _infer_resnet(sd: StateDict) -> Architecture:
    factorised = "conv1_s.weight" in sd
    n_in = _shape(sd, "conv1_s.weight" if factorised else "conv1.weight")[1]
    stem_planes, _, t_size = _shape(sd, "conv1_t.weight" if factorised else "conv1.weight")[:3]
    layers = tuple(_count(sd, rf"layer{i}\.(\d+)\.") + 1 for i in range(1, 5))
    bottleneck = "layer1.0.conv3.weight" in sd
    depth = next((d for d, c in (BOTTLENECK_LAYERS if bottleneck else BASIC_LAYERS).items() if c == layers), None)
    if depth is None:
        kind = "bottleneck" if bottleneck else "basic"
        raise ArchitectureError(f"cannot infer the architecture: {kind} blocks per stage {layers} match no ResNet depth")
    shortcut = "B" if any(k.endswith(".downsample.0.weight") for k in sd) else "A"
    options: dict[str, Any] = {"n_input_channels": n_in, "shortcut_type": shortcut}
    last_conv = "conv3" if bottleneck else ("conv2_t" if factorised else "conv2")
    num_features = _shape(sd, f"layer4.0.{last_conv}.weight")[0]
    num_classes = _shape(sd, "fc.weight")[0]
    if factorised:
        options |= {"conv1_t_size": t_size, "widen_factor": num_features / (4 if bottleneck else 1) / 512}
        return Architecture(f"resnet2p1d{depth}", num_classes, options)

    preact = _is_preact(sd)
    if _shape(sd, "layer1.0.conv2.weight" if bottleneck else "layer1.0.conv1.weight")[2] == 1:
        if bottleneck or preact:
            raise ArchitectureError("cannot infer the architecture: per-frame 2D weights exist only for ResNet-10/18/34")
        options["widen_factor"] = num_features / 512
        return Architecture(f"resnet{depth}_2d", num_classes, options)
    options["conv1_t_size"] = t_size
    family = "preact_resnet" if preact else "resnet"
    if bottleneck and not preact:
        width = _shape(sd, "layer1.0.conv1.weight")[0]
        groups = width // _shape(sd, "layer1.0.conv2.weight")[1]
        expansion = _shape(sd, "layer1.0.conv3.weight")[0] // width
        if groups > 1:
            options |= {"cardinality": groups, "legacy_stem": stem_planes == 64}
            return Architecture(f"resnext{depth}", num_classes, options)
        if expansion == 2:
            k = num_features // 1024
            options |= {"k": k, "legacy_stem": stem_planes == 64 and k != 1}
            return Architecture(f"wide_resnet{depth}", num_classes, options)
    options["widen_factor"] = num_features / (4 if bottleneck else 1) / 512
    return Architecture(f"{family}{depth}", num_classes, options)


def _is_preact(sd: StateDict) -> bool:
    """Pre-activation blocks normalise their input: layer2.0.bn1 has conv1's input width, not its output width."""
    out_ch, in_ch = _shape(sd, "layer2.0.conv1.weight")[:2]
    bn = _shape(sd, "layer2.0.bn1.weight")[0]
    return bn == in_ch != out_ch
