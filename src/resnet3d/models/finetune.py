"""Fine-tuning helpers: a new head for a new class count, freezing everything before a named module, and a stem
for another number of input channels (RGB weights on optical flow)."""

from __future__ import annotations

import torch
from torch import nn

from resnet3d.errors import Resnet3dError
from resnet3d.models.layers import VideoClassifier


def replace_head(model: VideoClassifier, num_classes: int) -> VideoClassifier:
    """Give `model` a freshly initialised linear head with `num_classes` outputs (same device and dtype)."""
    old = getattr(model, model.head_name)
    head = nn.Linear(model.num_features, num_classes).to(device=old.weight.device, dtype=old.weight.dtype)
    setattr(model, model.head_name, head)
    model.num_classes = num_classes
    return model


def top_level_modules(model: VideoClassifier) -> dict[str, str]:
    """Names usable with `freeze_until`, in order, mapped to their module paths (DenseNet's `features.` dropped)."""
    names: dict[str, str] = {}
    for param_name, _ in model.named_parameters():
        parts = param_name.split(".")
        path = ".".join(parts[:2]) if parts[0] == "features" else parts[0]
        names.setdefault(path.split(".")[-1], path)
    return names


def freeze_until(model: VideoClassifier, module_name: str | None) -> list[nn.Parameter]:
    """Freeze every parameter before top-level module `module_name` and return the parameters left trainable.

    Frozen parameters get `requires_grad=False` and their modules stay in eval mode (BatchNorm statistics fixed)
    even after `model.train()`. An empty name or None unfreezes everything, like the original's `--ft_begin_module ''`.
    """
    modules = top_level_modules(model)
    if module_name and module_name not in modules:
        name = model.arch_name or type(model).__name__
        raise Resnet3dError(f"{name} has no module {module_name!r}; expected one of: {', '.join(modules)}")
    frozen: list[str] = []
    if module_name:
        for name, path in modules.items():
            if name == module_name:
                break
            frozen.append(path)
    for param_name, param in model.named_parameters():
        param.requires_grad_(not any(param_name.startswith(path + ".") for path in frozen))
    model.frozen_modules = tuple(frozen)
    model.train(model.training)
    return [p for p in model.parameters() if p.requires_grad]


def adapt_input_channels(model: VideoClassifier, channels: int) -> VideoClassifier:
    """Give the stem `channels` inputs, each the mean of the old input filters (TSN's cross-modality init).

    RGB weights fine-tuned on 2-channel optical flow start with every flow channel seeing the average RGB filter.
    A model that already has `channels` inputs is returned unchanged.
    """
    old = model.arch_options.get("n_input_channels", 3)
    if old == channels:
        return model
    stem = next(m for m in model.modules() if isinstance(m, (nn.Conv3d, nn.Conv2d)))
    with torch.no_grad():
        mean = stem.weight.mean(dim=1, keepdim=True)
        stem.weight = nn.Parameter(mean.repeat_interleave(channels, dim=1).contiguous(),
                                   requires_grad=stem.weight.requires_grad)
    stem.in_channels = channels
    model.arch_options = {**model.arch_options, "n_input_channels": channels}
    return model
