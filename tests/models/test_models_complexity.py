"""Cost counting on the meta device equals a real count; the `resnet3d models` table."""

from __future__ import annotations

import pytest
import torch

from resnet3d.cli import main as cli_main
from resnet3d.models import create_model
from resnet3d.models.complexity import count_flops, count_params, gmacs, model_complexity


@pytest.mark.parametrize("name,options", [("resnet10", {"widen_factor": 0.25}), ("resnet2p1d18", {"widen_factor": 0.125}),
                                          ("densenet121", {"growth_rate": 4, "num_init_features": 8})])
def test_meta_count_equals_a_real_count(name: str, options: dict) -> None:
    real = create_model(name, num_classes=6, **options).eval()
    x = torch.randn(1, 3, 16, 64, 64)
    meta = model_complexity(name, 6, frames=16, size=64, **options)
    assert meta.flops == count_flops(real, x) and meta.params == count_params(real)
    assert gmacs(real, (3, 16, 64, 64)) == meta.flops / 2e9


def test_flops_are_two_per_multiply_add_by_hand() -> None:
    # The head's share: num_features x classes multiply-adds; the stem: output positions x (C x t x 7 x 7) per channel.
    a, b = model_complexity("resnet18", 400), model_complexity("resnet18", 700)
    assert b.flops - a.flops == 2 * 512 * 300 and a.macs * 2 == a.flops
    conv = torch.nn.Conv3d(3, 64, (7, 7, 7), (1, 2, 2), (3, 3, 3), bias=False)
    assert count_flops(conv, torch.empty(1, 3, 16, 112, 112, device="meta")) == 2 * (64 * 16 * 56 * 56) * (3 * 7 * 7 * 7)


def test_models_command_prints_the_table(capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["models", "resnet1?", "--frames", "16", "--size", "112"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["model", "params", "GMACs", "GFLOPs", "features"]
    row = next(line.split() for line in out.splitlines() if line.startswith("resnet18 "))
    assert row[1] == "33,409,104" and row[4] == "512"
    assert float(row[3]) == pytest.approx(2 * float(row[2]), abs=0.011)
    assert "2 FLOPs per multiply-add" in out
    assert cli_main(["models", "nothing*"]) == 2


@pytest.mark.parametrize("name", ["resnet50", "resnet2p1d18", "preact_resnet18", "wide_resnet50", "resnext50",
                                  "resnet18_2d", "densenet121"])
def test_hook_count_equals_torch_flop_counter(name: str) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = create_model(name, num_classes=400).eval()
    x = torch.empty(1, 3, 16, 112, 112, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    assert model_complexity(name, 400).flops == counter.get_total_flops() == count_flops(model, x)
