"""The stem max-pools before its closing ReLU: the same logits and gradients, bit for bit, as the original's order."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet3d.models import create_model
from resnet3d.models.densenet import DenseNet
from resnet3d.models.layers import run


def _original_order_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The original's forward: the stem's ReLU, then the max-pool."""
    if isinstance(model, DenseNet):
        stem, rest = ["conv1", "norm1", "relu1", "pool1"], [n for n, _ in model.features.named_children()][4:]
        x = run(model.features, stem + rest, x)
        x = torch.relu(x)
        return model.classifier(torch.flatten(nn.functional.adaptive_avg_pool3d(x, 1), 1))
    x = model.maxpool(run(model, model.stem_order, x))
    x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
    return model.fc(torch.flatten(model.avgpool(x), 1))


def _logits_and_grads(model: nn.Module, forward, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    logits = forward(x)
    logits.float().square().sum().backward()
    return logits.detach(), [p.grad.clone() for p in model.parameters()]


RESNETS = [("resnet18", {"widen_factor": 0.25}), ("resnet2p1d18", {"widen_factor": 0.25}),
           ("preact_resnet18", {"widen_factor": 0.25}), ("resnet10_2d", {"widen_factor": 0.25})]
DENSENET = ("densenet121", {"growth_rate": 4, "num_init_features": 8})


# bf16 rounds the stem's output onto few values: many tied maxima, some of them at or below zero (CPU has no bf16
# avg_pool3d, which DenseNet's transitions need: fp32 there)
@pytest.mark.parametrize("name,options,dtype,clip", [
    *[(n, o, d, (2, 3, 8, 32, 32)) for n, o in RESNETS for d in (torch.float64, torch.bfloat16)],
    *[(*DENSENET, d, (2, 3, 16, 64, 64)) for d in (torch.float64, torch.float32)],
])
def test_pooling_before_the_stem_relu_changes_no_value_and_no_gradient(name: str, options: dict, dtype, clip) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, **options).to(dtype).train()
    x = torch.randn(clip, dtype=dtype)
    ours, our_grads = _logits_and_grads(model, model, x)
    original, original_grads = _logits_and_grads(model, lambda c: _original_order_logits(model, c), x)
    assert torch.equal(ours, original)
    assert all(torch.equal(a, b) for a, b in zip(our_grads, original_grads))


def test_the_densenet_stem_keeps_its_state_dict_keys_and_pools_first() -> None:
    model = create_model("densenet121", growth_rate=4, num_init_features=8)
    assert [n for n, _ in model.features.named_children()][:4] == ["conv1", "norm1", "pool1", "relu1"]
    assert list(model.state_dict())[:6] == ["features.conv1.weight", "features.norm1.weight", "features.norm1.bias",
                                            "features.norm1.running_mean", "features.norm1.running_var",
                                            "features.norm1.num_batches_tracked"]


def test_the_resnet_stem_relu_runs_on_the_pooled_output() -> None:
    model = create_model("resnet18", num_classes=5, widen_factor=0.25)
    seen: dict[str, list[torch.Size]] = {"pool": [], "relu": []}
    model.maxpool.register_forward_pre_hook(lambda m, args: seen["pool"].append(args[0].shape))
    model.relu.register_forward_pre_hook(lambda m, args: seen["relu"].append(args[0].shape))
    model.eval()(torch.randn(1, 3, 8, 32, 32))
    assert seen["pool"] == [(1, 16, 8, 16, 16)] and seen["relu"] == [(1, 16, 4, 8, 8)]
