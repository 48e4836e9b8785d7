"""Exact rewrites of training convolutions: the stem's time taps folded into channels, shallow inputs' dead taps.

Each must give the plain network's outputs and weight gradients (fp32 within 1e-5, float64 to its resolution) and
leave the parameters and the state dict as they were; which CPU kinds fold is a measured rule, so the tests set
the kind.
"""

from __future__ import annotations

import copy

import pytest
import torch

from resnet3d.inference import banner, fast_path, machine
from resnet3d.inference.fast_path import live_taps, prepare_for_training, without_dead_taps
from resnet3d.inference.machine import PrecisionChoice
from resnet3d.inference.tap_fold import fold_axis, fold_input, fold_taps
from resnet3d.models.registry import create_model

# every family with a temporal low-channel stem; R(2+1)D and the 2D twins fold along width, which training keeps plain
TIME_STEMS = [("resnet10", {}), ("preact_resnet10", {}), ("wide_resnet50", {"k": 1}),
              ("resnext50", {"cardinality": 8}), ("densenet121", {"growth_rate": 8, "num_init_features": 16}),
              ("resnet10", {"n_input_channels": 2, "conv1_t_stride": 2, "conv1_t_size": 5})]


def _relative(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got - expected).norm() / expected.norm()).item()


def _logits_and_grads(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    logits = model(x)
    (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits).to(logits.dtype)).sum().backward()
    return logits.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name, options", TIME_STEMS)
def test_time_folded_stem_trains_like_the_plain_network(name, options):
    torch.manual_seed(0)
    # BN in eval mode: batch statistics of 2 small clips (layer4 of 1x1x1) magnify any rounding difference
    plain = create_model(name, num_classes=4, **options).eval()
    folded = copy.deepcopy(plain)
    before = copy.deepcopy(plain.state_dict())
    assert len(fold_taps(folded, axis=2)) == 1
    x = torch.randn(2, options.get("n_input_channels", 3), 16, 36, 38)
    expected, expected_grads = _logits_and_grads(copy.deepcopy(plain).double(), x.double())
    # float64: the folded network computes the same function to float64's resolution
    got64, grads64 = _logits_and_grads(copy.deepcopy(folded).double(), x.double())
    torch.testing.assert_close(got64, expected, rtol=1e-10, atol=1e-10)
    assert grads64.keys() == expected_grads.keys()
    assert max(_relative(grads64[n], g) for n, g in expected_grads.items()) < 1e-9
    # fp32, against float64: within 1e-5 everywhere. (The plain stem's fp32 weight gradient is the less exact one
    # here: ~1e-3 off float64 behind max-pooling on this CPU, the folded one ~1e-6.)
    got, grads = _logits_and_grads(folded, x)
    assert _relative(got.double(), expected) < 1e-5
    assert max(_relative(grads[n].double(), g) for n, g in expected_grads.items()) < 1e-5
    assert folded.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in folded.state_dict().items())


def test_folding_a_channels_last_input_gives_channels_last_taps_of_the_same_values():
    x = torch.randn(2, 3, 6, 9, 10)
    plain = fold_input(x, 2, 7, 1, 3)
    last = fold_input(x.contiguous(memory_format=torch.channels_last_3d), 2, 7, 1, 3)
    assert last.is_contiguous(memory_format=torch.channels_last_3d) and plain.is_contiguous()
    assert torch.equal(last, plain) and plain.shape == (2, 21, 6, 9, 10)
    # channel k * C + c is channel c shifted by tap k - 3 (zero where the shift leaves the clip)
    assert torch.equal(plain[:, 3 * 5 + 1, :4], x[:, 1, 2:])
    assert not plain[:, 3 * 5 + 1, 4:].any()


@pytest.mark.parametrize("kind, precision, folds", [("amx", "bf16", True), ("amx", "fp32", False),
                                                     ("avx512_bf16", "bf16", False), ("avx2", "fp32", False)])
def test_training_folds_the_time_stem_only_where_it_measured_faster(monkeypatch, kind, precision, folds):
    monkeypatch.setattr(machine, "cpu_kind", lambda: kind)
    models = {name: create_model(name, num_classes=3, widen_factor=0.25) for name in ("resnet10", "resnet10_2d")}
    for name, model in models.items():
        keys = model.state_dict().keys()
        model = prepare_for_training(model, "cpu", precision=precision)
        assert model.state_dict().keys() == keys
        folded = [n for n, m in model.named_modules() if "forward" in vars(m) and
                  m.forward.__func__.__name__ == "_folded_forward"]
        assert folded == (["conv1"] if folds and name == "resnet10" else []), name  # the 2D twin stays plain
        facts = banner.fast_path_facts(model, PrecisionChoice(precision, "auto", "test"), True, "cpu",
                                       inference=False)
        folded_words = facts["stem"].startswith("time taps folded")
        assert folded_words == (folds and name == "resnet10")


@pytest.mark.parametrize("depth, kernel, stride, padding, taps", [
    (1, 3, 1, 1, (1, 2)), (2, 3, 2, 1, (1, 3)), (2, 3, 1, 1, (0, 3)), (1, 7, 1, 3, (3, 4)), (3, 7, 2, 3, (1, 6)),
    (16, 3, 1, 1, (0, 3)), (1, 5, 2, 2, (2, 3)),
])
def test_shallow_inputs_drop_the_taps_that_meet_only_padding(depth, kernel, stride, padding, taps):
    assert live_taps(depth, kernel, stride, padding) == taps
    torch.manual_seed(0)
    x = torch.randn(2, 4, depth, 5, 5, dtype=torch.float64)
    weight = torch.randn(6, 4, kernel, 3, 3, dtype=torch.float64, requires_grad=True)
    expected = torch.nn.functional.conv3d(x, weight, None, (stride, 1, 1), (padding, 1, 1))
    (grad,) = torch.autograd.grad(expected.sum(), weight)
    cut_x, cut_w, cut_padding = without_dead_taps(x, weight, stride, [padding, 1, 1])
    assert cut_w.shape[2] == taps[1] - taps[0] and cut_padding == [0, 1, 1]
    got = torch.nn.functional.conv3d(cut_x, cut_w, None, (stride, 1, 1), cut_padding)
    (cut_grad,) = torch.autograd.grad(got.sum(), weight)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(cut_grad, grad, rtol=1e-12, atol=1e-12)
    dead = [k for k in range(kernel) if not taps[0] <= k < taps[1]]
    assert not cut_grad[:, :, dead].any()  # a dead tap's gradient is the zero it always was


def test_a_dead_tap_weight_gradient_reaches_the_parameter_in_its_own_layout():
    # the parameter's hook sees the gradient autograd hands to accumulation: in the parameter's channels_last_3d
    # strides, it is taken as it is instead of copied into them
    weight = torch.nn.Parameter(torch.randn(6, 4, 3, 3, 3).contiguous(memory_format=torch.channels_last_3d))
    seen = []
    weight.register_hook(lambda g: seen.append(g.stride()))
    x = torch.randn(2, 4, 1, 5, 5).contiguous(memory_format=torch.channels_last_3d)
    cut_x, cut_w, cut_padding = without_dead_taps(x, weight, 1, [1, 1, 1])
    torch.nn.functional.conv3d(cut_x, cut_w, None, 1, cut_padding).square().sum().backward()
    assert seen == [weight.stride()] and weight.grad.stride() == weight.stride()
    plain = weight.detach().clone().requires_grad_()
    (expected,) = torch.autograd.grad(torch.nn.functional.conv3d(x, plain, None, 1, 1).square().sum(), plain)
    torch.testing.assert_close(weight.grad, expected, rtol=1e-5, atol=1e-6)


def test_the_guarded_16_frame_network_drops_layer4s_dead_taps(monkeypatch):
    taps = []
    real = torch.nn.functional.conv3d
    monkeypatch.setattr(torch.nn.functional, "conv3d", lambda x, w, *a: taps.append(w.shape[2]) or real(x, w, *a))
    model = create_model("resnet18", num_classes=3, widen_factor=0.25).eval()
    x = torch.randn(1, 3, 16, 32, 32)
    expected = model(x)
    assert taps[-5:] == [3, 3, 1, 3, 3]  # layer4: conv1, conv2, the 1x1x1 shortcut, conv1, conv2
    taps.clear()
    got = fast_path.guard_shallow_conv3d(model)(x)
    # layer4 sees 2 frames (its first convolution, stride 2: 2 live taps), then 1 frame (1 live tap of 3)
    assert taps[-5:] == [2, 1, 1, 1, 1]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
