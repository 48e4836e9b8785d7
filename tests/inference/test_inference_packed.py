"""The machine-chosen convolution forms: tap-folded low-channel stems and prepacked, fused CPU convolutions.

Every form must compute what the plain convolution computes (fp32 within 1e-5) and leave the state dict alone;
which one runs is decided by timing, so the tests force each form in turn.
"""

from __future__ import annotations

import copy
import time

import pytest
import torch
from inference_helpers import with_running_stats

from resnet3d.inference import form_choice
from resnet3d.inference.fast_path import InferenceNet
from resnet3d.inference.machine import onednn_bf16
from resnet3d.inference.packed import PackedConv, packing_available
from resnet3d.inference.tap_fold import fold_axis, fold_input, fold_weight, folded_geometry
from resnet3d.models.registry import create_model, list_models

# One model per family, small; with 2-channel (flow) and strided-time stems among them.
FAMILIES = [("resnet10", {}), ("resnet2p1d10", {}), ("preact_resnet10", {}), ("wide_resnet50", {"k": 1}),
            ("resnext50", {"cardinality": 8}), ("densenet121", {"growth_rate": 8, "num_init_features": 16}),
            ("resnet10_2d", {}), ("resnet10", {"n_input_channels": 2, "conv1_t_stride": 2}),
            ("resnet2p1d10", {"n_input_channels": 2, "conv1_t_size": 5})]


@pytest.fixture
def forced_form(monkeypatch):
    """force(which): the probe picks that form ('eager'/'plain', 'packed' or the folded one) instead of timing."""
    def force(which: str) -> None:
        form_choice._CHOICES.clear()

        def pick(forms, x):
            names = list(forms)
            return names[-1] if which == "folded" else which if which in names else names[0]
        monkeypatch.setattr(form_choice, "_probe", pick)
    yield force
    form_choice._CHOICES.clear()


def _relative(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got - expected).norm() / expected.norm()).item()


def _stems(model: torch.nn.Module) -> list[torch.nn.Conv3d]:
    return [m for m in model.modules() if fold_axis(m) is not None]


def test_every_registered_architecture_has_exactly_its_stem_foldable():
    for name in list_models():
        with torch.device("meta"):  # shapes only: building resnet200 for real takes seconds
            stems = _stems(create_model(name, num_classes=3))
        # R(2+1)D factorises its stem (conv1_s 1x7x7 from the clip, then conv1_t from 110 channels): one either way
        assert len(stems) == 1 and stems[0].in_channels == 3, name


@pytest.mark.parametrize("name, options", FAMILIES)
def test_folded_stem_equals_the_plain_convolution_with_its_weight_gradient(name, options):
    torch.manual_seed(0)
    (conv,) = _stems(create_model(name, num_classes=3, **options))
    axis = fold_axis(conv)
    x = torch.randn(2, conv.in_channels, 9, 20, 22)
    grad = torch.randn_like(conv(x))
    plain = torch.autograd.grad((conv(x) * grad).sum(), conv.weight)[0]
    k, s, p = conv.kernel_size[axis - 2], conv.stride[axis - 2], conv.padding[axis - 2]
    padding, stride = folded_geometry(conv, axis)
    out = torch.nn.functional.conv3d(fold_input(x, axis, k, s, p), fold_weight(conv.weight, axis), None, stride,
                                     padding)
    folded = torch.autograd.grad((out * grad).sum(), conv.weight)[0]
    torch.testing.assert_close(out, conv(x), rtol=1e-5, atol=1e-5)
    # each weight gradient sums ~10^4 products: fp32 rounding differs by kernel (1e-4 of 0.1 seen on AVX2), so the
    # gradient is held to 1e-5 as a whole, and to float64's resolution element by element
    assert _relative(folded, plain) < 1e-5
    conv64, x64, grad64 = copy.deepcopy(conv).double(), x.double(), grad.double()
    plain64 = torch.autograd.grad((conv64(x64) * grad64).sum(), conv64.weight)[0]
    out64 = torch.nn.functional.conv3d(fold_input(x64, axis, k, s, p), fold_weight(conv64.weight, axis), None,
                                       stride, padding)
    folded64 = torch.autograd.grad((out64 * grad64).sum(), conv64.weight)[0]
    torch.testing.assert_close(folded64, plain64, rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(not packing_available(), reason="this torch build has no oneDNN fused convolution")
@pytest.mark.parametrize("which", ["eager", "packed", "folded"])
@pytest.mark.parametrize("name, options", FAMILIES)
def test_every_form_gives_the_logits_of_the_plain_network(forced_form, which, name, options):
    forced_form(which)
    torch.manual_seed(0)
    model = with_running_stats(create_model(name, num_classes=5, **options))
    x = torch.randn(2, model.arch_options.get("n_input_channels", 3), 16, 32, 32)
    before = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        expected = InferenceNet(model)(x)
        net = InferenceNet(model, pack=True)
        assert _relative(net(x), expected) < 1e-5
        assert _relative(net(x[:1]), expected[:1]) < 1e-5  # another batch size than the first call's
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    chosen = form_choice.chosen_forms(net)
    stem = next(n for n, m in net.named_modules() if isinstance(m, PackedConv) and m.axis is not None)
    axis = "width" if name.startswith("resnet2p1d") or name.endswith("_2d") else "time"
    assert chosen.pop(stem) == {"eager": "eager", "packed": "packed", "folded": f"packed, taps folded along {axis}"}[
        which]
    assert len(chosen) > 3 and set(chosen.values()) == {"eager" if which == "eager" else "packed"}


@pytest.mark.skipif(not packing_available(), reason="this torch build has no oneDNN fused convolution")
def test_packing_fuses_every_relu_and_residual_add_of_r3d18():
    net = InferenceNet(create_model("resnet18", num_classes=5).eval(), pack=True)
    fused = [m.fuse for m in net.modules() if isinstance(m, PackedConv)]
    # stem + 8 first block convs end in a ReLU, 8 second ones in add+ReLU, 3 downsample shortcuts in nothing
    assert (fused.count("relu"), fused.count("add_relu"), fused.count("none")) == (9, 8, 3)
    nodes = list(net.body.graph.nodes)
    assert not [n for n in nodes if n.op == "call_function" and "add" in str(n.target)]
    assert not [m for m in net.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.Conv3d))]


@pytest.mark.skipif(not (packing_available() and onednn_bf16()),
                    reason="no oneDNN fused convolution, or this CPU's oneDNN cannot lay out bf16 weights (AVX2)")
def test_packed_bf16_one_frame_clip_is_finite_and_close_to_fp32(forced_form):
    forced_form("packed")  # the unfolded stem meets a 1-frame input with 3 frames of padding each side
    model = with_running_stats(create_model("resnet10", num_classes=5, widen_factor=0.5))
    x = torch.randn(2, 3, 1, 32, 32)
    with torch.no_grad():
        expected = InferenceNet(model)(x)
        got = InferenceNet(model, torch.bfloat16, pack=True)(x)
    assert torch.isfinite(got).all()
    assert (got - expected).norm() / expected.norm() < 3e-2


def test_the_probe_keeps_the_faster_form_once_per_key():
    form_choice._CHOICES.clear()
    calls = {"slow": 0, "fast": 0}

    def slow(x):
        calls["slow"] += 1
        time.sleep(0.02)  # a margin no scheduling noise on a quick call can beat
        return x

    def fast(x):
        calls["fast"] += 1
        return x

    layer, x = torch.nn.Identity(), torch.zeros(1)
    assert form_choice.fastest_form(layer, "key", {"slow": slow, "fast": fast}, x) == "fast"
    probed = dict(calls)
    assert form_choice.fastest_form(torch.nn.Identity(), "key", {"slow": slow, "fast": fast}, x) == "fast"
    assert calls == probed == {"slow": 1 + form_choice.PROBE_ROUNDS, "fast": 1 + form_choice.PROBE_ROUNDS}
    assert form_choice.chosen_forms(torch.nn.Sequential(layer)) == {"0": "fast"}
    form_choice._CHOICES.clear()


@pytest.mark.skipif(not packing_available(), reason="this torch build has no oneDNN fused convolution")
@pytest.mark.parametrize("kind, onednn_bf16, precision, timed", [
    ("amx", True, "bf16", True), ("avx512", True, "bf16", True), ("avx512_bf16", True, "bf16", False),
    ("amx", True, "fp32", False), ("avx2", False, "bf16", False)])  # AVX2: oneDNN cannot lay out bf16 weights
def test_forms_are_timed_in_bf16_where_not_measured_neutral(monkeypatch, kind, onednn_bf16, precision, timed):
    from resnet3d.inference import machine
    from resnet3d.inference.banner import TIMED_CONVOLUTIONS, fast_path_facts
    from resnet3d.inference.fast_path import prepare_for_inference

    if timed and not machine.onednn_bf16():
        pytest.skip("this CPU's oneDNN cannot lay out bf16 weights, so a packed bf16 network cannot be built here")
    monkeypatch.setattr(machine, "cpu_kind", lambda: kind)
    monkeypatch.setattr(machine, "onednn_bf16", lambda: onednn_bf16)
    model = create_model("resnet10", num_classes=3, widen_factor=0.25).eval()
    net = prepare_for_inference(model, "cpu", precision=precision)
    assert any(isinstance(m, PackedConv) for m in net.modules()) == timed
    facts = fast_path_facts(model, machine.choose_precision(precision, torch.device("cpu")), True, "cpu",
                            inference=True)
    assert (facts["convolutions"], facts["stem"] != "plain") == (TIMED_CONVOLUTIONS if timed else "eager", timed)
    training = fast_path_facts(model, machine.choose_precision(precision, torch.device("cpu")), True, "cpu",
                               inference=False)
    # training runs eager convolutions; it folds the stem's time taps in bf16 on AMX (tests/training/test_training_forms.py)
    folded = kind == "amx" and precision == "bf16"
    assert (training["convolutions"], training["stem"] != "plain") == ("eager", folded)
