"""`InferenceNet`: BN folded into the convolutions, weights cast once, the caller's model left untouched."""

from __future__ import annotations

import pytest
import torch
from inference_helpers import with_running_stats

from resnet3d.inference.fast_path import InferenceNet
from resnet3d.models.registry import create_model


@pytest.mark.parametrize("name, options, folded_all", [
    ("resnet10", {"shortcut_type": "A"}, True),
    ("resnet2p1d10", {}, True),
    ("resnext50", {"cardinality": 8}, True),
    ("preact_resnet10", {}, False),  # BN before each conv: only conv -> BN pairs fold
    ("densenet121", {"growth_rate": 8, "num_init_features": 16}, False),
    ("resnet10_2d", {}, True),
])
def test_folded_network_computes_the_same_logits(name, options, folded_all):
    torch.manual_seed(0)
    model = with_running_stats(create_model(name, num_classes=5, **options))
    x = torch.randn(2, 3, 16, 32, 32)
    with torch.no_grad():
        expected = model(x)
    net = InferenceNet(model)
    bn_left = sum(isinstance(m, torch.nn.BatchNorm3d) for m in net.modules())
    bn_before = sum(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules())
    assert (bn_left == 0) if folded_all else (0 < bn_left < bn_before)
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(InferenceNet(model, features=True)(x), model.forward_features(x),
                                   rtol=1e-4, atol=1e-5)


def test_the_callers_model_is_left_as_it_was():
    model = create_model("resnet10", num_classes=5, widen_factor=0.25).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    InferenceNet(model, torch.bfloat16)
    assert model.training
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert all(v.dtype == before[k].dtype and v.is_contiguous() for k, v in after.items())
