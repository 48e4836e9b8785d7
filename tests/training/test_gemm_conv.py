"""Small-output training convolutions as matrix products: the same outputs and gradients as the convolution.

Checked per geometry against float64 (fp32 within 1e-5; bf16 no further off than oneDNN's own bf16 convolution),
through whole networks with the forms forced on, and for the rule that picks them (CPU kind, precision, shape).
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from resnet3d.inference import banner, gemm_conv, machine
from resnet3d.inference.fast_path import prepare_for_training
from resnet3d.inference.gemm_conv import (FORM_GEMM, FORM_GEMM_ONEDNN_INPUT_GRAD, _GemmConv3d, gemm_form,
                                          gemm_small_outputs, patches)
from resnet3d.inference.machine import PrecisionChoice
from resnet3d.models.registry import create_model

CL = torch.channels_last_3d

# (input shape, weight shape, stride, padding): layer4- and layer3-like, strided, 1x1x1 shortcut, R(2+1)D parts
GEOMETRIES = [((2, 8, 1, 4, 4), (16, 8, 1, 3, 3), (1, 1, 1), (0, 1, 1)),
              ((2, 6, 4, 7, 7), (8, 6, 3, 3, 3), (1, 1, 1), (1, 1, 1)),
              ((2, 6, 4, 7, 6), (8, 6, 3, 3, 3), (2, 2, 2), (1, 1, 1)),
              ((2, 6, 2, 7, 7), (8, 6, 2, 3, 3), (2, 2, 2), (0, 1, 1)),
              ((2, 6, 3, 5, 5), (12, 6, 1, 1, 1), (2, 2, 2), (0, 0, 0)),
              ((1, 5, 4, 6, 6), (7, 5, 3, 1, 1), (1, 1, 1), (1, 0, 0))]


def _relative(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got.double() - expected).norm() / expected.norm()).item()


def _run(x: torch.Tensor, weight: torch.Tensor, stride, padding, grad: torch.Tensor, form: str | None):
    x, weight = x.detach().requires_grad_(), weight.detach().requires_grad_()
    if form is None:
        y = F.conv3d(x, weight, None, stride, padding)
    else:
        y = _GemmConv3d.apply(x, weight, stride, padding, form == FORM_GEMM)
    y.backward(grad)
    return y, x.grad, weight.grad


def _case(geometry, dtype):
    x_shape, w_shape, stride, padding = geometry
    torch.manual_seed(0)
    x = torch.randn(x_shape).to(dtype).contiguous(memory_format=CL)
    weight = torch.randn(w_shape).to(dtype).contiguous(memory_format=CL)
    grad = torch.randn_like(F.conv3d(x, weight, None, stride, padding)).contiguous(memory_format=CL)
    expected = _run(x.double(), weight.double(), stride, padding, grad.double(), None)
    return (x, weight, stride, padding, grad), expected


@pytest.mark.parametrize("form", [FORM_GEMM, FORM_GEMM_ONEDNN_INPUT_GRAD])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_products_give_the_convolutions_output_and_gradients(geometry, form):
    args, expected = _case(geometry, torch.float32)
    got = _run(*args, form)
    assert [_relative(g, e) for g, e in zip(got, expected)] == pytest.approx([0, 0, 0], abs=1e-6)
    assert all(t.is_contiguous(memory_format=CL) for t in got)  # the weight gradient in the parameter's layout
    args, expected = _case(geometry, torch.bfloat16)
    native = [_relative(g, e) for g, e in zip(_run(*args, None), expected)]
    ours = [_relative(g, e) for g, e in zip(_run(*args, form), expected)]
    assert all(o < 2 * n + 1e-3 for o, n in zip(ours, native)), (ours, native)


def test_the_patch_matrix_holds_each_output_positions_receptive_field_tap_by_tap():
    x = torch.arange(2 * 3 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 3, 4, 4).contiguous(memory_format=CL)
    taps, out = patches(x, (3, 3, 3), (2, 2, 2), (1, 1, 1))
    assert out == [2, 2, 2] and taps.shape == (2 * 8, 27 * 3)
    row = taps[1 * 8 + 1 * 4 + 0 * 2 + 1].view(3, 3, 3, 3)  # clip 1, output (1, 0, 1): input from (1, -1, 1)
    padded = F.pad(x, (1, 1, 1, 1, 1, 1))
    assert torch.equal(row, padded[1, :, 2:5, 0:3, 2:5].permute(1, 2, 3, 0))


@pytest.mark.parametrize("positions, channels, form", [(128, 512, FORM_GEMM), (512, 512, FORM_GEMM),
                                                       (513, 512, FORM_GEMM_ONEDNN_INPUT_GRAD),
                                                       (784, 256, FORM_GEMM_ONEDNN_INPUT_GRAD),
                                                       (2048, 256, FORM_GEMM_ONEDNN_INPUT_GRAD),
                                                       (2049, 256, None), (6272, 128, None)])
def test_the_form_follows_the_output_positions_per_channel(positions, channels, form):
    assert gemm_form(positions, channels) == form


@pytest.mark.parametrize("name, options", [("resnet18", {}), ("resnet50", {}), ("resnet2p1d18", {}),
                                           ("preact_resnet18", {}), ("densenet121",
                                                                     {"growth_rate": 8, "num_init_features": 16})])
def test_networks_with_the_forms_forced_train_like_the_plain_ones(name, options):
    torch.manual_seed(0)
    plain = create_model(name, num_classes=4, widen_factor=0.25, **options) if "dense" not in name else \
        create_model(name, num_classes=4, **options)
    plain = plain.eval().to(memory_format=CL)  # BN in eval mode: batch statistics of 2 clips magnify rounding
    forced = copy.deepcopy(plain)
    gemm_small_outputs(forced)
    calls = []
    real = _GemmConv3d.apply
    x = torch.randn(2, 3, 16, 32, 32).contiguous(memory_format=CL)
    outputs = []
    for model, dtype in ((plain, torch.float64), (forced, torch.float64), (plain, torch.float32),
                         (forced, torch.float32)):
        model.to(dtype).zero_grad(set_to_none=True)
        gemm_conv._GemmConv3d.apply = lambda *a: calls.append(a[1].shape) or real(*a)
        try:
            logits = model(x.to(dtype))
        finally:
            gemm_conv._GemmConv3d.apply = real
        (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits).to(logits.dtype)).sum().backward()
        outputs.append((logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    assert calls  # the forms ran
    # fp32 against the plain fp32 network: max-pooling ties put the early layers of both ~4e-3 off float64
    for (e_logits, e_grads), (g_logits, g_grads), tolerance in ((outputs[0], outputs[1], 1e-10),
                                                                (outputs[2], outputs[3], 1e-5)):
        assert _relative(g_logits, e_logits.double()) < tolerance
        assert max(_relative(g_grads[n], g.double()) for n, g in e_grads.items()) < tolerance


@pytest.mark.parametrize("kind, precision, channels_last, marks", [
    ("amx", "bf16", True, True), ("amx", "fp32", True, False), ("amx", "bf16", False, False),
    ("avx512_bf16", "bf16", True, False), ("avx2", "fp32", True, False)])
def test_training_uses_the_products_only_where_they_measured_faster(monkeypatch, kind, precision, channels_last,
                                                                     marks):
    monkeypatch.setattr(machine, "cpu_kind", lambda: kind)
    model = create_model("resnet18", num_classes=3, widen_factor=0.25)
    keys = model.state_dict().keys()
    model = prepare_for_training(model, "cpu", precision=precision, channels_last=channels_last)
    assert model.state_dict().keys() == keys
    marked = [n for n, m in model.named_modules() if getattr(m, "gemm_small_outputs", False)]
    assert len(marked) == (20 if marks else 0)  # every Conv3d of R3D-18 (the head is Linear)
    facts = banner.fast_path_facts(model, PrecisionChoice(precision, "auto", "test"), channels_last, "cpu",
                                   inference=False)
    assert ("matrix products" in facts["convolutions"]) == marks
