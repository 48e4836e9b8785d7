"""Every family and depth builds and runs a real forward/backward; shortcut A; the per-frame 2D baseline."""

from __future__ import annotations

import pytest
import torch

from resnet3d.models import create_model, list_models
from resnet3d.models.layers import ZeroPadShortcut

NARROW = [n for n in list_models() if not n.startswith(("wide_resnet", "resnext", "densenet"))]


@pytest.mark.parametrize("name", list_models())
def test_every_model_runs_a_full_size_clip_on_the_meta_device(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name, num_classes=7).eval()
        assert model(torch.empty(2, 3, 16, 112, 112)).shape == (2, 7)


@pytest.mark.parametrize("name", NARROW)
def test_every_depth_computes_forward_and_backward(name: str, tiny_clip: torch.Tensor) -> None:
    # 1/16 width keeps the 200-layer nets cheap; depth and block structure are those of the full model.
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, widen_factor=0.0625)
    _check_forward_backward(model, tiny_clip)


@pytest.mark.parametrize("name,options,clip", [
    ("wide_resnet50", {"k": 1}, (2, 3, 8, 32, 32)),
    ("resnext50", {"cardinality": 8}, (2, 3, 8, 32, 32)),
    ("densenet121", {"growth_rate": 4, "num_init_features": 8}, (2, 3, 16, 64, 64)),
])
def test_wide_resnext_densenet_compute_forward_and_backward(name: str, options: dict, clip: tuple) -> None:
    torch.manual_seed(0)
    _check_forward_backward(create_model(name, num_classes=5, **options), torch.randn(clip))


def _check_forward_backward(model: torch.nn.Module, clip: torch.Tensor) -> None:
    logits = model(clip)
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        features = model.forward_features(clip)
        assert features.shape == (2, model.num_features)
        assert torch.allclose(getattr(model, model.head_name)(features), model(clip), atol=1e-5)


@pytest.mark.parametrize("channels", [1, 2])
def test_input_channels_flow_and_grey(channels: int) -> None:
    for name in ("resnet10", "resnet2p1d10", "resnet10_2d"):
        model = create_model(name, num_classes=3, n_input_channels=channels, widen_factor=0.0625).eval()
        assert model.forward_features(torch.randn(1, channels, 8, 32, 32)).shape == (1, model.num_features)
    densenet = create_model("densenet121", n_input_channels=channels, growth_rate=4, num_init_features=8).eval()
    assert densenet(torch.randn(1, channels, 16, 64, 64)).shape == (1, 400)


def test_temporal_stem_options() -> None:
    model = create_model("resnet10", widen_factor=0.125, conv1_t_size=3, conv1_t_stride=2, no_max_pool=True).eval()
    assert model.conv1.kernel_size == (3, 7, 7) and model.conv1.stride == (2, 2, 2) and model.maxpool is None
    seen = []
    model.layer1.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[2:])))
    model(torch.randn(1, 3, 8, 32, 32))
    assert seen == [(4, 16, 16)]


def test_init_is_kaiming_fan_out_and_unit_batchnorm() -> None:
    torch.manual_seed(0)
    model = create_model("resnet18")
    w = model.layer3[0].conv2.weight  # fan_out = 256 * 27
    assert abs(w.std().item() - (2 / (256 * 27)) ** 0.5) < 0.02 * (2 / (256 * 27)) ** 0.5
    assert torch.equal(model.layer2[0].bn1.weight, torch.ones(128)) and torch.equal(model.bn1.bias, torch.zeros(64))


def test_shortcut_a_pads_zero_channels_and_subsamples() -> None:
    x = torch.randn(2, 4, 5, 6, 7)
    out = ZeroPadShortcut(10, (2, 2, 2))(x)
    assert out.shape == (2, 10, 3, 3, 4)
    assert torch.equal(out[:, :4], x[:, :, ::2, ::2, ::2]) and not out[:, 4:].any()


def test_shortcut_a_passes_gradients() -> None:
    x = torch.randn(1, 4, 4, 4, 4, requires_grad=True)
    ZeroPadShortcut(8, (2, 2, 2))(x).sum().backward()
    expected = torch.zeros_like(x)
    expected[:, :, ::2, ::2, ::2] = 1
    assert torch.equal(x.grad, expected)


def test_shortcut_a_carries_the_gradient_in_a_bf16_model() -> None:
    model = create_model("resnet18", num_classes=3, shortcut_type="A", widen_factor=0.25).to(torch.bfloat16).eval()
    assert not any("downsample" in k for k in model.state_dict())
    # Silence every residual branch: the stem can then reach the logits only through the shortcuts
    # (identity in layer1, shortcut A in layers 2-4), which the original detached from autograd.
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith(".bn2"):
                module.weight.zero_()
                module.bias.zero_()
    out = model(torch.randn(2, 3, 8, 32, 32, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    grad = model.conv1.weight.grad
    assert grad is not None and torch.isfinite(grad.float()).all() and grad.abs().sum() > 0


def test_2d_baseline_has_no_temporal_kernels_and_ignores_frame_order() -> None:
    model = create_model("resnet18_2d", num_classes=4, widen_factor=0.25).eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    assert all(c.kernel_size[0] == 1 and c.stride[0] == 1 for c in convs)
    assert model.maxpool.kernel_size[0] == 1 and model.maxpool.stride[0] == 1
    clip = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(clip), model(clip.flip(2)), atol=1e-5)
        per_frame = torch.stack([model.forward_features(clip[:, :, t : t + 1]) for t in range(8)]).mean(0)
        assert torch.allclose(model.forward_features(clip), per_frame, atol=1e-5)
        model3d = create_model("resnet18", num_classes=4, widen_factor=0.25).eval()
        assert not torch.allclose(model3d(clip), model3d(clip.flip(2)), atol=1e-3)


def test_channels_last_3d_layout_is_kept_and_gives_the_same_logits() -> None:
    x = torch.randn(2, 4, 4, 6, 6).contiguous(memory_format=torch.channels_last_3d)
    assert ZeroPadShortcut(8, (2, 2, 2))(x).is_contiguous(memory_format=torch.channels_last_3d)
    for name in ("resnet18", "resnet2p1d10"):
        model = create_model(name, num_classes=3, shortcut_type="A", widen_factor=0.25).eval()
        clip = torch.randn(1, 3, 8, 32, 32)
        with torch.no_grad():
            reference = model(clip)
            fast = model.to(memory_format=torch.channels_last_3d)(clip.contiguous(memory_format=torch.channels_last_3d))
        assert torch.allclose(fast, reference, atol=1e-4)
