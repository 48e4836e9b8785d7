"""Fine-tuning helpers: new heads, freezing before a named module with BatchNorm kept in eval mode."""

from __future__ import annotations

import pytest
import torch

from resnet3d.errors import Resnet3dError
from resnet3d.models import create_model, freeze_until, replace_head


def test_replace_head_keeps_features_and_changes_classes(tiny_clip: torch.Tensor) -> None:
    model = create_model("densenet121", num_classes=400, growth_rate=4, num_init_features=8).eval()
    clip = torch.randn(1, 3, 16, 64, 64)
    with torch.no_grad():
        before = model.forward_features(clip)
        replace_head(model, 7)
        assert model(clip).shape == (1, 7) and model.num_classes == 7
        assert torch.equal(model.forward_features(clip), before)
    assert model.classifier.in_features == model.num_features


def test_freeze_until_layer3_freezes_the_stem_and_first_stages(tiny_clip: torch.Tensor) -> None:
    model = create_model("resnet18", num_classes=4, widen_factor=0.125)
    trainable = freeze_until(model, "layer3")
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)].split(".")[0] for p in trainable) == sorted(
        n.split(".")[0] for n, _ in model.named_parameters() if n.startswith(("layer3", "layer4", "fc")))
    assert all(not p.requires_grad for n, p in model.named_parameters() if n.startswith(("conv1", "bn1", "layer1", "layer2")))
    model.train()
    assert not model.bn1.training and not model.layer2[1].bn2.training and model.layer3[0].bn1.training
    stats = model.layer1[0].bn1.running_mean.clone()
    model(tiny_clip).sum().backward()
    assert torch.equal(model.layer1[0].bn1.running_mean, stats)  # frozen statistics did not move
    assert model.layer1[0].conv1.weight.grad is None and model.layer3[0].conv1.weight.grad is not None
    freeze_until(model, None)
    assert all(p.requires_grad for p in model.parameters()) and model.bn1.training


def test_freeze_until_fc_and_densenet_names() -> None:
    model = create_model("resnet2p1d10", num_classes=4, widen_factor=0.125)
    assert [p.shape for p in freeze_until(model, "fc")] == [(4, 64), (4,)]
    densenet = create_model("densenet121", num_classes=4, growth_rate=4, num_init_features=8)
    trainable = freeze_until(densenet, "denseblock4")
    assert densenet.frozen_modules[-1] == "features.transition3"
    assert sum(p.numel() for p in trainable) == sum(
        p.numel() for n, p in densenet.named_parameters() if n.startswith(("features.denseblock4", "features.norm5", "classifier")))
    densenet.train()
    assert not densenet.features.norm1.training and densenet.features.norm5.training


def test_unknown_module_lists_the_valid_ones() -> None:
    model = create_model("resnet2p1d10", num_classes=4, widen_factor=0.125)
    with pytest.raises(Resnet3dError, match=r"resnet2p1d10 has no module 'conv1'; expected one of: conv1_s, bn1_s, "
                                            r"conv1_t, bn1_t, layer1, layer2, layer3, layer4, fc"):
        freeze_until(model, "conv1")
